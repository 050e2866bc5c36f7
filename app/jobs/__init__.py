"""Background jobs: one conversation turn each, run by a `Runner` (child processes, threads, or arq workers).

    bus.py        progress events: `EventBus` (`LocalBus`, `RedisBus`, `QueueBus`), `make_bus`
    store.py      the job rows: `JobStore` (claim, progress, heartbeat, result, `sweep_stale`)
    executor.py   `JobExecutor.run(job_id)`: one job through `Mixpilot.turn`, the same everywhere
    priority.py   `lower_cpu_priority`: SCHED_BATCH / SCHED_IDLE / niceness for job work
    runner.py     the `Runner` protocol and `make_runner(settings)`
    processes.py  `ProcessRunner` (default without Redis), threads.py `ThreadRunner`,
    worker.py     `ArqRunner` (with ``MIXPILOT_REDIS_URL``) and `make_worker` (`mixpilot worker`)

The API (`app.api`) and the worker command use these public names only.
"""

from app.jobs.bus import EventBus, LocalBus, QueueBus, RedisBus, jsonable, make_bus
from app.jobs.executor import JobCancelled, JobExecutor, describe, progress_of, result_of
from app.jobs.priority import lower_cpu_priority
from app.jobs.processes import ProcessRunner
from app.jobs.runner import Runner, make_runner, periodic, runner_kind
from app.jobs.store import CRASHED, TERMINAL, JobStore
from app.jobs.threads import ThreadRunner
from app.jobs.worker import ArqRunner, make_worker

__all__ = [
    "CRASHED",
    "TERMINAL",
    "ArqRunner",
    "EventBus",
    "JobCancelled",
    "JobExecutor",
    "JobStore",
    "LocalBus",
    "ProcessRunner",
    "QueueBus",
    "RedisBus",
    "Runner",
    "ThreadRunner",
    "describe",
    "jsonable",
    "lower_cpu_priority",
    "make_bus",
    "make_runner",
    "make_worker",
    "periodic",
    "progress_of",
    "result_of",
    "runner_kind",
]
