"""DELETE of files and threads leaves nothing behind: rows, ratings, vectors (SQL and Chroma), audio, renditions;
and takes no audio that anything else still references (a thread, another account's row, a running job)."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.api.main import create_app
from memory import db
from tests.apiclient import SONG, make_settings, register, upload, wait_job
from tests.services import pg_url  # noqa: F401 (fixture)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def api(request, tmp_path_factory):
    extra = {"database_url": request.getfixturevalue("pg_url")} if request.param == "postgres" else {}
    settings = make_settings(tmp_path_factory.mktemp("del-data"), **extra)
    with TestClient(create_app(settings)) as client:
        client.settings = settings
        yield client


def _count(api, model, *where) -> int:
    state = api.app.state.mp

    async def q() -> int:
        async with state.sessions() as s:
            return (await s.execute(select(func.count()).select_from(model).where(*where))).scalar_one()

    return api.portal.call(q)


def _vector_ids(api, owner_id) -> list[str]:
    state = api.app.state.mp

    async def q() -> list[str]:
        async with state.sessions() as s:
            return list(
                (
                    await s.execute(
                        select(db.AudioFeatureVector.id).where(db.AudioFeatureVector.owner_id == owner_id)
                    )
                )
                .scalars()
                .all()
            )

    return api.portal.call(q)


def _renditions(api, audio_id) -> list:
    return list((api.settings.data_dir / "renditions" / "index").rglob(f"{audio_id}.*"))


@pytest.fixture
def song(tmp_path):
    """The test song at a gain of its own: audio no other test (nor the other database's run) stored."""
    x, sr = sf.read(SONG, dtype="float32")
    path = tmp_path / f"song-{uuid.uuid4().hex[:8]}.flac"
    sf.write(path, x * np.float32(0.5 + 0.4 * np.random.default_rng().random()), sr, subtype="PCM_24")
    return path


def _chat(api, h, file_id: str) -> tuple[str, str, str]:
    """A finished turn on the file: (job id, thread id, result file id)."""
    r = api.post(
        "/api/v1/chat", json={"message": "master this for Spotify", "file_ids": [file_id]}, headers=h
    )
    assert r.status_code == 202, r.text
    job = wait_job(api, h, r.json()["job_id"])
    assert job["status"] == "succeeded", job["error"]
    return job["id"], r.json()["thread_id"], job["result"]["file_id"]


def test_deleting_a_file_then_its_thread_leaves_nothing_behind(api, song):
    h = register(api)
    me = api.get("/api/v1/auth/me", headers=h).json()["id"]
    f = upload(api, h, song)
    r = api.post(
        "/api/v1/chat", json={"message": "master this for Spotify", "file_ids": [f["id"]]}, headers=h
    )
    job_id, thread_id = r.json()["job_id"], r.json()["thread_id"]
    job = wait_job(api, h, job_id)
    assert job["status"] == "succeeded", job["error"]
    result = job["result"]["file_id"]
    assert api.post("/api/v1/feedback", json={"job_id": job_id, "rating": 5}, headers=h).status_code == 201
    for fid in (f["id"], result):
        assert (
            api.get(f"/api/v1/files/{fid}/download", params={"format": "flac"}, headers=h).status_code == 200
        )
    service = api.app.state.mp.service
    store = service.store
    reached = service.thread_versions(thread_id)
    assert {f["id"], result} <= reached and all(store.exists(v) for v in reached)
    vectors = _vector_ids(api, me)
    assert vectors and _count(api, db.Feedback, db.Feedback.owner_id == me) == 1
    index = api.app.state.mp.service.memory.vectors
    assert index.existing(vectors) == set(vectors)
    assert store.path(f["id"]).exists() and _renditions(api, f["id"])

    # another user cannot delete it; then the owner does
    other = register(api)
    assert api.delete(f"/api/v1/files/{f['id']}", headers=other).status_code == 404
    assert api.delete(f"/api/v1/files/{f['id']}", headers=h).status_code == 204
    assert api.get(f"/api/v1/files/{f['id']}", headers=h).status_code == 404
    assert api.get(f"/api/v1/files/{f['id']}/download", headers=h).status_code == 404
    assert api.delete(f"/api/v1/files/{f['id']}", headers=h).status_code == 404
    assert _count(api, db.AudioFile, db.AudioFile.id == f["id"]) == 0
    assert _count(api, db.MixingConfiguration, db.MixingConfiguration.owner_id == me) == 0
    assert _count(api, db.Feedback, db.Feedback.owner_id == me) == 0
    assert _vector_ids(api, me) == [] and index.existing(vectors) == set()
    # the row and its renditions went; the audio stays: the thread still starts from it (undo reaches it)
    assert store.exists(f["id"]) and not _renditions(api, f["id"])
    assert service.audio(f["id"]).samples.size
    assert api.get(f"/api/v1/files/{result}", headers=h).status_code == 200  # the result is a file of its own

    # the thread: its jobs, history and result go with it
    assert api.delete(f"/api/v1/threads/{thread_id}", headers=other).status_code == 404
    assert api.delete(f"/api/v1/threads/{thread_id}", headers=h).status_code == 204
    assert api.get(f"/api/v1/threads/{thread_id}", headers=h).status_code == 404
    assert api.get(f"/api/v1/jobs/{job_id}", headers=h).status_code == 404
    assert api.get(f"/api/v1/files/{result}", headers=h).status_code == 404
    assert _count(api, db.Job, db.Job.owner_id == me) == 0
    assert _count(api, db.Conversation, db.Conversation.owner_id == me) == 0
    assert _count(api, db.AudioFile, db.AudioFile.owner_id == me) == 0
    assert not store.path(result).exists() and not _renditions(api, result)
    # nothing references the thread's versions any more, the deleted upload's audio included
    assert [v for v in reached if store.exists(v)] == []
    assert api.app.state.mp.service.history(thread_id) == []
    assert api.get("/api/v1/threads", headers=h).json()["items"] == []


def test_audio_another_account_holds_stays(api):
    a, b = register(api), register(api)
    fa, fb = upload(api, a), upload(api, b)
    assert fa["id"] == fb["id"]  # content-addressed: one stored audio, two owners
    assert api.delete(f"/api/v1/files/{fa['id']}", headers=a).status_code == 204
    assert api.app.state.mp.service.store.path(fb["id"]).exists()
    r = api.get(f"/api/v1/files/{fb['id']}/download", headers=b)
    assert r.status_code == 200 and r.content


def test_audio_stays_while_another_account_references_it(api, song):
    """No row of any account holds the audio, yet another account's thread, or another account's job that
    is queued, still needs it: the rows go, the audio stays, until the last reference goes."""
    a, b, c = register(api), register(api), register(api)
    fa, fb = upload(api, a, song), upload(api, b, song)
    audio = fa["id"]
    assert fb["id"] == audio
    _job, thread_b, result_b = _chat(api, b, audio)
    service = api.app.state.mp.service
    store, state = service.store, api.app.state.mp
    assert api.delete(f"/api/v1/files/{audio}", headers=b).status_code == 204
    assert api.delete(f"/api/v1/files/{audio}", headers=a).status_code == 204
    assert _count(api, db.AudioFile, db.AudioFile.id == audio) == 0
    assert store.exists(audio)  # b's thread: its original
    r = api.get(f"/api/v1/files/{result_b}/download", headers=b)
    assert r.status_code == 200 and r.content

    # a queued job of a third account has the audio as an input (a row only: nothing runs it)
    c_id = api.get("/api/v1/auth/me", headers=c).json()["id"]

    async def queued() -> str:
        async with state.sessions() as s:
            row = await db.create_job(s, owner_id=c_id, request="r", audio_id=None, inputs={"voice": audio})
            await s.commit()
            return row.id

    job_c = api.portal.call(queued)
    assert api.delete(f"/api/v1/threads/{thread_b}", headers=b).status_code == 204
    assert store.exists(audio) and not store.exists(result_b)
    assert api.post(f"/api/v1/jobs/{job_c}/cancel", headers=c).status_code == 200

    # the last reference gone, a DELETE of a fresh upload of the same audio takes it
    fc = upload(api, c, song)
    assert fc["id"] == audio
    assert api.delete(f"/api/v1/files/{audio}", headers=c).status_code == 204
    assert not store.exists(audio)


def test_no_deletion_under_a_running_job(api):
    h = register(api)
    me = api.get("/api/v1/auth/me", headers=h).json()["id"]
    f = upload(api, h)
    state = api.app.state.mp

    async def job(status: str) -> str:
        async with state.sessions() as s:
            await db.ensure_conversation(s, owner_id=me, thread_id="a" * 32, title="t")
            row = await db.create_job(
                s, owner_id=me, request="r", audio_id=None, thread_id="a" * 32, inputs={"voice": f["id"]}
            )
            row.status = status
            await s.commit()
            return row.id

    job_id = api.portal.call(job, "running")  # not handed to a runner: only the row says it runs
    try:
        r = api.delete(f"/api/v1/files/{f['id']}", headers=h)
        assert r.status_code == 409 and "cancel" in r.json()["detail"]
        assert api.delete(f"/api/v1/threads/{'a' * 32}", headers=h).status_code == 409
        assert api.get(f"/api/v1/files/{f['id']}", headers=h).status_code == 200
    finally:
        assert api.post(f"/api/v1/jobs/{job_id}/cancel", headers=h).status_code == 200
    assert api.delete(f"/api/v1/threads/{'a' * 32}", headers=h).status_code == 204
    assert api.delete(f"/api/v1/files/{f['id']}", headers=h).status_code == 204
