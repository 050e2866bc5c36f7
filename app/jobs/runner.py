"""Where jobs run: the `Runner` protocol and `make_runner(settings)`, which picks one.

- `ProcessRunner` (``MIXPILOT_JOB_RUNNER=process``, the default without Redis): low-priority
  child processes of the API, each running a `JobExecutor` (`app.jobs.processes`).
- `ThreadRunner` (``MIXPILOT_JOB_RUNNER=thread``, or a service object injected into the API):
  a thread pool in the API process (`app.jobs.threads`).
- `ArqRunner` (``MIXPILOT_REDIS_URL``): the API only enqueues; `mixpilot worker` processes run
  the jobs (`app.jobs.worker`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from app.jobs.bus import EventBus
    from app.jobs.store import JobStore
    from app.settings import Settings

log = logging.getLogger("mixpilot.jobs")

RunnerKind = Literal["arq", "process", "thread"]


@runtime_checkable
class Runner(Protocol):
    """What the API asks of a job runner."""

    #: whether queued jobs wait in this process (then the API keeps their heartbeat: `heartbeat_queued`)
    tracks_queued: bool

    async def start(self) -> None:
        """Start what the runner needs (child processes, a Redis pool); once, before `submit`."""

    async def submit(self, job_id: str, attempt: int = 0, delay_s: float = 0.0) -> None:
        """Hand a queued job (its row is committed) to be run, after `delay_s`; `attempt` makes a retry a
        new delivery."""

    def cancel(self, job_id: str) -> None:
        """Stop the job if it runs here (its row already says ``cancelled``)."""

    async def heartbeat_queued(self) -> None:
        """Keep the heartbeat of jobs queued here, so the sweeper leaves them alone."""

    async def check(self) -> str:
        """Readiness: what runs the jobs, in words; raises when nothing can."""

    async def aclose(self) -> None:
        """Stop within a few seconds: jobs not started stay queued, running ones are handed back to the queue
        (`app.jobs.recovery` hands them out again at the next start-up)."""


def runner_kind(
    settings: Settings, *, in_process: bool = False, injected_service: bool = False
) -> RunnerKind:
    """arq with ``MIXPILOT_REDIS_URL`` (unless `in_process`); else processes, or threads when
    ``MIXPILOT_JOB_RUNNER=thread`` or the service is an injected object (child processes build their own)."""
    if settings.redis_url and not in_process:
        return "arq"
    if settings.job_runner == "process" and not injected_service:
        return "process"
    return "thread"


def make_runner(
    settings: Settings,
    *,
    store: JobStore,
    bus: EventBus,
    service: Any = None,
    loop: asyncio.AbstractEventLoop | None = None,
    in_process: bool = False,
    injected_service: bool = False,
) -> Runner:
    """The runner `runner_kind` names, not started (await `Runner.start`).

    `service` runs the jobs of a `ThreadRunner` (a `ProcessRunner`'s children and arq workers build
    their own from `settings`); `loop` owns `store`'s engine (default: the running loop).
    """
    kind = runner_kind(settings, in_process=in_process, injected_service=injected_service)
    if kind == "arq":
        from app.jobs.worker import ArqRunner, redis_url_of

        return ArqRunner(redis_url_of(settings), queue_name=settings.job_queue)
    if kind == "process":
        from app.jobs.processes import ProcessRunner

        return ProcessRunner(
            settings, store=store, bus=bus, processes=settings.job_threads, nice=settings.job_nice
        )
    from app.jobs.executor import JobExecutor
    from app.jobs.threads import ThreadRunner

    if service is None:
        raise ValueError("the thread runner runs jobs on a service: pass service= (app.runtime.open_service)")
    executor = JobExecutor(
        service=service,
        store=store,
        loop=loop or asyncio.get_running_loop(),
        bus=bus,
        heartbeat_s=settings.job_heartbeat_s,
        quota_bytes=int(settings.user_quota_bytes),
    )
    return ThreadRunner(executor, threads=settings.job_threads, nice=settings.job_nice)


async def periodic(fn: Callable[[], Awaitable[Any]], every_s: float) -> None:
    """Run `fn` (a coroutine function) every `every_s` until cancelled; errors are logged."""
    while True:
        await asyncio.sleep(every_s)
        try:
            await fn()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("periodic task failed (%s)", exc)
