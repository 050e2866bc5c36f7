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
        self._closing = False

    async def start(self) -> None:
        pass

    async def submit(self, job_id: str, attempt: int = 0, delay_s: float = 0.0) -> None:
        with self._lock:
            self._queued.add(job_id)
        if delay_s > 0:
            asyncio.get_running_loop().call_later(delay_s, self._submit_now, job_id)
        else:
            self._submit_now(job_id)

    def _submit_now(self, job_id: str) -> None:
        if self._closing:
            return
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

    #: how long `aclose` waits for running jobs to hand themselves back
    handback_s = 2.5

    async def aclose(self) -> None:
        """Queued jobs stay queued; running ones are handed back (cooperatively: a thread cannot be killed,
        so one that does not stop within `handback_s` is left to finish, its row already queued again)."""
        handback_s = self.handback_s
        self._closing = True
        self.pool.shutdown(wait=False, cancel_futures=True)
        asked = self.executor.handback()
        running = [f for f in self._futures if not f.done()]
        if running:
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: concurrent.futures.wait(running, timeout=handback_s)
            )
        for job_id, attempt in asked.items():
            if job_id in self.executor.running:
                await self.executor.store.handback(
                    job_id, attempt=attempt, message="handed back (the API stopped)"
                )
