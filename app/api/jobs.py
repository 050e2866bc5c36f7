"""Background jobs: one conversation turn each, run in-process (a thread pool) or by arq workers.

The life of a job (rows in ``jobs``, `memory.db.Job`)::

    queued ──claim──▶ running ──▶ succeeded | failed | cancelled
       ▲                 │  (heartbeat every `job_heartbeat_s`)
       └──── retry ◀─────┘  failed / cancelled jobs can be retried

- `JobExecutor.run(job_id)` is the one implementation (sync: the graph is sync). It claims a
  queued job atomically (``UPDATE … WHERE status='queued'``), so a job never runs twice, runs
  `Mixpilot.turn` with an `on_event` that publishes progress to the `EventBus` and writes
  progress to the row, keeps a heartbeat, and writes the result. Database calls are
  coroutines submitted to the event loop that owns the async engine.
- `app.api.jobproc.ProcessRunner` (default): niced child processes of the API, each running this
  `JobExecutor`; `LocalRunner`: a thread pool in the API process. `ArqRunner` (``MIXPILOT_REDIS_URL``):
  the API only enqueues; `mixpilot worker` (app/api/worker.py) runs the jobs.
- `sweep_stale`: a job whose heartbeat stopped (its process crashed) becomes ``failed`` with a
  message saying it can be retried — never stuck ``running``. The API runs it at start-up and
  periodically; every worker runs it at start-up.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import select, update

from memory import db

log = logging.getLogger("mixpilot.api.jobs")

TERMINAL = ("succeeded", "failed", "cancelled")
CRASHED = "the worker running this job stopped (crash or restart); retry it with POST /api/v1/jobs/{id}/retry"
#: progress (0..1) at the start of each stage; execute spans EXEC_SPAN
STAGE_PROGRESS = {"analyze": 0.02, "recall": 0.08, "plan": 0.1, "execute": 0.15, "evaluate": 0.9}
EXEC_SPAN = (0.15, 0.9)


class JobCancelled(Exception):
    pass


def progress_of(event: dict[str, Any], current: float) -> float:
    """Map a service progress event to an overall fraction (never decreasing)."""
    kind = event.get("event")
    value = current
    if kind == "stage":
        value = STAGE_PROGRESS.get(str(event.get("stage")), current)
    elif kind in ("step_started", "step_progress", "step_finished"):
        total = max(1, int(event.get("total") or 1))
        index = int(event.get("index") or 0)
        frac = {"step_started": 0.0, "step_finished": 1.0}.get(kind, float(event.get("fraction") or 0.0))
        lo, hi = EXEC_SPAN
        value = lo + (hi - lo) * (index + min(max(frac, 0.0), 1.0)) / total
    elif kind == "done":
        value = 0.98
    return round(max(current, min(value, 1.0)), 4)


def describe(event: dict[str, Any]) -> str | None:
    kind = event.get("event")
    if kind == "stage":
        return f"{event.get('stage')}"
    if kind == "step_started":
        return f"step {int(event.get('index', 0)) + 1}/{event.get('total')}: {event.get('tool')}"
    if kind == "step_progress" and event.get("message"):
        return f"{event.get('tool')}: {event.get('message')}"
    if kind == "step_finished":
        return f"step {int(event.get('index', 0)) + 1}/{event.get('total')}: {event.get('tool')} {event.get('status')}"
    return None


def jsonable(value: Any) -> Any:
    """A JSON-safe copy (numpy scalars etc. via str/float; NaN and inf → None)."""
    return _clean(json.loads(json.dumps(value, default=_default)))


def _default(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def _clean(value: Any) -> Any:
    """NaN/inf → None (JSON has no NaN)."""
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


# ------------------------------------------------------------------------------ event bus


class EventBus(Protocol):
    def publish(self, job_id: str, event: dict[str, Any]) -> None: ...

    def subscribe(self, job_id: str, *, wait_s: float = 1.0) -> AsyncIterator[list[dict[str, Any]]]: ...

    async def aclose(self) -> None: ...


class LocalBus:
    """In-process: events kept per job (bounded), published from any thread, read on the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, keep: int = 500, linger_s: float = 600.0) -> None:
        self.loop, self.keep, self.linger_s = loop, keep, linger_s
        self._events: dict[str, list[dict[str, Any]]] = {}
        self._offset: dict[str, int] = {}
        self._waiters: dict[str, asyncio.Event] = {}
        self._touched: dict[str, float] = {}

    def publish(self, job_id: str, event: dict[str, Any]) -> None:
        self.loop.call_soon_threadsafe(self._append, job_id, jsonable(event))

    def _append(self, job_id: str, event: dict[str, Any]) -> None:
        events = self._events.setdefault(job_id, [])
        events.append(event)
        if len(events) > self.keep:  # keep the first (plan) and the latest
            drop = len(events) - self.keep
            del events[1:1 + drop]
            self._offset[job_id] = self._offset.get(job_id, 0) + drop
        self._touched[job_id] = time.monotonic()
        self._waiters.setdefault(job_id, asyncio.Event()).set()
        self._expire()

    def _expire(self) -> None:
        now = time.monotonic()
        for jid in [j for j, t in self._touched.items() if now - t > self.linger_s]:
            for d in (self._events, self._offset, self._waiters, self._touched):
                d.pop(jid, None)

    async def subscribe(self, job_id: str, *, wait_s: float = 1.0) -> AsyncIterator[list[dict[str, Any]]]:
        """Yield batches of new events (an empty batch after `wait_s` without any)."""
        seen = 0
        while True:
            events = self._events.get(job_id, [])
            offset = self._offset.get(job_id, 0)
            batch = events[max(seen - offset, 0):]
            if batch:
                seen = offset + len(events)
                yield list(batch)
                continue
            waiter = self._waiters.setdefault(job_id, asyncio.Event())
            waiter.clear()
            try:
                await asyncio.wait_for(waiter.wait(), wait_s)
            except TimeoutError:
                yield []

    async def aclose(self) -> None:
        pass


class RedisBus:
    """Across processes: one Redis stream per job (``mixpilot:jobev:{id}``), capped and expiring."""

    PREFIX = "mixpilot:jobev:"

    def __init__(self, url: str, *, keep: int = 1000, ttl_s: int = 24 * 3600) -> None:
        import redis

        self.url, self.keep, self.ttl_s = url, keep, ttl_s
        self._sync = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._async = None

    def publish(self, job_id: str, event: dict[str, Any]) -> None:
        key = self.PREFIX + job_id
        try:
            pipe = self._sync.pipeline()
            pipe.xadd(key, {"e": json.dumps(jsonable(event))}, maxlen=self.keep, approximate=True)
            pipe.expire(key, self.ttl_s)
            pipe.execute()
        except Exception as exc:  # noqa: BLE001 - progress is best effort; the job row is the truth
            log.warning("could not publish job progress (%s)", exc)

    async def subscribe(self, job_id: str, *, wait_s: float = 1.0) -> AsyncIterator[list[dict[str, Any]]]:
        import redis.asyncio as aredis

        if self._async is None:
            self._async = aredis.Redis.from_url(self.url, socket_connect_timeout=2)
        last = "0-0"
        key = self.PREFIX + job_id
        while True:
            try:
                got = await self._async.xread({key: last}, block=int(wait_s * 1000), count=200)
            except Exception as exc:  # noqa: BLE001 - Redis hiccup: caller falls back to the job row
                log.warning("could not read job progress (%s)", exc)
                await asyncio.sleep(wait_s)
                yield []
                continue
            batch = []
            for _key, entries in got or []:
                for entry_id, fields in entries:
                    last = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                    raw = fields.get(b"e") or fields.get("e")
                    try:
                        batch.append(json.loads(raw))
                    except (TypeError, ValueError):
                        continue
            yield batch

    async def aclose(self) -> None:
        if self._async is not None:
            await self._async.aclose()
        self._sync.close()


# ------------------------------------------------------------------------------ database steps


async def _claim(sessions, job_id: str) -> db.Job | None:
    async with sessions() as s, s.begin():
        res = await s.execute(update(db.Job).where(db.Job.id == job_id, db.Job.status == "queued").values(
            status="running", attempts=db.Job.attempts + 1, heartbeat_at=db.utcnow(), updated_at=db.utcnow(),
            error=None, progress=0.0, message="starting"))
        if (res.rowcount or 0) == 0:
            return None
        return (await s.execute(select(db.Job).where(db.Job.id == job_id))).scalar_one()


async def _write(sessions, job_id: str, *, only_if: tuple[str, ...] = ("running",), **values: Any) -> bool:
    values.setdefault("updated_at", db.utcnow())
    async with sessions() as s, s.begin():
        res = await s.execute(update(db.Job).where(db.Job.id == job_id, db.Job.status.in_(only_if)).values(**values))
        return (res.rowcount or 0) > 0


async def _status(sessions, job_id: str) -> str | None:
    async with sessions() as s:
        return (await s.execute(select(db.Job.status).where(db.Job.id == job_id))).scalar_one_or_none()


async def _touch(sessions, job_ids: list[str], statuses: tuple[str, ...]) -> None:
    if not job_ids:
        return
    async with sessions() as s, s.begin():
        await s.execute(update(db.Job).where(db.Job.id.in_(job_ids), db.Job.status.in_(statuses))
                        .values(heartbeat_at=db.utcnow()))


async def _record_output(sessions, *, owner_id: str, audio_id: str, audio: Any) -> None:
    async with sessions() as s, s.begin():
        await db.add_audio_file(s, owner_id=owner_id, audio_id=audio_id, duration_s=audio.duration_s,
                                sample_rate=audio.sample_rate, channels=audio.channels, format="wav",
                                original_filename=None, size_bytes=None)


async def sweep_stale(sessions, *, stale_s: float) -> int:
    """Fail every running (or locally queued) job whose heartbeat is older than `stale_s`; returns how many."""
    cutoff = db.utcnow() - timedelta(seconds=stale_s)
    async with sessions() as s, s.begin():
        res = await s.execute(update(db.Job).where(
            db.Job.status.in_(("running", "queued")), db.Job.heartbeat_at.is_not(None), db.Job.heartbeat_at < cutoff,
        ).values(status="failed", error=CRASHED, message="worker lost", updated_at=db.utcnow()))
        n = res.rowcount or 0
    if n:
        log.warning("marked %d stale job(s) failed (their worker stopped)", n)
    return n


# ------------------------------------------------------------------------------ executor


class JobExecutor:
    """Runs one job end to end (see the module docstring). Thread-safe; one per process."""

    def __init__(self, *, service: Any, sessions: Any, loop: asyncio.AbstractEventLoop, bus: EventBus,
                 heartbeat_s: float = 5.0, write_every_s: float = 0.5) -> None:
        self.service, self.sessions, self.loop, self.bus = service, sessions, loop, bus
        self.heartbeat_s, self.write_every_s = heartbeat_s, write_every_s
        self.cancel_requested: set[str] = set()
        self._lock = threading.Lock()

    def _db(self, coro, timeout: float = 60.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def cancel(self, job_id: str) -> None:
        with self._lock:
            self.cancel_requested.add(job_id)

    def run(self, job_id: str) -> str | None:
        """Run the job if it is still queued; returns its final status (None when it was not claimed)."""
        job = self._db(_claim(self.sessions, job_id))
        if job is None:
            return None
        with self._lock:  # a cancel made before this claim already stopped the job in the database
            self.cancel_requested.discard(job_id)
        self.bus.publish(job_id, {"event": "status", "status": "running", "attempt": job.attempts})
        stop = threading.Event()
        cancelled = threading.Event()

        def heartbeat() -> None:
            while not stop.wait(self.heartbeat_s):
                try:
                    self._db(_touch(self.sessions, [job_id], ("running",)), timeout=10)
                    if self._db(_status(self.sessions, job_id), timeout=10) == "cancelled":
                        cancelled.set()
                except Exception as exc:  # noqa: BLE001
                    log.warning("heartbeat for job %s failed (%s)", job_id, exc)

        hb = threading.Thread(target=heartbeat, name=f"job-heartbeat-{job_id[:8]}", daemon=True)
        hb.start()
        state = {"progress": 0.0, "written": 0.0, "plan": None}

        def on_event(event: dict[str, Any]) -> None:
            if cancelled.is_set() or job_id in self.cancel_requested:
                raise JobCancelled()
            state["progress"] = progress_of(event, state["progress"])
            self.bus.publish(job_id, {**event, "progress": state["progress"]})
            values: dict[str, Any] = {}
            if event.get("event") == "plan":
                state["plan"] = jsonable(event.get("plan"))
                values["plan"] = state["plan"]
            now = time.monotonic()
            if values or event.get("event") in ("step_finished", "stage") or now - state["written"] > self.write_every_s:
                values.update(progress=state["progress"], message=describe(event) or None, heartbeat_at=db.utcnow())
                values = {k: v for k, v in values.items() if v is not None or k == "plan"}
                state["written"] = now
                self._db(_write(self.sessions, job_id, **values))

        try:
            res = self.service.turn(job.request, thread_id=job.thread_id, audio_id=job.audio_id,
                                    inputs=dict(job.inputs or {}), on_event=on_event, user_id=job.owner_id)
        except JobCancelled:
            status, values = "cancelled", {"message": "cancelled"}
            self._db(_write(self.sessions, job_id, only_if=("running", "cancelled"), status="cancelled",
                            error="cancelled by request", message="cancelled"))
        except Exception as exc:  # noqa: BLE001 - a failed turn is data for the client
            log.info("job %s failed: %s", job_id, exc, exc_info=not isinstance(exc, (ValueError, KeyError)))
            status = "failed"
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            self._db(_write(self.sessions, job_id, status="failed", error=str(msg)[:2000], message="failed"))
        else:
            status = self._finish(job, res)
        finally:
            stop.set()
            with self._lock:
                self.cancel_requested.discard(job_id)
        final = self._db(_status(self.sessions, job_id))
        self.bus.publish(job_id, {"event": "end", "status": final or status})
        return final or status

    def _finish(self, job: db.Job, res: Any) -> str:
        if res.output_id:
            self._db(_record_output(self.sessions, owner_id=job.owner_id, audio_id=res.output_id,
                                    audio=self.service.audio(res.output_id)))
        result = jsonable(result_of(res))
        ok = self._db(_write(self.sessions, job.id, status="succeeded", progress=1.0, message="done",
                             plan=result.get("plan") or None, result=result, turn_id=res.turn_id))
        return "succeeded" if ok else "cancelled"


def result_of(res: Any) -> dict[str, Any]:
    """The job result the API returns, from a `TurnResult`."""
    return {
        "file_id": res.output_id, "kind": res.kind, "thread_id": res.thread_id, "turn_id": res.turn_id,
        "explanation": res.explanation, "plan": res.plan, "steps": res.steps,
        "metrics": {"before": res.metrics_before, "after": res.metrics_after},
        "applied": [{"tool": s.get("tool"), "target": s.get("target"), "params": s.get("params"),
                     "status": s.get("status")} for s in res.steps if s.get("status") in ("applied", "trimmed")],
        "warnings": [w for s in res.steps for w in (s.get("warnings") or [])]
        + [f"{s.get('tool')}: {s.get('status')} ({s.get('reason') or s.get('why') or ''})".rstrip(" ()")
           for s in res.steps if s.get("status") in ("skipped", "rolled_back", "failed")],
        "notes": res.notes,
    }


# ------------------------------------------------------------------------------ runners


def lower_priority(nice: int) -> None:
    """Lower this thread's CPU priority (Linux: per thread), so request handling wins the CPU.

    ``SCHED_BATCH`` (where there is one) and the niceness, as the API's job processes do
    (`app.api.jobproc.lower_process_priority`): the worker's event loop (heartbeats, Redis) keeps
    normal priority, its job threads get this.
    """
    import os

    if hasattr(os, "SCHED_BATCH"):
        with contextlib.suppress(OSError):
            os.sched_setscheduler(threading.get_native_id(), os.SCHED_BATCH, os.sched_param(0))
    if nice > 0 and hasattr(os, "setpriority"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
        except OSError:
            pass


class LocalRunner:
    """Jobs in a thread pool inside the API process; queued jobs keep a heartbeat here too.

    Used with an injected service or ``MIXPILOT_JOB_RUNNER=thread``; the default local runner is
    `app.api.jobproc.ProcessRunner` (child processes: jobs do not hold the API's GIL).
    """

    tracks_queued = True

    def __init__(self, executor: JobExecutor, *, threads: int = 2, nice: int = 10) -> None:
        self.executor = executor
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mixpilot-job",
                                                          initializer=lower_priority, initargs=(nice,))
        self._queued: set[str] = set()
        self._lock = threading.Lock()
        self._futures: set[concurrent.futures.Future] = set()

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
        except Exception:  # noqa: BLE001 - logged; the sweeper fails a job left running
            log.exception("job %s crashed the runner", job_id)

    def queued(self) -> list[str]:
        with self._lock:
            return list(self._queued)

    async def heartbeat_queued(self) -> None:
        await _touch(self.executor.sessions, self.queued(), ("queued",))

    def cancel(self, job_id: str) -> None:
        self.executor.cancel(job_id)

    async def aclose(self) -> None:
        for jid in self.queued():
            self.executor.cancel(jid)
        await asyncio.get_running_loop().run_in_executor(None, lambda: self.pool.shutdown(wait=True,
                                                                                          cancel_futures=True))


class ArqRunner:
    """The API only enqueues; `mixpilot worker` processes run `run_job` (app/api/worker.py)."""

    def __init__(self, redis_url: str, *, queue_name: str | None = None) -> None:
        self.redis_url, self.queue_name = redis_url, queue_name
        self.pool = None

    async def start(self) -> None:
        from arq import create_pool

        from app.api.worker import redis_settings

        self.pool = await create_pool(redis_settings(self.redis_url))

    async def submit(self, job_id: str, attempt: int = 0) -> None:
        if self.pool is None:
            await self.start()
        kwargs = {"_queue_name": self.queue_name} if self.queue_name else {}
        await self.pool.enqueue_job("run_job", job_id, _job_id=f"{job_id}:{attempt}", **kwargs)

    async def heartbeat_queued(self) -> None:
        pass

    def cancel(self, job_id: str) -> None:
        pass  # the worker's heartbeat sees status 'cancelled' in the database

    async def aclose(self) -> None:
        if self.pool is not None:
            await self.pool.aclose()


async def periodic(fn: Callable[[], Any], every_s: float) -> None:
    """Run `fn` (a coroutine function) every `every_s` until cancelled; errors are logged."""
    while True:
        await asyncio.sleep(every_s)
        try:
            await fn()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            log.warning("periodic task failed (%s)", exc)
