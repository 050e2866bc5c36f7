"""Job rows (`memory.db.Job`): every database step of a job's life, on the async engine.

    queued ──claim──▶ running ──▶ succeeded | failed | cancelled
       ▲                 │  (heartbeat every `job_heartbeat_s`)
       └──── retry ◀─────┘  failed / cancelled jobs can be retried

A claim is one ``UPDATE … WHERE status='queued'``, so a job never runs twice. `sweep_stale`: a
job whose heartbeat stopped (its process crashed) becomes ``failed`` with a message saying it
can be retried — never stuck ``running``.
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
#: the error of a job whose worker stopped under it
CRASHED = "the worker running this job stopped (crash or restart); retry it with POST /api/v1/jobs/{id}/retry"


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

    async def write(self, job_id: str, *, only_if: tuple[str, ...] = ("running",), **values: Any) -> bool:
        """Set `values` on the job if its status is one of `only_if`; returns whether it was."""
        values.setdefault("updated_at", db.utcnow())
        async with self.sessions() as s, s.begin():
            res = await s.execute(
                update(db.Job).where(db.Job.id == job_id, db.Job.status.in_(only_if)).values(**values)
            )
            return (res.rowcount or 0) > 0

    async def status(self, job_id: str) -> str | None:
        async with self.sessions() as s:
            return (await s.execute(select(db.Job.status).where(db.Job.id == job_id))).scalar_one_or_none()

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
            job_id, only_if=("queued", "running"), status="failed", error=CRASHED, message="worker lost"
        )
        return await self.status(job_id)

    async def record_output(self, *, owner_id: str, audio_id: str, audio: Any) -> None:
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
            )

    async def sweep_stale(self, *, stale_s: float) -> int:
        """Fail every running (or locally queued) job whose heartbeat is older than `stale_s`; returns how many."""
        cutoff = db.utcnow() - timedelta(seconds=stale_s)
        async with self.sessions() as s, s.begin():
            res = await s.execute(
                update(db.Job)
                .where(
                    db.Job.status.in_(("running", "queued")),
                    db.Job.heartbeat_at.is_not(None),
                    db.Job.heartbeat_at < cutoff,
                )
                .values(status="failed", error=CRASHED, message="worker lost", updated_at=db.utcnow())
            )
            n = res.rowcount or 0
        if n:
            log.warning("marked %d stale job(s) failed (their worker stopped)", n)
        return n
