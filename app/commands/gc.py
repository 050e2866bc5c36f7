"""`mixpilot gc [--dry-run] [--json]`: remove stored audio nothing references any more (`memory.retention`).

One pass of mark and sweep over the audio store the settings name (the data dir, or S3 with
``MIXPILOT_STORAGE_URL``), against the database the API uses (SQLite in the data dir, or Postgres with
``MIXPILOT_DATABASE_URL``) and its conversation threads. Versions unreferenced for ``retention_days``
go, with their download renditions and the result rows that listed them; it prints what it removed and
the bytes freed. Run it from cron or a scheduled container, on any one machine; ``retention_days = 0``
(the default) removes nothing.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from app.settings import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gc",
        help="remove stored audio versions unreferenced for MIXPILOT_RETENTION_DAYS (and their downloads)",
    )
    p.add_argument("--dry-run", action="store_true", help="print what would be removed; change nothing")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(func=run)


@dataclass(kw_only=True)
class GcReport:
    retention_days: float
    dry_run: bool
    stored: int  # versions in the store
    referenced: int  # of them, referenced
    removed: dict[str, int] = field(default_factory=dict)  # version id -> bytes it took
    renditions_removed: int = 0
    rows_removed: int = 0
    pending: dict[str, str] = field(default_factory=dict)  # unreferenced version -> when it becomes due
    compressed: int = 0  # raw versions a stopped process left uncompressed (write-behind), compressed now

    @property
    def freed_bytes(self) -> int:
        return sum(self.removed.values())

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "freed_bytes": self.freed_bytes}


async def collect(
    settings: Settings, service: Any, *, dry_run: bool = False, now: datetime | None = None
) -> GcReport:
    """One gc pass (see the module docstring); `now` is the pass's clock (tests move it forward)."""
    from asyncio import to_thread

    from app.runtime import open_database
    from memory import db, retention

    keep_for = retention.retention_period(settings.retention_days)
    if keep_for is not None and keep_for.total_seconds() <= settings.job_timeout_s:
        raise ValueError(
            f"retention_days ({settings.retention_days}) must be longer than a job may run "
            f"(job_timeout_s = {settings.job_timeout_s:.0f} s): a running turn's result is unreferenced "
            "until its thread is written"
        )
    now = now or db.utcnow()
    store = service.store
    engine, sessions = await open_database(settings)
    try:
        stored = await to_thread(lambda: list(store.ids()))
        threads = await to_thread(service.referenced_versions)
        async with sessions() as s:
            referenced = threads | await retention.held_by_rows(s)
            marks = await retention.load_marks(s)
            decision = retention.decide(
                stored=stored, referenced=referenced, marks=marks, now=now, keep_for=keep_for
            )
            report = GcReport(
                retention_days=settings.retention_days,
                dry_run=dry_run,
                stored=len(stored),
                referenced=len(set(stored) & referenced),
                pending={vid: due.isoformat() for vid, due in decision.pending.items()},
            )
            for vid in decision.remove:
                try:
                    report.removed[vid] = await to_thread(store.nbytes, vid)
                except KeyError:  # removed meanwhile (another gc, a DELETE)
                    continue
            if dry_run:
                return report
            # what was referenced while this pass read the threads (an upload of the same audio, a new turn)
            # stays: the rows and threads are read again just before anything goes
            again = await retention.held_by_rows(s) | await to_thread(service.referenced_versions)
            for vid in again & set(report.removed):
                del report.removed[vid]
            report.rows_removed = await retention.forget_rows(s, report.removed)
            await retention.apply_marks(s, decision, now=now)
            await s.commit()
        report.renditions_removed = await to_thread(_remove_audio, settings, service, list(report.removed))
        return report
    finally:
        await engine.dispose()


def _remove_audio(settings: Settings, service: Any, version_ids: list[str]) -> int:
    """Each version's download renditions, then the version itself; returns how many renditions went."""
    renditions = 0
    try:
        from app.api.files import remove_renditions
    except ImportError:  # no API extra: no API ever made renditions here
        remove_renditions = None  # type: ignore[assignment]
    for vid in version_ids:
        if remove_renditions is not None:
            # the renditions helpers read only the settings and the service off the API's state
            renditions += remove_renditions(
                cast(Any, SimpleNamespace(settings=settings, service=service)), vid
            )
        service.store.remove(vid)
    return renditions


def render(report: GcReport) -> str:
    from memory.retention import human_size

    verb = "would remove" if report.dry_run else "removed"
    lines = []
    if not report.retention_days:
        lines.append("retention is off (MIXPILOT_RETENTION_DAYS=0): nothing is removed")
    for vid, size in sorted(report.removed.items()):
        lines.append(f"{verb} {vid} ({human_size(size)})")
    lines.append(
        f"{report.stored} stored versions, {report.referenced} referenced; {verb} {len(report.removed)}, "
        f"{human_size(report.freed_bytes)} {'to free' if report.dry_run else 'freed'}"
        + (f", {report.renditions_removed} download renditions" if report.renditions_removed else "")
    )
    if report.compressed:
        lines.append(f"compressed {report.compressed} versions a stopped process had left uncompressed")
    if report.pending:
        first = min(report.pending.values())
        lines.append(
            f"{len(report.pending)} unreferenced versions wait out the retention period (the first is due {first})"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from app.runtime import open_service
    from app.settings import Settings

    settings = Settings()
    service = open_service(settings, with_memory=False)
    try:
        report = asyncio.run(collect(settings, service, dry_run=args.dry_run))
        compact = getattr(service.store, "compact", None)
        if callable(compact) and not args.dry_run:
            report.compressed = int(compact())
    finally:
        service.close()
    print(json.dumps(report.to_dict()) if args.json else render(report))
    return 0
