"""Job rows (`memory.db.Job`): every database step of a job's life, on the async engine.

    queued ──claim──▶ running ──▶ succeeded | failed | cancelled
       ▲  ▲              │  (heartbeat every `job_heartbeat_s`)
       │  └─ interrupted ┘  its process died (`interrupted`, `recover`) or shut down (`handback`)
       └──── retry ◀─────── failed / cancelled jobs can be retried by hand

A claim is one ``UPDATE … WHERE status='queued'``, so a job never runs twice; every later write of
a run names its attempt (``attempts``), so a run that was given up on cannot touch the next one.
A run that was interrupted (its process crashed or restarted: `interrupted`, or its heartbeat
went stale: `recover`) is queued again after a backoff, up to `max_attempts` runs; then it is
``failed`` with the reason. Nothing is left ``running`` or ``queued`` with nobody to run it.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from memory import db

log = logging.getLogger("mixpilot.jobs.store")

#: the states a job ends in
TERMINAL = ("succeeded", "failed", "cancelled")
#: the error of a job whose worker stopped under it too often
CRASHED = (
    "the worker running this job stopped (crash or restart) {attempts} time(s), the limit; "
    "retry it with POST /api/v1/jobs/{{id}}/retry"
)


def backoff_s(attempts: int, base_s: float) -> float:
    """Wait before run `attempts` + 1 of an interrupted job: `base_s`, doubled per run so far (at most 5 min)."""
    return min(base_s * 2 ** max(attempts - 1, 0), 300.0)


class JobStore:
    """The job rows behind an async sessionmaker (`memory.db.make_sessionmaker`)."""

    def __init__(self, sessions: Any) -> None:
        self.sessions = sessions

    async def claim(self, job_id: str) -> db.Job | None:
        """Mark a queued job running (one attempt more) and return it; None when it was not queued."""
        async with self.sessions() as s, s.begin():
            res = await s.execute(
                update(db.Job)
                .where(db.Job.id == job_id, db.Job.status == "queued")
                .values(
                    status="running",
                    attempts=db.Job.attempts + 1,
                    heartbeat_at=db.utcnow(),
                    updated_at=db.utcnow(),
                    error=None,
                    progress=0.0,
                    message="starting",
                )
            )
            if (res.rowcount or 0) == 0:
                return None
            return (await s.execute(select(db.Job).where(db.Job.id == job_id))).scalar_one()

    async def write(
        self,
        job_id: str,
        *,
        only_if: tuple[str, ...] = ("running",),
        attempt: int | None = None,
        **values: Any,
    ) -> bool:
        """Set `values` on the job if its status is one of `only_if` (and, given `attempt`, it is still that
        run); returns whether it was."""
        values.setdefault("updated_at", db.utcnow())
        cond = [db.Job.id == job_id, db.Job.status.in_(only_if)]
        if attempt is not None:
            cond.append(db.Job.attempts == attempt)
        async with self.sessions() as s, s.begin():
            res = await s.execute(update(db.Job).where(*cond).values(**values))
            return (res.rowcount or 0) > 0

    async def handback(
        self, job_id: str, *, attempt: int | None = None, message: str = "handed back"
    ) -> bool:
        """A running job whose worker is shutting down: queued again at once (to run elsewhere or after the
        restart). The interrupted run still counts as a run (`attempts` only grows: a run never mistakes the
        next run's row for its own)."""
        return await self.write(
            job_id, attempt=attempt, status="queued", message=message, progress=0.0, heartbeat_at=db.utcnow()
        )

    async def interrupted(
        self,
        job_id: str,
        *,
        max_attempts: int,
        backoff_base_s: float,
        attempt: int | None = None,
        stale_before: Any = None,
    ) -> tuple[str, float] | None:
        """A running job whose run stopped (its process died): queued again to run after `backoff_s`, or
        ``failed`` with the reason once it has had `max_attempts` runs. Returns (new status, delay) when this
        call changed it (None: it was not running, or another process already dealt with it)."""
        async with self.sessions() as s, s.begin():
            cond = [db.Job.id == job_id, db.Job.status == "running"]
            if attempt is not None:
                cond.append(db.Job.attempts == attempt)
            if stale_before is not None:
                cond.append(db.Job.heartbeat_at < stale_before)
            attempts = (await s.execute(select(db.Job.attempts).where(*cond))).scalar_one_or_none()
            if attempts is None:
                return None
            cond.append(db.Job.attempts == attempts)
            now = db.utcnow()
            if attempts >= max_attempts:
                values: dict[str, Any] = dict(
                    status="failed",
                    message="worker lost",
                    updated_at=now,
                    error=CRASHED.format(attempts=attempts),
                )
                outcome = ("failed", 0.0)
            else:
                delay = backoff_s(attempts, backoff_base_s)
                # its heartbeat is set past the backoff: the sweeper leaves it alone until it is handed out again
                values = dict(
                    status="queued",
                    progress=0.0,
                    updated_at=now,
                    heartbeat_at=now + timedelta(seconds=delay),
                    message=f"interrupted (its worker stopped): run {attempts + 1} of {max_attempts} "
                    f"in {delay:.0f} s",
                )
                outcome = ("queued", delay)
            res = await s.execute(update(db.Job).where(*cond).values(**values))
            return outcome if (res.rowcount or 0) > 0 else None

    async def queued(self, *, limit: int = 10_000) -> list[tuple[str, int]]:
        """(id, attempts) of every queued job, oldest first: handed out again at start-up."""
        async with self.sessions() as s:
            rows = await s.execute(
                select(db.Job.id, db.Job.attempts)
                .where(db.Job.status == "queued")
                .order_by(db.Job.created_at)
                .limit(limit)
            )
            return [(r[0], int(r[1] or 0)) for r in rows]

    async def stale(self, *, stale_s: float, statuses: tuple[str, ...]) -> list[tuple[str, str, int]]:
        """(id, status, attempts) of jobs in `statuses` whose heartbeat is older than `stale_s`."""
        cutoff = db.utcnow() - timedelta(seconds=stale_s)
        async with self.sessions() as s:
            rows = await s.execute(
                select(db.Job.id, db.Job.status, db.Job.attempts).where(
                    db.Job.status.in_(statuses),
                    db.Job.heartbeat_at.is_not(None),
                    db.Job.heartbeat_at < cutoff,
                )
            )
            return [(r[0], r[1], int(r[2] or 0)) for r in rows]

    async def status(self, job_id: str) -> str | None:
        async with self.sessions() as s:
            return (await s.execute(select(db.Job.status).where(db.Job.id == job_id))).scalar_one_or_none()

    async def cancelled(self, job_ids: list[str]) -> list[str]:
        """Which of `job_ids` are cancelled."""
        if not job_ids:
            return []
        async with self.sessions() as s:
            rows = await s.execute(
                select(db.Job.id).where(db.Job.id.in_(job_ids), db.Job.status == "cancelled")
            )
            return [r[0] for r in rows]

    async def touch(self, job_ids: list[str], statuses: tuple[str, ...]) -> None:
        """A heartbeat now for each of `job_ids` still in one of `statuses`."""
        if not job_ids:
            return
        async with self.sessions() as s, s.begin():
            await s.execute(
                update(db.Job)
                .where(db.Job.id.in_(job_ids), db.Job.status.in_(statuses))
                .values(heartbeat_at=db.utcnow())
            )

    async def fail_crashed(self, job_id: str) -> str | None:
        """Fail a job whose process died (queued or running) with the retry message; returns its status."""
        await self.write(
            job_id,
            only_if=("queued", "running"),
            status="failed",
            error=CRASHED.format(attempts="one"),
            message="worker lost",
        )
        return await self.status(job_id)

    async def quota_use(
        self, *, owner_id: str, audio_id: str | None, thread_id: str | None
    ) -> tuple[int, int]:
        """(bytes the user's files take in the audio store, the float32 size of the file a job runs on: an
        upper bound of its result's stored size). A job continuing a thread runs on the thread's latest
        version, as long as the thread's last input."""
        async with self.sessions() as s:
            used = await db.stored_bytes(s, owner_id=owner_id)
            if audio_id is None and thread_id:
                audio_id = (
                    await s.execute(
                        select(db.Job.audio_id)
                        .where(
                            db.Job.owner_id == owner_id,
                            db.Job.thread_id == thread_id,
                            db.Job.audio_id.is_not(None),
                        )
                        .order_by(db.Job.created_at.desc())
                        .limit(1)
                    )
                ).scalar_one_or_none()
            row = await db.get_audio_file(s, owner_id=owner_id, audio_id=audio_id) if audio_id else None
            adding = int(row.duration_s * row.sample_rate * row.channels * 4) if row is not None else 0
            return used, adding

    async def record_output(
        self, *, owner_id: str, audio_id: str, audio: Any, stored_bytes: int | None = None
    ) -> None:
        async with self.sessions() as s, s.begin():
            await db.add_audio_file(
                s,
                owner_id=owner_id,
                audio_id=audio_id,
                duration_s=audio.duration_s,
                sample_rate=audio.sample_rate,
                channels=audio.channels,
                format="wav",
                original_filename=None,
                size_bytes=None,
                stored_bytes=stored_bytes,
            )

    async def sweep_stale(self, *, stale_s: float) -> int:
        """Fail every running (or locally queued) job whose heartbeat is older than `stale_s`; returns how many.

        The last resort (no retry): `app.jobs.recovery.recover` queues interrupted jobs again instead."""
        cutoff = db.utcnow() - timedelta(seconds=stale_s)
        async with self.sessions() as s, s.begin():
            res = await s.execute(
                update(db.Job)
                .where(
                    db.Job.status.in_(("running", "queued")),
                    db.Job.heartbeat_at.is_not(None),
                    db.Job.heartbeat_at < cutoff,
                )
                .values(
                    status="failed",
                    error=CRASHED.format(attempts="one or more"),
                    message="worker lost",
                    updated_at=db.utcnow(),
                )
            )
            n = res.rowcount or 0
        if n:
            log.warning("marked %d stale job(s) failed (their worker stopped)", n)
        return n
