"""`ProcessRunner`, the default local runner: jobs in low-priority child processes of the API.

Why processes: a job is CPU-bound Python + numpy (a whole `Mixpilot.turn`). In threads of the
API process it holds the GIL for long stretches and the request loop waits for it (read p99 of
seconds under load); niceness cannot help there. In a child process the GIL is its own and
its threads run under ``SCHED_BATCH`` with niceness (Linux; niceness elsewhere), so a waking
request preempts a job at once and the jobs still get their share of a busy machine
(`app.jobs.priority`).

    API process                                        child i (spawned, SCHED_BATCH, nice)
    ProcessRunner.submit(job_id) ─ dispatch ─ inbox i ──▶  JobExecutor.run(job_id)  (own service, engine)
    LocalBus (SSE) ◀── drain thread i ◀── event pipe i ─── QueueBus.publish(...), ready/started/finished
    ProcessRunner.cancel(job_id) ── control queue i ──▶ executor.cancel(job_id)

- Every channel belongs to one child and is made anew when that child is (re)spawned. A process killed
  while it uses a channel (SIGKILL mid-write: the OOM killer, a cancel that did not stop) can leave a
  shared queue's lock taken or a message half written, forever; with channels of its own, only its own
  channel goes with it. The parent hands each job to an idle, ready child (`_dispatch`), one at a time.

- Each child builds its service and database engine once from the same `Settings` and runs one
  job at a time with the same `JobExecutor` as the arq worker (claim, heartbeat, progress row,
  result). `settings.job_threads` children run at once.
- Cancel: the database row says ``cancelled`` first (the route), then the child running it is
  told directly; the job stops at its next progress event (its heartbeat also polls the row).
  A child still on that job after `cancel_grace_s` is killed and replaced: a cancel stops the
  work within about a second, whatever the tool is doing.
- A child that dies mid-job is replaced; its job is queued again after a backoff (up to
  ``job_max_attempts`` runs, then ``failed`` with the reason: `JobStore.interrupted`).
- Stopping (`aclose`, within about 3 s): running jobs are handed back (the row goes back to
  ``queued``) cooperatively, children still busy after `handback_s` are killed and their jobs
  handed back by the parent; queued jobs stay queued. The next start-up hands them all out
  again (`app.jobs.recovery`). Children also exit on their own when the API process
  disappears (parent-death watch); the next start-up then retries their jobs.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from app.jobs.bus import EventBus, QueueBus
from app.jobs.priority import lower_cpu_priority
from app.jobs.store import JobStore

if TYPE_CHECKING:
    from app.settings import Settings

log = logging.getLogger("mixpilot.jobs.processes")
#: the control message that hands a child's running job back to the queue (shutdown)
HANDBACK = "\x00handback"


class EventPipe:
    """The child's end of its event pipe: `put` from any thread (the job's progress, the main loop)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self._lock = threading.Lock()

    def put(self, msg: Any) -> None:
        with self._lock:
            self.conn.send(msg)


# ------------------------------------------------------------------------------ child side


def child_main(
    settings: Settings,
    index: int,
    nice: int,
    jobs: Any,
    control: Any,
    events: Any,
    stop: Any,
    service_factory: Callable[[Settings], Any] | None = None,
    current: Any = None,
) -> None:
    """Entry point of child `index` (spawned): build once, lower priority, run jobs until a None.
    `events` is the write end of this child's event pipe."""
    import signal

    events = EventPipe(events)

    with contextlib.suppress(ValueError, OSError):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    parent = os.getppid()

    def watch_parent() -> None:  # the API died without telling us (SIGKILL): do not linger
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_child(settings, index, nice, jobs, control, events, stop, service_factory, current))


async def _child(
    settings: Settings,
    index: int,
    nice: int,
    jobs: Any,
    control: Any,
    events: Any,
    stop: Any,
    service_factory: Callable[[Settings], Any] | None = None,
    current: Any = None,
) -> None:
    import concurrent.futures

    from app.jobs.executor import JobExecutor
    from app.runtime import open_database, open_service

    loop = asyncio.get_running_loop()
    engine, sessions = await open_database(settings)
    service = await loop.run_in_executor(None, service_factory or open_service, settings)
    executor = JobExecutor(
        service=service,
        store=JobStore(sessions),
        loop=loop,
        bus=QueueBus(events),
        heartbeat_s=settings.job_heartbeat_s,
        quota_bytes=int(settings.user_quota_bytes),
    )
    # after start-up (imports, service): a starved start would delay every job
    lower_cpu_priority(nice, policy=settings.job_cpu_policy)

    def listen() -> None:
        while True:
            msg = control.get()
            if msg is None:
                return
            if msg == HANDBACK:
                executor.handback()
            else:
                executor.cancel(msg)

    threading.Thread(target=listen, name="job-control", daemon=True).start()
    runner = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mixpilot-job")
    waiter = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mixpilot-jobq")
    events.put(("ready", index, os.getpid()))
    try:
        while True:
            job_id = await loop.run_in_executor(waiter, jobs.get)
            if job_id is None or stop.value:  # stopping: a job taken now stays queued (retryable)
                break
            # shared memory: the parent knows the job even if we die before the queue flushes
            if current is not None:
                current.value = job_id.encode()
            events.put(("started", index, job_id))
            # threads a library started since (connection pools, ONNX, BLAS) get the low priority too
            lower_cpu_priority(nice, policy=settings.job_cpu_policy)
            status: str | None = None
            try:
                status = await loop.run_in_executor(runner, executor.run, job_id)
            except Exception:  # logged; a job left running is failed by the sweeper
                log.exception("job %s crashed its runner", job_id)
            if current is not None:
                current.value = b""
            events.put(("finished", index, job_id, status))
    finally:
        runner.shutdown(wait=True)
        waiter.shutdown(wait=False)
        await engine.dispose()
        with contextlib.suppress(Exception):
            service.close()


# ------------------------------------------------------------------------------ parent side


class ProcessRunner:
    """A `Runner` with jobs in `processes` spawned, niced child processes (see the module docstring)."""

    #: queued jobs are watched by the API's sweeper (it keeps their heartbeat)
    tracks_queued = True

    def __init__(
        self,
        settings: Settings,
        *,
        store: JobStore,
        bus: EventBus,
        processes: int = 2,
        nice: int = 10,
        handback_s: float = 2.5,
        cancel_grace_s: float = 1.0,
        respawn_every_s: float = 2.0,
        service_factory: Callable[[Settings], Any] | None = None,
    ) -> None:
        """`service_factory(settings)` builds each child's service (default `app.runtime.open_service`;
        a module-level function: children are spawned)."""
        self.settings, self.store, self.bus = settings, store, bus
        self.n, self.nice, self.handback_s, self.respawn_every_s = (
            max(1, processes),
            nice,
            handback_s,
            respawn_every_s,
        )
        self.cancel_grace_s = cancel_grace_s
        self.service_factory = service_factory
        #: child index -> the cancelled job it was killed for (its death is no crash)
        self._killed_for_cancel: dict[int, str] = {}
        #: job id -> futures of `run` callers waiting for its end here
        self._waiters: dict[str, list[asyncio.Future[str | None]]] = {}
        self.ctx = multiprocessing.get_context("spawn")
        #: per child, made at each spawn: its job inbox, its control queue, the read end of its event pipe
        self.inboxes: list[Any] = [None] * self.n
        self.controls: list[Any] = [None] * self.n
        self._readers: list[Any] = [None] * self.n
        self._drains: list[threading.Thread | None] = [None] * self.n
        #: the job each child is on, in shared memory (written before the job starts; survives a crash)
        self.current = [self.ctx.Array("c", 65, lock=False) for _ in range(self.n)]
        #: set when stopping (a lock-free flag: a killed child cannot leave it locked)
        self.stop = self.ctx.RawValue("b", 0)
        self.procs: list[Any] = [None] * self.n
        self.ready: set[int] = set()
        self.running: dict[int, str] = {}  # child index -> job id
        #: jobs waiting for an idle child (the loop's thread only), and the job handed to each child
        self._pending: collections.deque[str] = collections.deque()
        self._assigned: dict[int, str] = {}
        self._queued: set[str] = set()
        self._lock = threading.Lock()
        self._spawned_at = [0.0] * self.n
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._supervisor: asyncio.Task[None] | None = None

    # lifecycle
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for i in range(self.n):
            self._spawn(i)
        self._supervisor = asyncio.create_task(self._supervise())

    def _spawn(self, i: int) -> None:
        """Start child `i` with channels of its own (the old ones went with the old child)."""
        self._close_channels(i)
        reader, writer = self.ctx.Pipe(duplex=False)
        self.inboxes[i], self.controls[i], self._readers[i] = self.ctx.Queue(), self.ctx.Queue(), reader
        p = self.ctx.Process(
            target=child_main,
            name=f"mixpilot-job-{i}",
            daemon=False,
            args=(
                self.settings,
                i,
                self.nice,
                self.inboxes[i],
                self.controls[i],
                writer,
                self.stop,
                self.service_factory,
                self.current[i],
            ),
        )
        p.start()
        writer.close()  # the child holds the write end: its exit (or death) ends the drain
        self.procs[i] = p
        self._spawned_at[i] = time.monotonic()
        drain = threading.Thread(
            target=self._drain_events, args=(i, reader), name=f"mixpilot-job-events-{i}", daemon=True
        )
        drain.start()
        self._drains[i] = drain

    def _close_channels(self, i: int) -> None:
        for q in (self.inboxes[i], self.controls[i]):
            if q is not None:
                with contextlib.suppress(Exception):
                    q.close()
                    q.cancel_join_thread()
        self.inboxes[i] = self.controls[i] = None

    def _drain_events(self, i: int, reader: Any) -> None:
        """Thread: child `i`'s pipe → the bus (events) and the loop (bookkeeping), until the child is gone."""
        try:
            while True:
                try:
                    msg = reader.recv()
                except (EOFError, OSError):  # the child exited or died
                    return
                except Exception as exc:  # a message cut short by the child's death
                    log.warning("job process %d: event channel broken (%s)", i, exc)
                    return
                try:
                    if msg[0] == "event":
                        self.bus.publish(msg[1], msg[2])
                    elif self._loop is not None:
                        self._loop.call_soon_threadsafe(self._on_message, msg, reader)
                except RuntimeError:  # loop closed
                    return
                except Exception as exc:
                    log.warning("job event dropped (%s)", exc)
        finally:
            with contextlib.suppress(Exception):
                reader.close()

    def _on_message(self, msg: tuple[Any, ...], reader: Any = None) -> None:
        kind, i = msg[0], msg[1]
        if reader is not None and reader is not self._readers[i]:  # from a child already replaced
            return
        if kind == "ready":
            self.ready.add(i)
        elif kind == "started":
            self.running[i] = msg[2]
            with self._lock:
                self._queued.discard(msg[2])
        elif kind == "finished":
            if self.running.get(i) == msg[2]:
                del self.running[i]
            if self._assigned.get(i) == msg[2]:
                del self._assigned[i]
            self._wake(msg[2], msg[3])
        self._dispatch()

    def _dispatch(self) -> None:
        """Hand waiting jobs to ready children that have none (on the loop's thread)."""
        if self._closing:
            return
        for i in sorted(self.ready):
            if not self._pending:
                return
            p = self.procs[i]
            if i in self._assigned or p is None or not p.is_alive() or self.inboxes[i] is None:
                continue
            job_id = self._pending.popleft()
            self._assigned[i] = job_id
            self.inboxes[i].put(job_id)

    def _wake(self, job_id: str, status: str | None) -> None:
        for fut in self._waiters.pop(job_id, []):
            if not fut.done():
                fut.set_result(status)

    async def run(self, job_id: str) -> str | None:
        """Run `job_id` in a child and wait for its end here: its final status (None when it was not claimed,
        its child died, or the runner stopped)."""
        fut: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(job_id, []).append(fut)
        await self.submit(job_id)
        return await fut

    async def _supervise(self) -> None:
        while not self._closing:
            await asyncio.sleep(0.5)
            for i, p in enumerate(self.procs):
                if self._closing or p is None or p.is_alive():
                    continue
                await asyncio.sleep(0.2)  # let the drain thread deliver what the child said last
                job_id = self.running.pop(i, None) or self.current[i].value.decode() or None
                self.current[i].value = b""
                self.ready.discard(i)
                handed = self._assigned.pop(i, None)
                if handed and handed != job_id:  # given to the child, never started: still queued
                    self._pending.appendleft(handed)
                if job_id:
                    self._wake(job_id, None)
                cancelled = self._killed_for_cancel.pop(i, None)
                if cancelled is not None:
                    log.info("job process %d stopped for the cancel of job %s; replacing it", i, cancelled)
                    self._spawn(i)
                    continue
                log.warning(
                    "job process %d (pid %s) exited with %s%s",
                    i,
                    p.pid,
                    p.exitcode,
                    f" while running job {job_id}" if job_id else "",
                )
                if job_id:
                    await self._interrupted(job_id)
                if time.monotonic() - self._spawned_at[i] >= self.respawn_every_s:
                    self._spawn(i)

    async def _interrupted(self, job_id: str) -> None:
        """The child running `job_id` died: queue the job again after a backoff, or fail it at the limit."""
        try:
            outcome = await self.store.interrupted(
                job_id,
                max_attempts=self.settings.job_max_attempts,
                backoff_base_s=self.settings.job_retry_backoff_s,
            )
            if outcome is None and await self.store.status(job_id) == "queued":
                # the child took the job ("started") but died before claiming it: it is still queued
                outcome = ("queued", 0.0)
        except Exception as exc:  # the recovery sweep retries it later (stale heartbeat)
            log.warning("could not queue interrupted job %s again (%s)", job_id, exc)
            return
        if outcome is None:
            return
        status, delay = outcome
        if status == "queued":
            await self.submit(job_id, delay_s=delay)
        else:
            self.bus.publish(job_id, {"event": "end", "status": status})

    async def _fail_crashed(self, job_id: str) -> None:
        try:
            final = await self.store.fail_crashed(job_id)
        except Exception as exc:  # the sweeper fails it later (stale heartbeat)
            log.warning("could not mark job %s failed (%s)", job_id, exc)
            return
        self.bus.publish(job_id, {"event": "end", "status": final or "failed"})

    # the Runner protocol
    async def submit(self, job_id: str, attempt: int = 0, delay_s: float = 0.0) -> None:
        with self._lock:
            self._queued.add(job_id)
        if delay_s > 0:
            asyncio.get_running_loop().call_later(delay_s, self._put, job_id)
        else:
            self._put(job_id)

    def _put(self, job_id: str) -> None:
        if not self._closing:
            self._pending.append(job_id)
            self._dispatch()

    def queued(self) -> list[str]:
        with self._lock:
            return list(self._queued)

    async def heartbeat_queued(self) -> None:
        await self.store.touch(self.queued(), ("queued",))

    def cancel(self, job_id: str) -> None:
        """Tell the child running `job_id` (it stops at its next progress event); kill it after
        `cancel_grace_s` if it is still on that job."""
        for i, jid in list(self.running.items()):
            if jid == job_id:
                with contextlib.suppress(Exception):
                    self.controls[i].put(job_id)
                if self._loop is not None:
                    self._loop.call_later(self.cancel_grace_s, self._enforce_cancel, i, job_id)

    def _enforce_cancel(self, i: int, job_id: str) -> None:
        p = self.procs[i]
        if self._closing or self.running.get(i) != job_id or p is None or not p.is_alive():
            return
        log.warning(
            "job %s did not stop within %.1f s of its cancel: killing job process %d",
            job_id,
            self.cancel_grace_s,
            i,
        )
        self._killed_for_cancel[i] = job_id
        p.kill()

    def alive(self) -> int:
        return sum(1 for p in self.procs if p is not None and p.is_alive())

    async def check(self) -> str:
        alive = self.alive()
        if alive == 0:
            raise RuntimeError(f"no job process is running (0/{self.n})")
        return f"local processes ({alive}/{self.n} alive)"

    async def aclose(self) -> None:
        """Stop within about `handback_s` + 1 s: running jobs go back to the queue (cooperatively, else
        their child is killed and the parent hands the job back); queued jobs stay queued."""
        self._closing = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        self.stop.value = 1  # a job taken from the inbox now stays queued in the database
        for c in self.controls:
            if c is not None:
                with contextlib.suppress(Exception):
                    c.put(HANDBACK)
        for q in (*self.inboxes, *self.controls):
            if q is not None:
                with contextlib.suppress(Exception):
                    q.put(None)
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + self.handback_s
        for p in self.procs:
            if p is not None:
                await loop.run_in_executor(None, p.join, max(0.0, deadline - time.monotonic()))
        await asyncio.sleep(0.1)  # the drain thread delivers the last "finished" messages
        left = {}
        for i, p in enumerate(self.procs):
            if p is not None and p.is_alive():
                p.kill()
                await loop.run_in_executor(None, p.join, 2.0)
                job = self.running.get(i) or self.current[i].value.decode()
                if job:
                    left[i] = job
        for job_id in left.values():  # killed mid-job: back to the queue for the next start-up
            try:
                await self.store.handback(job_id, message="handed back (the API stopped)")
            except Exception as exc:  # the recovery sweep finds it (stale heartbeat)
                log.warning("could not hand job %s back (%s)", job_id, exc)
        for drain in self._drains:  # each ends with its child's pipe
            if drain is not None:
                await loop.run_in_executor(None, drain.join, 2.0)
        for job_id in list(self._waiters):
            self._wake(job_id, None)
        for i in range(self.n):
            self._close_channels(i)
