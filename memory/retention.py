"""Retention and quotas of stored audio: what `mixpilot gc` removes, and how much one user may keep.

A stored version is *referenced* while anything can still reach it:

- a conversation: each thread's original, its timeline (undo walks it), its current inputs (a voice, a
  reference) and the source and result of every turn (an earlier version can be picked, played and rated);
  the service collects these (`agents.service.Mixpilot.referenced_versions`);
- an upload still listed in ``/files`` (a row with the uploaded file name);
- a result its owner downloaded (``audio_files.downloaded_at``);
- a reference track, and the inputs of a job still queued or running.

Removal is mark and sweep: `gc` marks what it finds unreferenced (``retention_marks``, with the time) and
removes a version once it has stayed unreferenced for ``retention_days``; a reference in between clears
the mark. So a version a running turn has just stored (its thread not yet written) is never taken, turning
retention on never deletes at once what was already lying around, and the clock is the database's own
record, the same for any audio store (local directory or S3). ``retention_days = 0`` keeps everything.

The decisions (`decide`, `quota_refusal`) are pure; the SQL reads and writes below them are the I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

# ---------------------------------------------------------------------------------- pure decisions


@dataclass(frozen=True, kw_only=True)
class Decision:
    """What one gc pass does: remove, newly mark, clear marks; and what waits (id -> when it is due)."""

    remove: list[str] = field(default_factory=list)
    mark: list[str] = field(default_factory=list)
    unmark: list[str] = field(default_factory=list)
    pending: dict[str, datetime] = field(default_factory=dict)


def retention_period(days: float | None) -> timedelta | None:
    """``retention_days`` as a period; None (keep forever) for 0 or None. Negative is a ValueError."""
    if days is None or days == 0:
        return None
    if days < 0:
        raise ValueError(f"retention_days must be 0 (keep forever) or positive, not {days}")
    return timedelta(days=days)


def decide(
    *,
    stored: Iterable[str],
    referenced: AbstractSet[str],
    marks: Mapping[str, datetime],
    now: datetime,
    keep_for: timedelta | None,
) -> Decision:
    """One mark-and-sweep pass over the ids in the store.

    An unreferenced version is marked the first time it is seen (``now``) and removed once its mark is
    `keep_for` old; a referenced one loses its mark; marks of versions no longer stored are cleared.
    With `keep_for` None (retention off) nothing is marked or removed and old marks are cleared, so
    turning retention on later starts every clock afresh."""
    stored_ids = set(stored)
    if keep_for is None:
        return Decision(unmark=sorted(marks))
    remove, mark, pending = [], [], {}
    for vid in sorted(stored_ids - referenced):
        since = marks.get(vid)
        if since is None:
            mark.append(vid)
            pending[vid] = now + keep_for
        elif now - since >= keep_for:
            remove.append(vid)
        else:
            pending[vid] = since + keep_for
    unmark = sorted(vid for vid in marks if vid in referenced or vid not in stored_ids or vid in remove)
    return Decision(remove=remove, mark=mark, unmark=unmark, pending=pending)


class QuotaExceeded(ValueError):
    """Storing more would take a user over ``user_quota_bytes``; the message says by how much and what to do."""


def quota_refusal(*, used: int, adding: int, quota: int) -> str | None:
    """The readable refusal when storing `adding` more bytes would take a user over `quota`; None if it fits."""
    if used + adding <= quota:
        return None
    needs = f", and this needs {human_size(adding)} more" if adding > 1 else ""
    return (
        f"storage quota reached: your files take {human_size(used)} of the {human_size(quota)} you may "
        f"keep{needs}. Delete files or threads you no longer need (DELETE /api/v1/files/{{id}}, "
        "DELETE /api/v1/threads/{id}) and try again; nothing you stored was removed"
    )


def human_size(n: float) -> str:
    """Bytes in decimal units (1.2 GB), as gc and the quota message print them."""
    for unit in ("B", "KB", "MB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


# ---------------------------------------------------------------------------------- SQL (the I/O)


async def held_by_rows(session: Any, among: Collection[str] | None = None) -> set[str]:
    """Versions the SQL rows hold: uploads listed in /files, downloaded results, reference tracks and the
    inputs of jobs queued or running (any owner: gc runs for the whole service). With `among`, only those
    of `among` (a DELETE asks about the few versions it would remove)."""
    from sqlalchemy import or_, select

    from memory import db

    wanted = None if among is None else set(among)
    held: set[str] = set()
    files = select(db.AudioFile.id).where(
        or_(db.AudioFile.original_filename.is_not(None), db.AudioFile.downloaded_at.is_not(None))
    )
    refs = select(db.ReferenceTrack.audio_id).where(db.ReferenceTrack.audio_id.is_not(None))
    if wanted is not None:
        files = files.where(db.AudioFile.id.in_(wanted))
        refs = refs.where(db.ReferenceTrack.audio_id.in_(wanted))
    held.update((await session.execute(files)).scalars().all())
    held.update((await session.execute(refs)).scalars().all())
    active = select(db.Job.audio_id, db.Job.inputs).where(db.Job.status.in_(("queued", "running")))
    for audio_id, inputs in (await session.execute(active)).all():
        if audio_id:
            held.add(audio_id)
        held.update(str(v) for v in (inputs or {}).values() if v)
    return held if wanted is None else held & wanted


async def load_marks(session: Any) -> dict[str, datetime]:
    from sqlalchemy import select

    from memory import db

    rows = (
        await session.execute(select(db.RetentionMark.audio_id, db.RetentionMark.unreferenced_since))
    ).all()
    return {vid: _aware(since) for vid, since in rows}


async def apply_marks(session: Any, decision: Decision, *, now: datetime) -> None:
    """Write the pass's marks (new ones at `now`, cleared ones deleted); the caller commits."""
    from sqlalchemy import delete

    from memory import db

    if decision.unmark:
        await session.execute(delete(db.RetentionMark).where(db.RetentionMark.audio_id.in_(decision.unmark)))
    for vid in decision.mark:
        session.add(db.RetentionMark(audio_id=vid, unreferenced_since=now))
    await session.flush()


async def forget_rows(session: Any, audio_ids: Iterable[str]) -> int:
    """Delete the result rows of removed versions (they are neither uploads nor downloaded, or they would
    have been kept), so /files never lists audio that is gone; returns how many."""
    from sqlalchemy import delete

    from memory import db

    ids = list(audio_ids)
    if not ids:
        return 0
    res = await session.execute(
        delete(db.AudioFile).where(
            db.AudioFile.id.in_(ids),
            db.AudioFile.original_filename.is_(None),
            db.AudioFile.downloaded_at.is_(None),
        )
    )
    return int(getattr(res, "rowcount", 0) or 0)


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were written in UTC."""
    from datetime import UTC

    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
