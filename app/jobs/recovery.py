"""Jobs that survive restarts: hand queued jobs out again, retry interrupted ones (`recover`).

Called by the API at start-up and in its housekeeping, and by `mixpilot worker` at start-up and
periodically; several callers at once are safe (every change is a conditional ``UPDATE`` of one row,
and a job is claimed once).

- At start-up every ``queued`` job is handed to the runner again (an in-process queue died with its
  process; arq deduplicates what is still in Redis).
- A ``queued`` job whose heartbeat stopped was waiting in a process that is gone: handed out again.
- A ``running`` job whose heartbeat stopped was interrupted (its process crashed or was killed):
  queued again after a backoff, up to ``job_max_attempts`` runs, then ``failed`` with the reason
  (`JobStore.interrupted`).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from memory import db

if TYPE_CHECKING:
    from app.jobs.runner import Runner
    from app.jobs.store import JobStore
    from app.settings import Settings

log = logging.getLogger("mixpilot.jobs.recovery")


def startup_stale_s(settings: Settings) -> float:
    """At start-up a running job is interrupted once it missed two heartbeats (its process is gone)."""
    return min(settings.job_stale_s, 2 * settings.job_heartbeat_s + 2.0)


async def recover(
    store: JobStore,
    runner: Runner,
    settings: Settings,
    *,
    startup: bool = False,
    stale_s: float | None = None,
    bus: Any = None,
) -> dict[str, int]:
    """Hand out queued jobs again and retry (or fail) interrupted ones; returns what it did, by kind."""
    done = {"queued": 0, "retried": 0, "failed": 0}
    if startup:
        for job_id, attempts in await store.queued():
            if runner.tracks_queued:
                await store.touch([job_id], ("queued",))
            await runner.submit(job_id, attempts)
            done["queued"] += 1
    stale = stale_s if stale_s is not None else settings.job_stale_s
    cutoff = db.utcnow() - timedelta(seconds=stale)
    for job_id, status, attempts in await store.stale(stale_s=stale, statuses=("queued", "running")):
        if status == "queued":
            await store.touch([job_id], ("queued",))
            await runner.submit(job_id, attempts)
            done["queued"] += 1
            continue
        outcome = await store.interrupted(
            job_id,
            max_attempts=settings.job_max_attempts,
            backoff_base_s=settings.job_retry_backoff_s,
            attempt=attempts,
            stale_before=cutoff,
        )
        if outcome is None:
            continue
        new_status, delay = outcome
        if new_status == "queued":
            await runner.submit(job_id, attempts, delay_s=delay)
            done["retried"] += 1
        else:
            done["failed"] += 1
            if bus is not None:
                bus.publish(job_id, {"event": "end", "status": "failed"})
    if any(done.values()):
        log.warning(
            "jobs recovered: %d handed out again, %d interrupted retried, %d failed after %d runs",
            done["queued"],
            done["retried"],
            done["failed"],
            settings.job_max_attempts,
        )
    return done
