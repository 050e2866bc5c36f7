"""Lists (/files, /jobs, /threads, /keys; /webhooks in test_api_webhooks): keyset pages with an opaque cursor
and a total, validated filters, unknown query parameters refused, timestamps with their zone; on SQLite and
on PostgreSQL."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient

from app.api.main import create_app
from memory import db
from tests.apiclient import make_settings, register
from tests.services import pg_url  # noqa: F401 (fixture)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def api(request, tmp_path_factory):
    extra = {"database_url": request.getfixturevalue("pg_url")} if request.param == "postgres" else {}
    settings = make_settings(tmp_path_factory.mktemp("page-data"), **extra)
    with TestClient(create_app(settings)) as client:
        yield client


def _me(api, h) -> str:
    return api.get("/api/v1/auth/me", headers=h).json()["id"]


def _seed(api, owner_id: str) -> None:
    """7 files (2 flac; two pairs created at the same instant: the id breaks the tie), 5 jobs on two
    threads, 4 threads: rows as the API writes them, with set creation times."""
    state = api.app.state.mp

    async def go() -> None:
        async with state.sessions() as s:
            for i in range(7):
                row = await db.add_audio_file(
                    s,
                    owner_id=owner_id,
                    audio_id=f"{i:032x}",
                    duration_s=1.0,
                    sample_rate=48000,
                    channels=1,
                    format="flac" if i in (2, 5) else "wav",
                )
                row.created_at = T0 + timedelta(minutes=i // 2)  # 0,0,1,1,2,2,3
            for i in range(4):
                conv = await db.ensure_conversation(
                    s, owner_id=owner_id, thread_id=f"{owner_id[:16]}{i:016x}"
                )
                conv.created_at = T0 + timedelta(minutes=i)
            for i in range(5):
                job = await db.create_job(
                    s, owner_id=owner_id, request=f"r{i}", thread_id=f"{owner_id[:16]}{i % 2:016x}"
                )
                job.status = "succeeded" if i % 2 else "failed"
                job.created_at = T0 + timedelta(minutes=i)
            await s.commit()

    api.portal.call(go)


def _all_pages(api, h, path: str, limit: int, **params) -> tuple[list[dict], list[int]]:
    items, totals, cursor = [], [], None
    for _ in range(20):
        r = api.get(
            path, params={"limit": limit, **params, **({"cursor": cursor} if cursor else {})}, headers=h
        )
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= limit
        items += page["items"]
        totals.append(page["total"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items, totals
    raise AssertionError("next_cursor never ended")


def _newest_first(items: list[dict]) -> bool:
    keys = [(datetime.fromisoformat(i["created_at"]), i["id"]) for i in items]
    return keys == sorted(keys, reverse=True)


def test_pages_walk_every_item_once_newest_first(api):
    h = register(api)
    me = _me(api, h)
    _seed(api, me)
    other = register(api)
    _seed(api, _me(api, other))  # another user's rows never show up, nor count

    files, totals = _all_pages(api, h, "/api/v1/files", 3)
    assert len(files) == 7 and len({f["id"] for f in files}) == 7 and totals == [7, 7, 7]
    assert _newest_first(files)
    for f in files:
        assert datetime.fromisoformat(f["created_at"]).utcoffset() == timedelta(0)

    threads, totals = _all_pages(api, h, "/api/v1/threads", 2)
    assert len(threads) == 4 and totals == [4, 4] and _newest_first(threads)
    assert all(t["updated_at"].endswith(("Z", "+00:00")) for t in threads)

    jobs, _ = _all_pages(api, h, "/api/v1/jobs", 2)
    assert [j["request"] for j in jobs] == ["r4", "r3", "r2", "r1", "r0"]

    one = api.get("/api/v1/files", params={"limit": 200}, headers=h).json()
    assert len(one["items"]) == 7 and one["next_cursor"] is None


def test_a_row_added_between_pages_does_not_shift_the_next_page(api):
    h = register(api)
    me = _me(api, h)
    _seed(api, me)
    first = api.get("/api/v1/files", params={"limit": 3}, headers=h).json()
    state = api.app.state.mp

    async def add() -> None:
        async with state.sessions() as s:
            await db.add_audio_file(
                s, owner_id=me, audio_id="f" * 32, duration_s=1, sample_rate=8000, channels=1
            )
            await s.commit()

    api.portal.call(add)  # newer than everything: it belongs on page one, not in the pages that follow
    rest, _ = _all_pages(api, h, "/api/v1/files", 3, cursor=first["next_cursor"])
    seen = [f["id"] for f in first["items"] + rest]
    assert len(seen) == 7 and len(set(seen)) == 7 and "f" * 32 not in seen


def test_filters_are_real_or_refused(api):
    h = register(api)
    me = _me(api, h)
    _seed(api, me)
    flac = api.get("/api/v1/files", params={"format": "flac"}, headers=h).json()
    assert {f["format"] for f in flac["items"]} == {"flac"} and flac["total"] == 2
    assert api.get("/api/v1/files", params={"format": "mp3"}, headers=h).json() == {
        "items": [],
        "next_cursor": None,
        "total": 0,
    }
    r = api.get("/api/v1/files", params={"format": "flacc"}, headers=h)
    assert r.status_code == 422 and "format" in r.text

    failed = api.get("/api/v1/jobs", params={"status": "failed"}, headers=h).json()
    assert failed["total"] == 3 and {j["status"] for j in failed["items"]} == {"failed"}
    thread = f"{me[:16]}{1:016x}"
    on_thread = api.get("/api/v1/jobs", params={"thread_id": thread}, headers=h).json()
    assert on_thread["total"] == 2 and {j["thread_id"] for j in on_thread["items"]} == {thread}
    assert api.get("/api/v1/jobs", params={"status": "done"}, headers=h).status_code == 422
    assert api.get("/api/v1/jobs", params={"thread_id": "nope"}, headers=h).status_code == 422

    for path in ("/api/v1/files", "/api/v1/jobs", "/api/v1/threads", "/api/v1/keys", "/api/v1/webhooks"):
        r = api.get(path, params={"offset": 10, "sort": "name"}, headers=h)
        assert r.status_code == 400, (path, r.text)
        assert "'offset'" in r.text and "'sort'" in r.text and "limit" in r.text, r.text
    assert api.get("/api/v1/threads", params={"format": "flac"}, headers=h).status_code == 400
    for bad in (0, 201, "x"):
        assert api.get("/api/v1/files", params={"limit": bad}, headers=h).status_code == 422


def test_a_cursor_is_checked(api):
    h = register(api)
    _seed(api, _me(api, h))
    page = api.get("/api/v1/files", params={"limit": 1, "format": "flac"}, headers=h).json()
    cursor = page["next_cursor"]
    assert (
        cursor
        and api.get(
            "/api/v1/files", params={"limit": 1, "format": "flac", "cursor": cursor}, headers=h
        ).json()["items"]
    )
    # the same cursor under other filters, a made-up one, one of another list's shape: 400 with the fix
    r = api.get("/api/v1/files", params={"cursor": cursor}, headers=h)
    assert r.status_code == 400 and "filters" in r.text
    junk = base64.urlsafe_b64encode(json.dumps({"t": "yesterday"}).encode()).decode().rstrip("=")
    for bad in (junk, "AAAA", "bm90IGpzb24"):
        r = api.get("/api/v1/files", params={"cursor": bad}, headers=h)
        assert r.status_code == 400 and "next_cursor" in r.text, r.text
    assert api.get("/api/v1/files", params={"cursor": "a b"}, headers=h).status_code == 422


def test_keys_list_pages(api):
    h = register(api)
    made = [api.post("/api/v1/keys", json={"name": f"k{i}"}, headers=h).json()["id"] for i in range(5)]
    keys, totals = _all_pages(api, h, "/api/v1/keys", 2)
    assert sorted(k["id"] for k in keys) == sorted(made) and totals == [5, 5, 5] and _newest_first(keys)
