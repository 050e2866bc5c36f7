"""DELETE /api/v1/auth/me removes the account and everything derived from it (rows in every owner table,
stored audio and renditions, Chroma vectors, thread history, keys and tokens) and leaves others' data alone;
on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.api.main import create_app
from memory import db
from tests.apiclient import PASSWORD, SONG, SPEECH, make_settings, register, upload, wait_job
from tests.services import dead_port, pg_url  # noqa: F401 (fixture)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def api(request, tmp_path_factory):
    extra = {"database_url": request.getfixturevalue("pg_url")} if request.param == "postgres" else {}
    settings = make_settings(tmp_path_factory.mktemp("account-data"), **extra)
    with TestClient(create_app(settings)) as client:
        client.settings = settings
        yield client


def _owned_rows(api, owner_id: str) -> dict[str, int]:
    """Rows per table that has an owner_id (every one the models know), plus the user row."""
    state = api.app.state.mp

    async def q() -> dict[str, int]:
        out = {}
        async with state.sessions() as s:
            for table in db.Base.metadata.sorted_tables:
                if "owner_id" in table.c:
                    stmt = select(func.count()).select_from(table).where(table.c.owner_id == owner_id)
                    out[table.name] = (await s.execute(stmt)).scalar_one()
            out["users"] = (
                await s.execute(select(func.count()).select_from(db.User).where(db.User.id == owner_id))
            ).scalar_one()
        return out

    return api.portal.call(q)


def _vector_ids(api, owner_id: str) -> list[str]:
    state = api.app.state.mp

    async def q() -> list[str]:
        async with state.sessions() as s:
            stmt = select(db.AudioFeatureVector.id).where(db.AudioFeatureVector.owner_id == owner_id)
            return list((await s.execute(stmt)).scalars().all())

    return api.portal.call(q)


def _account(api, email: str) -> tuple[dict[str, str], str]:
    h = register(api, email)
    return h, api.get("/api/v1/auth/me", headers=h).json()["id"]


def _chat(api, h, file_id: str, **extra) -> dict:
    r = api.post(
        "/api/v1/chat", json={"message": "master this for Spotify", "file_ids": [file_id], **extra}, headers=h
    )
    assert r.status_code == 202, r.text
    job = wait_job(api, h, r.json()["job_id"])
    assert job["status"] == "succeeded", job["error"]
    assert api.post("/api/v1/feedback", json={"job_id": job["id"], "rating": 4}, headers=h).status_code == 201
    return job


def test_deleting_the_account_leaves_nothing_behind_and_others_untouched(api):
    email = "leaving@example.com"
    a, me = _account(api, email)
    b, other = _account(api, "staying@example.com")
    store = api.app.state.mp.service.store
    index = api.app.state.mp.service.memory.vectors

    # A: a shared recording and one of their own, a rated job with a callback, an idempotent upload, a key
    shared = upload(api, a, SONG)
    with open(SPEECH, "rb") as f:
        r = api.post(
            "/api/v1/files",
            files={"file": ("speech.flac", f, "audio/flac")},
            headers=a | {"Idempotency-Key": "upload-1"},
        )
    own = r.json()
    job = _chat(api, a, own["id"], callback_url=f"http://127.0.0.1:{dead_port()}/hook")
    result = job["result"]["file_id"]
    assert (
        api.get(f"/api/v1/files/{result}/download", params={"format": "flac"}, headers=a).status_code == 200
    )
    key = api.post("/api/v1/keys", json={"name": "ci"}, headers=a).json()["key"]
    tokens = api.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD}).json()

    # B: the same recording, rated work of their own
    assert upload(api, b, SONG)["id"] == shared["id"]
    b_job = _chat(api, b, shared["id"])
    b_key = api.post("/api/v1/keys", json={}, headers=b).json()["key"]
    b_before = _owned_rows(api, other)
    b_vectors = _vector_ids(api, other)

    before = _owned_rows(api, me)
    for table in ("audio_files", "jobs", "conversations", "mixing_configurations", "feedback"):
        assert before[table] >= 1, (table, before)
    for table in ("audio_feature_vectors", "refresh_tokens", "idempotency_keys", "api_keys", "job_callbacks"):
        assert before[table] >= 1, (table, before)
    vectors = _vector_ids(api, me)
    assert index.existing(vectors) == set(vectors)
    assert api.app.state.mp.service.history(job["thread_id"])
    mine = {own["id"], result}
    assert all(store.path(x).exists() for x in mine)
    renditions = api.settings.data_dir / "renditions"
    assert any(renditions.rglob(f"{result}.*"))

    # an API key cannot delete the account; the password sign-in can
    sure = {"confirm": email}
    assert api.delete("/api/v1/auth/me", params=sure, headers={"X-API-Key": key}).status_code == 403
    for wrong in ({}, {"confirm": "staying@example.com"}):
        assert api.delete("/api/v1/auth/me", params=wrong, headers=a).status_code == 422
    assert _owned_rows(api, me) == before
    assert api.delete("/api/v1/auth/me", params={"confirm": email.upper()}, headers=a).status_code == 204

    after = _owned_rows(api, me)
    assert set(after.values()) == {0}, after
    assert index.existing(vectors) == set()
    assert api.app.state.mp.service.history(job["thread_id"]) == []
    assert not any(store.path(x).exists() for x in mine)
    assert not any(renditions.rglob(f"{result}.*")) and not any(renditions.rglob(f"{own['id']}.*"))

    # every credential of A is dead at once; the email is free again
    assert api.get("/api/v1/auth/me", headers=a).status_code == 401
    assert api.get("/api/v1/files", headers={"X-API-Key": key}).status_code == 401
    assert (
        api.post(
            "/api/v1/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        ).status_code
        == 401
    )
    assert api.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD}).status_code == 401

    # B: every row, vector and byte still there, the shared recording included
    assert _owned_rows(api, other) == b_before
    assert index.existing(b_vectors) == set(b_vectors)
    assert store.path(shared["id"]).exists()
    r = api.get(f"/api/v1/files/{shared['id']}/download", params={"format": "flac"}, headers=b)
    assert r.status_code == 200 and r.content
    assert (
        api.get(f"/api/v1/jobs/{b_job['id']}", headers={"X-API-Key": b_key}).json()["status"] == "succeeded"
    )
    assert api.get("/api/v1/auth/me", headers=b).json()["id"] == other


def test_no_account_deletion_under_a_running_job(api):
    h, me = _account(api, "busy@example.com")
    state = api.app.state.mp

    async def job() -> str:
        async with state.sessions() as s:
            await db.ensure_conversation(s, owner_id=me, thread_id="b" * 32, title="t")
            row = await db.create_job(s, owner_id=me, request="r", thread_id="b" * 32)
            row.status = "running"
            await s.commit()
            return row.id

    job_id = api.portal.call(job)  # not handed to a runner: only the row says it runs
    sure = {"confirm": "busy@example.com"}
    r = api.delete("/api/v1/auth/me", params=sure, headers=h)
    assert r.status_code == 409 and job_id in r.text and "cancel" in r.text
    assert api.get("/api/v1/auth/me", headers=h).status_code == 200
    assert api.post(f"/api/v1/jobs/{job_id}/cancel", headers=h).status_code == 200
    assert api.delete("/api/v1/auth/me", params=sure, headers=h).status_code == 204
    assert set(_owned_rows(api, me).values()) == {0}
