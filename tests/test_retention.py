"""Retention (`memory.retention`, `mixpilot gc`): what a thread, a listed upload or a downloaded result
references survives gc; what nothing references is removed once unreferenced for ``retention_days``,
with its download renditions and the result row that listed it. On SQLite and on the real Postgres."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from memory.retention import decide, quota_refusal, retention_period

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


# ---------------------------------------------------------------------------------- the pure decisions


def test_decide_marks_then_removes_after_the_period():
    first = decide(stored=["a", "b"], referenced={"a"}, marks={}, now=T0, keep_for=30 * DAY)
    assert first.remove == [] and first.mark == ["b"] and first.pending == {"b": T0 + 30 * DAY}
    early = decide(stored=["a", "b"], referenced={"a"}, marks={"b": T0}, now=T0 + 29 * DAY, keep_for=30 * DAY)
    assert early.remove == [] and early.mark == [] and early.pending == {"b": T0 + 30 * DAY}
    due = decide(stored=["a", "b"], referenced={"a"}, marks={"b": T0}, now=T0 + 30 * DAY, keep_for=30 * DAY)
    assert due.remove == ["b"] and due.unmark == ["b"]


def test_decide_a_reference_clears_the_mark_and_retention_off_removes_nothing():
    again = decide(stored=["b"], referenced={"b"}, marks={"b": T0}, now=T0 + 99 * DAY, keep_for=DAY)
    assert again.remove == [] and again.unmark == ["b"]
    gone = decide(stored=[], referenced=set(), marks={"c": T0}, now=T0 + 99 * DAY, keep_for=DAY)
    assert gone.remove == [] and gone.unmark == ["c"]
    off = decide(stored=["x"], referenced=set(), marks={"x": T0}, now=T0 + 999 * DAY, keep_for=None)
    assert off.remove == [] and off.mark == [] and off.unmark == ["x"]
    assert retention_period(0) is None and retention_period(None) is None
    assert retention_period(1.5) == timedelta(days=1.5)
    with pytest.raises(ValueError, match="retention_days"):
        retention_period(-1)


def test_quota_refusal_reads_as_a_sentence():
    assert quota_refusal(used=10, adding=5, quota=15) is None
    msg = quota_refusal(used=1_500_000, adding=700_000, quota=2_000_000)
    assert msg is not None
    assert (
        "1.5 MB of the 2.0 MB" in msg and "700.0 KB more" in msg and "nothing you stored was removed" in msg
    )


# ---------------------------------------------------------------------------------- gc on the real service

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import update  # noqa: E402

from app.api.main import create_app  # noqa: E402
from app.commands.gc import collect, render  # noqa: E402
from memory import db  # noqa: E402
from tests.apiclient import make_settings, register, upload, wait_job  # noqa: E402
from tests.services import pg_url  # noqa: F401,E402 (fixture)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def api(request, tmp_path_factory):
    extra = {"database_url": request.getfixturevalue("pg_url")} if request.param == "postgres" else {}
    settings = make_settings(tmp_path_factory.mktemp("gc-data"), **extra)
    with TestClient(create_app(settings)) as client:
        client.settings = settings
        yield client


def _turn(api, h, file_id: str, message: str) -> tuple[str, str]:
    r = api.post("/api/v1/chat", json={"message": message, "file_ids": [file_id]}, headers=h)
    assert r.status_code == 202, r.text
    job = wait_job(api, h, r.json()["job_id"])
    assert job["status"] == "succeeded", job["error"]
    return r.json()["thread_id"], job["result"]["file_id"]


def _gc(api, *, days: float = 30.0, now: datetime, dry_run: bool = False):
    settings = api.settings.model_copy(update={"retention_days": days})
    return api.portal.call(lambda: collect(settings, api.app.state.mp.service, dry_run=dry_run, now=now))


def _renditions(api, version_id: str) -> list[str]:
    store = api.app.state.mp.service.store
    return [k for k in store.blob_keys(f"renditions/index/{version_id[:2]}") if version_id in k]


def test_gc_keeps_what_is_referenced_and_removes_the_rest(api):
    h = register(api)
    service = api.app.state.mp.service
    store = service.store
    song = upload(api, h)["id"]
    kept_thread, in_thread = _turn(api, h, song, "master this for Spotify")
    dl_thread, downloaded = _turn(api, h, song, "make it brighter")
    old_thread, old_result = _turn(api, h, song, "make it warmer")
    assert len({song, in_thread, downloaded, old_result}) == 4

    # a result downloaded now, and one downloaded before downloads were noted (its rendition, no mark)
    fetched = {}
    for vid in (downloaded, old_result):
        r = api.get(f"/api/v1/files/{vid}/download", params={"format": "flac"}, headers=h)
        assert r.status_code == 200
        fetched[vid] = r.content

    async def forget_download() -> None:
        async with api.app.state.mp.sessions() as s:
            await s.execute(
                update(db.AudioFile).where(db.AudioFile.id == old_result).values(downloaded_at=None)
            )
            await s.commit()

    api.portal.call(forget_download)
    assert _renditions(api, old_result)
    # both result threads are gone from the conversation store (a thread made by another deployment,
    # a checkpointer pruned by hand): only the download still holds `downloaded`
    for thread_id in (dl_thread, old_thread):
        service.checkpointer.delete_thread(thread_id)
    # and a version nothing ever pointed at (a preview, an intermediate)
    rng = np.random.default_rng(7)
    from tools.audio import Audio

    orphan = store.put(Audio((0.1 * rng.standard_normal((1, 22050))).astype(np.float32), 22050))
    if hasattr(store, "compact"):
        store.compact()  # write-behind: sizes once compressed
    sizes = {vid: store.nbytes(vid) for vid in (orphan, old_result)}

    # first pass: marks only
    first = _gc(api, now=T0)
    assert first.removed == {}
    assert {orphan, old_result} <= set(first.pending)
    assert not {song, in_thread, downloaded} & set(first.pending)
    # within the period: nothing; a dry run past it says what would go and changes nothing
    assert _gc(api, now=T0 + 29 * DAY).removed == {}
    dry = _gc(api, now=T0 + 31 * DAY, dry_run=True)
    assert dry.removed == sizes and dry.dry_run
    assert "would remove" in render(dry)
    assert store.exists(orphan) and store.exists(old_result)

    done = _gc(api, now=T0 + 31 * DAY)
    assert done.removed == sizes and done.freed_bytes == sum(sizes.values())
    assert done.renditions_removed >= 1 and done.rows_removed == 1
    text = render(done)
    assert f"removed {orphan}" in text and "freed" in text
    # removed: the audio, its renditions, the row that listed it
    assert not store.exists(orphan) and not store.exists(old_result)
    assert _renditions(api, old_result) == []
    assert api.get(f"/api/v1/files/{old_result}", headers=h).status_code == 404
    # kept, and whole: the upload, the thread's versions, the downloaded result (same bytes again)
    for vid in (song, in_thread, downloaded):
        assert store.exists(vid)
        r = api.get(f"/api/v1/files/{vid}/download", params={"format": "flac"}, headers=h)
        assert r.status_code == 200
    again = api.get(f"/api/v1/files/{downloaded}/download", params={"format": "flac"}, headers=h)
    assert again.content == fetched[downloaded]
    history = service.history(kept_thread)
    assert history and history[-1]["result_id"] == in_thread
    # and the thread still runs a turn on what it holds
    r = api.post("/api/v1/chat", json={"message": "a bit brighter", "thread_id": kept_thread}, headers=h)
    assert r.status_code == 202, r.text
    assert wait_job(api, h, r.json()["job_id"])["status"] == "succeeded"


def test_retention_off_removes_nothing(api):
    from tools.audio import Audio

    store = api.app.state.mp.service.store
    rng = np.random.default_rng(11)
    orphan = store.put(Audio((0.1 * rng.standard_normal((1, 4410))).astype(np.float32), 22050))
    report = _gc(api, days=0, now=T0 + 10_000 * DAY)
    assert report.removed == {} and store.exists(orphan)
    assert "retention is off" in render(report)


def test_retention_shorter_than_a_job_is_refused(api):
    with pytest.raises(ValueError, match="longer than a job may run"):
        _gc(api, days=0.01, now=T0)


def test_gc_command_on_the_embedded_defaults(tmp_path, monkeypatch, capsys):
    """`mixpilot gc` with nothing but a data dir: SQLite, threads.sqlite and the local store."""
    from app.cli import main
    from app.runtime import open_store
    from app.settings import Settings
    from tools.audio import Audio

    monkeypatch.chdir(tmp_path)  # no .env of the repo
    for name in list(__import__("os").environ):
        if name.startswith("MIXPILOT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MIXPILOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MIXPILOT_RETENTION_DAYS", "7")
    store = open_store(Settings())
    orphan = store.put(Audio(np.full((1, 2205), 0.25, dtype=np.float32), 22050))

    assert main(["gc", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "1 stored versions, 0 referenced" in out and "would remove 0" in out
    assert main(["gc", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["stored"] == 1 and report["removed"] == {} and orphan in report["pending"]
    assert store.exists(orphan)  # marked, not removed: 7 days have not passed
