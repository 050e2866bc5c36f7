"""Every error path answers ``application/problem+json`` (RFC 9457) with a stable code, the ids involved as
fields and the request id of ``X-Request-ID``, which the server log names too."""

from __future__ import annotations

import logging
import uuid

import pytest

pytest.importorskip("fastapi")

from fastapi import HTTPException
from fastapi.testclient import TestClient

from app.api.main import create_app
from app.api.problems import MEDIA_TYPE, TYPE_BASE, ProblemError
from memory import db
from tests.apiclient import make_settings, register, upload, wait_job

FIELDS = {"type", "title", "status", "detail", "code", "instance", "request_id"}


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    settings = make_settings(tmp_path_factory.mktemp("problem-data"), job_runner="thread", max_queued_jobs=2)
    app = create_app(settings)

    async def forbidden():
        raise HTTPException(403, detail="not for you")

    async def unavailable():
        raise ProblemError(
            503, "memory is not configured", code="memory_unavailable", headers={"Retry-After": "7"}
        )

    async def boom():
        raise RuntimeError("secret internals")

    app.add_api_route("/test/forbidden", forbidden)
    app.add_api_route("/test/unavailable", unavailable)
    app.add_api_route("/test/boom", boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def problem(r, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == MEDIA_TYPE, r.headers
    body = r.json()
    assert set(body) >= FIELDS, body
    assert body["status"] == status and body["type"] == TYPE_BASE + body["code"]
    assert body["request_id"] == r.headers["x-request-id"] and body["detail"]
    assert body["instance"] == r.request.url.path
    if code is not None:
        assert body["code"] == code, body
    return body


def test_every_error_path_is_a_problem(api):
    h = register(api)
    f = upload(api, h)
    missing = "0" * 32
    problem(api.get("/api/v1/jobs"), 401, "unauthorized")
    assert api.get("/api/v1/jobs").headers["www-authenticate"] == "Bearer"
    problem(api.get("/api/v1/jobs", headers={"Authorization": "Bearer nonsense"}), 401)
    problem(api.get("/test/forbidden"), 403, "forbidden")
    body = problem(api.get(f"/api/v1/jobs/{missing}", headers=h), 404, "not_found")
    assert body["job_id"] == missing and missing in body["detail"]
    problem(api.get("/api/v1/nowhere", headers=h), 404, "not_found")
    body = problem(api.delete("/health"), 405, "method_not_allowed")
    assert "DELETE" in body["detail"]
    # 413: announced by Content-Length (answered before the app) and streamed past the limit
    big = b"{" + b" " * (2 * 1024 * 1024) + b"}"
    problem(api.post("/api/v1/feedback", content=big, headers=h | {"content-type": "application/json"}), 413)
    body = problem(
        api.post("/api/v1/files", files={"file": ("big.wav", b"\0" * (3 * 1024 * 1024))}, headers=h), 413
    )
    assert "limit" in body["detail"]
    body = problem(
        api.post("/api/v1/files", files={"file": ("notes.wav", b"just text, not audio" * 100)}, headers=h),
        415,
    )
    assert body["code"] == "unsupported_media_type"
    # 422 with the fields at fault; malformed JSON is a 400
    body = problem(api.post("/api/v1/feedback", json={"file_id": f["id"], "rating": 9}, headers=h), 422)
    assert body["code"] == "validation_error" and body["errors"][0]["loc"] == ["body", "rating"]
    assert "rating" in body["detail"]
    body = problem(
        api.post("/api/v1/chat", content=b'{"message": ', headers=h | {"content-type": "application/json"}),
        400,
        "malformed_json",
    )
    assert body["errors"][0]["type"] == "json_invalid" and "not valid JSON" in body["detail"]
    # answered by Starlette's FileResponse in plain text: a problem all the same
    url = f"/api/v1/files/{f['id']}/download?format=wav"
    body = problem(api.get(url, headers=h | {"Range": "bytes=999999999-"}), 416, "range_not_satisfiable")
    assert "bytes" in body["detail"]
    problem(api.get(url, headers=h | {"Range": "lines=1-2"}), 400, "bad_request")
    head = api.head(url, headers=h | {"Range": "bytes=999999999-"})
    assert head.status_code == 416 and head.content == b""  # HEAD: no body
    body = problem(api.get("/test/unavailable"), 503, "memory_unavailable")
    assert api.get("/test/unavailable").headers["retry-after"] == "7"


def _running_job(api, headers, *, thread_id: str, inputs: dict | None = None) -> str:
    """A job row that says it runs (not handed to a runner), on `thread_id`."""
    me = api.get("/api/v1/auth/me", headers=headers).json()["id"]
    state = api.app.state.mp

    async def make() -> str:
        async with state.sessions() as s:
            await db.ensure_conversation(s, owner_id=me, thread_id=thread_id, title="t")
            row = await db.create_job(
                s, owner_id=me, request="r", audio_id=None, thread_id=thread_id, inputs=inputs or {}
            )
            row.status = "running"
            await s.commit()
            return row.id

    return api.portal.call(make)


def test_conflicts_name_the_job_as_a_field(api):
    h = register(api)
    f = upload(api, h)
    thread = uuid.uuid4().hex
    job_id = _running_job(api, h, thread_id=thread, inputs={"voice": f["id"]})
    body = problem(
        api.post("/api/v1/chat", json={"message": "and now?", "thread_id": thread}, headers=h), 409
    )
    assert body["code"] == "resource_busy" and body["job_id"] == job_id and body["thread_id"] == thread
    body = problem(api.delete(f"/api/v1/files/{f['id']}", headers=h), 409, "resource_busy")
    assert body["job_id"] == job_id and body["file_id"] == f["id"]
    done = api.post("/api/v1/chat", json={"message": "is it loud?", "file_ids": [f["id"]]}, headers=h)
    assert done.status_code == 202, done.text
    wait_job(api, h, done.json()["job_id"])
    body = problem(api.post(f"/api/v1/jobs/{done.json()['job_id']}/cancel", headers=h), 409, "job_ended")
    assert body["job_id"] == done.json()["job_id"]


def test_too_many_jobs_is_a_problem_with_retry_after(api):
    h = register(api)
    f = upload(api, h)
    for _ in range(2):  # max_queued_jobs=2
        _running_job(api, h, thread_id=uuid.uuid4().hex)
    r = api.post("/api/v1/chat", json={"message": "is it loud?", "file_ids": [f["id"]]}, headers=h)
    body = problem(r, 429, "too_many_active_jobs")
    assert int(r.headers["retry-after"]) > 0 and "limit is 2" in body["detail"]


def test_internal_error_names_only_the_request_id_and_the_log_has_it(api, caplog):
    with caplog.at_level(logging.INFO, "mixpilot.api"):
        r = api.get("/test/boom", headers={"X-Request-ID": "trace-0123456789abcdef"})
        missing = api.get("/api/v1/nowhere")
    body = problem(r, 500, "internal_error")
    assert body["request_id"] == "trace-0123456789abcdef"  # a sane incoming id is kept
    assert "secret internals" not in r.text and "RuntimeError" not in r.text
    logged = [rec for rec in caplog.records if "trace-0123456789abcdef" in rec.getMessage()]
    assert logged and logged[0].levelno == logging.ERROR and logged[0].exc_info is not None
    rid = missing.headers["x-request-id"]
    assert any(rid in rec.getMessage() and "404" in rec.getMessage() for rec in caplog.records)


def test_every_response_carries_a_request_id(api):
    ok = api.get("/health")
    assert ok.status_code == 200 and len(ok.headers["x-request-id"]) == 32
    assert api.get("/health").headers["x-request-id"] != ok.headers["x-request-id"]
    kept = api.get("/health", headers={"X-Request-ID": "0f3c2a1e-9b8d-4c7a-8e6f-5d4c3b2a1f0e"})
    assert kept.headers["x-request-id"] == "0f3c2a1e-9b8d-4c7a-8e6f-5d4c3b2a1f0e"
    for insane in ("short", "<script>alert(1)</script>", "x" * 200, "a b c d e f g h"):
        r = api.get("/health", headers={"X-Request-ID": insane})
        assert r.headers["x-request-id"] != insane and len(r.headers["x-request-id"]) == 32


def test_the_schema_documents_problems(api):
    schema = api.get("/openapi.json").json()
    assert {"type", "title", "status", "detail", "code", "request_id"} <= set(
        schema["components"]["schemas"]["Problem"]["properties"]
    )
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    errors = 0
    for path, item in schema["paths"].items():
        for method, op in item.items():
            for code, response in op["responses"].items():
                assert "X-Request-ID" in response.get("headers", {}), (method, path, code)
                if int(code) >= 400:
                    errors += 1
                    assert list(response["content"]) == [MEDIA_TYPE], (method, path, code)
                    assert response["content"][MEDIA_TYPE]["schema"]["$ref"].endswith("/Problem")
            if path.startswith("/api/v1/"):
                assert "429" in op["responses"], (method, path)
    assert errors > 50
