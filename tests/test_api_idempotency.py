"""`Idempotency-Key` on POST /chat and POST /files: same key + same request → the first response, once."""

from __future__ import annotations

import uuid

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient

from app.api.main import create_app
from tests.apiclient import SONG, SPEECH, make_settings, register, upload, wait_job
from tests.services import pg_url  # noqa: F401 (fixture)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def api(request, tmp_path_factory):
    extra = {"database_url": request.getfixturevalue("pg_url")} if request.param == "postgres" else {}
    settings = make_settings(tmp_path_factory.mktemp("idem-data"), **extra)
    with TestClient(create_app(settings)) as client:
        yield client


def _chat(api, headers, body, key=None):
    return api.post("/api/v1/chat", json=body, headers=headers | ({"Idempotency-Key": key} if key else {}))


def _upload(api, headers, path, key=None, name=None):
    with open(path, "rb") as f:
        return api.post(
            "/api/v1/files",
            files={"file": (name or path.name, f, "application/octet-stream")},
            headers=headers | ({"Idempotency-Key": key} if key else {}),
        )


def test_chat_replays_the_first_response_for_the_same_key_and_body(api):
    h = register(api)
    f = upload(api, h)
    body = {"message": "is it ready for Spotify?", "file_ids": [f["id"]]}
    key = str(uuid.uuid4())
    first = _chat(api, h, body, key)
    assert first.status_code == 202, first.text
    again = _chat(api, h, body, key)
    assert again.status_code == 202 and again.json() == first.json()
    assert again.headers["location"] == first.headers["location"] == f"/api/v1/jobs/{first.json()['job_id']}"
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    jobs = api.get("/api/v1/jobs", headers=h).json()["items"]
    assert [j["id"] for j in jobs] == [first.json()["job_id"]]
    assert len(api.get("/api/v1/threads", headers=h).json()["items"]) == 1
    wait_job(api, h, first.json()["job_id"])

    # the same key with another request: 422, nothing created
    other = _chat(api, h, body | {"message": "make it louder"}, key)
    assert other.status_code == 422 and "Idempotency-Key" in other.text
    assert len(api.get("/api/v1/jobs", headers=h).json()["items"]) == 1
    # a new key is a new request
    fresh = _chat(api, h, body, str(uuid.uuid4()))
    assert fresh.status_code == 202 and fresh.json()["job_id"] != first.json()["job_id"]
    wait_job(api, h, fresh.json()["job_id"])
    # keys are per user: another user's same key creates their own job
    h2 = register(api)
    f2 = upload(api, h2)
    theirs = _chat(api, h2, {"message": "is it ready for Spotify?", "file_ids": [f2["id"]]}, key)
    assert theirs.status_code == 202 and theirs.json()["job_id"] != first.json()["job_id"]
    assert "idempotent-replayed" not in theirs.headers
    wait_job(api, h2, theirs.json()["job_id"])


def test_a_failed_request_leaves_its_key_free(api):
    h = register(api)
    key = str(uuid.uuid4())
    missing = {"message": "master it", "file_ids": [uuid.uuid4().hex]}
    assert _chat(api, h, missing, key).status_code == 404
    assert _chat(api, h, missing, key).status_code == 404  # tried again, not a replay nor "in progress"
    f = upload(api, h)
    ok = _chat(api, h, {"message": "is it ready for Spotify?", "file_ids": [f["id"]]}, key)
    assert ok.status_code == 202, ok.text  # not a 422: the failed request did not keep the key
    wait_job(api, h, ok.json()["job_id"])


def test_upload_replays_for_the_same_key_and_file(api):
    h = register(api)
    key = str(uuid.uuid4())
    first = _upload(api, h, SONG, key)
    assert first.status_code == 201 and first.json()["deduplicated"] is False
    again = _upload(api, h, SONG, key)
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert _upload(api, h, SPEECH, key).status_code == 422  # other bytes
    assert _upload(api, h, SONG, key, name="other-name.flac").status_code == 422  # another name
    # without a key the same audio is simply found again
    plain = _upload(api, h, SONG)
    assert plain.status_code == 201 and plain.json()["deduplicated"] is True
    assert len(api.get("/api/v1/files", headers=h).json()["items"]) == 1


def test_malformed_keys_are_refused(api):
    h = register(api)
    f = upload(api, h)
    body = {"message": "is it ready for Spotify?", "file_ids": [f["id"]]}
    assert _chat(api, h, body, "x" * 256).status_code == 422
    assert _chat(api, h, body, "has space").status_code == 422


def test_a_request_still_running_under_the_key_is_a_409(api):
    from app.api.idempotency import fingerprint
    from app.api.schemas import ChatIn
    from memory import db

    h = register(api)
    me = api.get("/api/v1/auth/me", headers=h).json()["id"]
    f = upload(api, h)
    body = {"message": "is it ready for Spotify?", "file_ids": [f["id"]]}
    key = str(uuid.uuid4())
    state = api.app.state.mp

    async def pending() -> None:  # what the first request leaves while it runs
        async with state.sessions() as s:
            s.add(
                db.IdempotencyKey(
                    owner_id=me,
                    scope="POST /chat",
                    key=key,
                    fingerprint=fingerprint(ChatIn(**body).model_dump_json()),
                )
            )
            await s.commit()

    api.portal.call(pending)
    r = _chat(api, h, body, key)
    assert r.status_code == 409 and r.headers["retry-after"] == "1"
    assert api.get("/api/v1/jobs", headers=h).json()["items"] == []
