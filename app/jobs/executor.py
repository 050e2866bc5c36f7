"""`JobExecutor.run(job_id)`: one job end to end, the same in every runner and the arq worker.

It claims a queued job (`JobStore.claim`: a job never runs twice), runs `Mixpilot.turn` with an
``on_event`` that publishes progress to the bus and writes it to the row, keeps a heartbeat
(and polls the row every `cancel_poll_s`, so a cancel made in the database is seen at once), and
writes the result. Every write names the run (`attempt`): a run that was given up on never
touches the next run's row. Cancel and `handback` (shutdown: the job goes back to the queue) are
cooperative: the next progress event raises (tools report progress from their block loops); a
runner that must stop a job sooner ends its process (`app.jobs.processes`). The graph is sync,
so `run` is sync and runs in a worker thread; its database steps are coroutines submitted to
the event loop that owns the async engine (``asyncio.run_coroutine_threadsafe``: the job
system's sync→async bridge).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

from agents.progress import overall
from app.jobs.bus import EventBus, jsonable
from app.jobs.store import JobStore
from memory import db

log = logging.getLogger("mixpilot.jobs.executor")
T = TypeVar("T")


class JobCancelled(Exception):
    """Raised from a job's progress callback once its cancel was requested."""


class JobHandedBack(JobCancelled):
    """Raised from a job's progress callback when its worker shuts down: the job goes back to the queue."""


def progress_of(event: dict[str, Any], current: float) -> float:
    """Map a service progress event to an overall fraction (never decreasing): `agents.progress.overall`."""
    return overall(event, current)


def describe(event: dict[str, Any]) -> str | None:
    """The job row's one-line message for a progress event (None: keep the last one)."""
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


def result_of(res: Any) -> dict[str, Any]:
    """The job result the API returns, from a `TurnResult`."""
    return {
        "file_id": res.output_id,
        "kind": res.kind,
        "thread_id": res.thread_id,
        "turn_id": res.turn_id,
        "explanation": res.explanation,
        "plan": res.plan,
        "steps": res.steps,
        "metrics": {"before": res.metrics_before, "after": res.metrics_after},
        "applied": [
            {
                "tool": s.get("tool"),
                "target": s.get("target"),
                "params": s.get("params"),
                "status": s.get("status"),
            }
            for s in res.steps
            if s.get("status") in ("applied", "trimmed")
        ],
        "warnings": [w for s in res.steps for w in (s.get("warnings") or [])]
        + [
            f"{s.get('tool')}: {s.get('status')} ({s.get('reason') or s.get('why') or ''})".rstrip(" ()")
            for s in res.steps
            if s.get("status") in ("skipped", "rolled_back", "failed")
        ],
        "notes": res.notes,
        # the turn contract: answer / clarify / none turns say what was measured; a confirming next
        # turn on the same thread ("yes", "do it") runs suggested_steps
        "answer": res.answer,
        "findings": res.findings,
        "suggested_steps": res.suggested_steps,
        "checks": res.checks,
    }


class JobExecutor:
    """Runs one job end to end (see the module docstring). Thread-safe; one per process."""

    def __init__(
        self,
        *,
        service: Any,
        store: JobStore,
        loop: asyncio.AbstractEventLoop,
        bus: EventBus,
        heartbeat_s: float = 5.0,
        write_every_s: float = 0.5,
        cancel_poll_s: float = 0.5,
        quota_bytes: int | None = None,
    ) -> None:
        self.service, self.store, self.loop, self.bus = service, store, loop, bus
        #: ``user_quota_bytes``: a job whose result would take its owner over it fails before it runs
        self.quota_bytes = quota_bytes
        self.heartbeat_s, self.write_every_s = heartbeat_s, write_every_s
        self.cancel_poll_s = min(cancel_poll_s, heartbeat_s)
        self.cancel_requested: set[str] = set()
        self.handback_requested: set[str] = set()
        #: job id -> attempt, of the jobs running here now
        self.running: dict[str, int] = {}
        self._lock = threading.Lock()

    def _db(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def cancel(self, job_id: str) -> None:
        with self._lock:
            self.cancel_requested.add(job_id)

    def handback(self, job_id: str | None = None) -> dict[str, int]:
        """Ask running jobs (one, or all) to stop and go back to the queue; returns {job id: attempt} asked."""
        with self._lock:
            asked = {j: a for j, a in self.running.items() if job_id is None or j == job_id}
            self.handback_requested.update(asked)
            return asked

    def run(self, job_id: str) -> str | None:
        """Run the job if it is still queued; returns its final status (None when it was not claimed)."""
        job = self._db(self.store.claim(job_id))
        if job is None:
            return None
        attempt = int(job.attempts or 0)
        with self._lock:  # a cancel made before this claim already stopped the job in the database
            self.cancel_requested.discard(job_id)
            self.handback_requested.discard(job_id)
            self.running[job_id] = attempt
        self.bus.publish(job_id, {"event": "status", "status": "running", "attempt": job.attempts})
        stop = threading.Event()
        cancelled = threading.Event()

        def heartbeat() -> None:
            last = time.monotonic()
            while not stop.wait(self.cancel_poll_s):
                try:
                    if time.monotonic() - last >= self.heartbeat_s:
                        last = time.monotonic()
                        self._db(self.store.touch([job_id], ("running",)), timeout=10)
                    if self._db(self.store.status(job_id), timeout=10) == "cancelled":
                        cancelled.set()
                except Exception as exc:
                    log.warning("heartbeat for job %s failed (%s)", job_id, exc)

        hb = threading.Thread(target=heartbeat, name=f"job-heartbeat-{job_id[:8]}", daemon=True)
        hb.start()
        state: dict[str, Any] = {"progress": 0.0, "written": 0.0, "plan": None}

        def on_event(event: dict[str, Any]) -> None:
            if job_id in self.handback_requested:
                raise JobHandedBack()
            if cancelled.is_set() or job_id in self.cancel_requested:
                raise JobCancelled()
            state["progress"] = progress_of(event, state["progress"])
            self.bus.publish(job_id, {**event, "progress": state["progress"]})
            values: dict[str, Any] = {}
            if event.get("event") == "plan":
                state["plan"] = jsonable(event.get("plan"))
                values["plan"] = state["plan"]
            now = time.monotonic()
            if (
                values
                or event.get("event") in ("step_finished", "stage")
                or now - state["written"] > self.write_every_s
            ):
                values.update(
                    progress=state["progress"], message=describe(event) or None, heartbeat_at=db.utcnow()
                )
                values = {k: v for k, v in values.items() if v is not None or k == "plan"}
                state["written"] = now
                self._db(self.store.write(job_id, attempt=attempt, **values))

        try:
            self._check_quota(job)
            res = self.service.turn(
                job.request,
                thread_id=job.thread_id,
                audio_id=job.audio_id,
                inputs=dict(job.inputs or {}),
                on_event=on_event,
                user_id=job.owner_id,
            )
        except JobHandedBack:
            status = "queued"
            self._db(
                self.store.handback(job_id, attempt=attempt, message="handed back (worker shutting down)")
            )
        except JobCancelled:
            status = "cancelled"
            self._db(
                self.store.write(
                    job_id,
                    only_if=("running", "cancelled"),
                    attempt=attempt,
                    status="cancelled",
                    error="cancelled by request",
                    message="cancelled",
                )
            )
        except Exception as exc:  # a failed turn is data for the client
            log.info("job %s failed: %s", job_id, exc, exc_info=not isinstance(exc, (ValueError, KeyError)))
            status = "failed"
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            self._db(
                self.store.write(
                    job_id, attempt=attempt, status="failed", error=str(msg)[:2000], message="failed"
                )
            )
        else:
            status = self._finish(job, res, attempt)
        finally:
            stop.set()
            with self._lock:
                self.cancel_requested.discard(job_id)
                self.handback_requested.discard(job_id)
                self.running.pop(job_id, None)
        final = self._db(self.store.status(job_id))
        self.bus.publish(job_id, {"event": "end", "status": final or status})
        return final or status

    def _check_quota(self, job: db.Job) -> None:
        """Raise QuotaExceeded (the job fails with its message) when the result, estimated at the float32
        size of what the turn runs on (an upper bound of its stored size), would not fit the owner's quota."""
        if self.quota_bytes is None:
            return
        from memory.retention import QuotaExceeded, quota_refusal

        used, adding = self._db(
            self.store.quota_use(owner_id=job.owner_id, audio_id=job.audio_id, thread_id=job.thread_id)
        )
        refusal = quota_refusal(used=used, adding=adding, quota=self.quota_bytes)
        if refusal is not None:
            raise QuotaExceeded(refusal)

    def _finish(self, job: db.Job, res: Any, attempt: int) -> str:
        if res.output_id:
            self._db(
                self.store.record_output(
                    owner_id=job.owner_id,
                    audio_id=res.output_id,
                    audio=self.service.audio(res.output_id),
                    stored_bytes=self.service.store.nbytes(res.output_id),
                )
            )
        result = jsonable(result_of(res))
        ok = self._db(
            self.store.write(
                job.id,
                attempt=attempt,
                status="succeeded",
                progress=1.0,
                message="done",
                plan=result.get("plan") or None,
                result=result,
                turn_id=res.turn_id,
            )
        )
        return "succeeded" if ok else "cancelled"
