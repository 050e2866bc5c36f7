"""`ThreadRunner`: jobs in a thread pool inside the API process; queued jobs keep a heartbeat here too.

Used with an injected service or ``MIXPILOT_JOB_RUNNER=thread``; the default local runner is
`app.jobs.processes.ProcessRunner` (child processes: jobs do not hold the API's GIL).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import threading

from app.jobs.executor import JobExecutor
from app.jobs.priority import lower_cpu_priority

log = logging.getLogger("mixpilot.jobs.threads")


class ThreadRunner:
    """A `Runner` whose jobs run on `executor` in `threads` low-priority threads (SCHED_BATCH + `nice`)."""

    tracks_queued = True

    def __init__(self, executor: JobExecutor, *, threads: int = 2, nice: int = 10) -> None:
        self.executor = executor
        self.pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=threads,
            thread_name_prefix="mixpilot-job",
            initializer=functools.partial(lower_cpu_priority, nice, policy="batch", whole_process=False),
        )
        self._queued: set[str] = set()
        self._lock = threading.Lock()
        self._futures: set[concurrent.futures.Future[None]] = set()

    async def start(self) -> None:
        pass

    async def submit(self, job_id: str, attempt: int = 0) -> None:
        with self._lock:
            self._queued.add(job_id)
        fut = self.pool.submit(self._run, job_id)
        self._futures.add(fut)
        fut.add_done_callback(self._futures.discard)

    def _run(self, job_id: str) -> None:
        with self._lock:
            self._queued.discard(job_id)
        try:
            self.executor.run(job_id)
        except Exception:  # logged; the sweeper fails a job left running
            log.exception("job %s crashed the runner", job_id)

    def queued(self) -> list[str]:
        with self._lock:
            return list(self._queued)

    async def heartbeat_queued(self) -> None:
        await self.executor.store.touch(self.queued(), ("queued",))

    def cancel(self, job_id: str) -> None:
        self.executor.cancel(job_id)

    async def check(self) -> str:
        return "in-process"

    async def aclose(self) -> None:
        for jid in self.queued():
            self.executor.cancel(jid)
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: self.pool.shutdown(wait=True, cancel_futures=True)
        )
