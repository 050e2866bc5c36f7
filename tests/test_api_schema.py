"""Schemathesis against the live OpenAPI schema of a running server (uvicorn on loopback), authenticated.

Bounded: a few examples per operation (``MIXPILOT_SCHEMATHESIS_EXAMPLES``, default 8), so it
runs in CI in well under a minute. Checks: no 5xx, documented status codes, content types,
headers, response bodies that match their schemas, and every error an RFC 9457 problem
(``application/problem+json`` with a stable code and the request id of ``X-Request-ID``).
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time

import pytest

schemathesis = pytest.importorskip("schemathesis")
pytest.importorskip("uvicorn")

import httpx  # noqa: E402
import uvicorn  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.specs.openapi import checks as oa  # noqa: E402

from app.api.main import create_app  # noqa: E402
from tests.apiclient import PASSWORD, SONG, make_settings  # noqa: E402

EXAMPLES = int(os.environ.get("MIXPILOT_SCHEMATHESIS_EXAMPLES", "8"))
PROBLEM_FIELDS = {"type", "title", "status", "detail", "code", "instance", "request_id"}
#: what the run met: status codes of problems, responses without an id (must stay empty)
SEEN: dict[str, set] = {"problems": set(), "no_request_id": set()}


@schemathesis.check
def problem_details(ctx, response, case) -> None:
    """Every response names its request id; every 4xx/5xx is a problem whose fields agree with the response."""
    rid = response.headers.get("x-request-id") or response.headers.get("X-Request-ID")
    rid = rid[0] if isinstance(rid, list) else rid
    if not rid:
        SEEN["no_request_id"].add(f"{case.method} {case.path}")
        raise AssertionError("no X-Request-ID header")
    if response.status_code < 400:
        return
    ctype = response.headers.get("content-type") or response.headers.get("Content-Type") or ""
    ctype = ctype[0] if isinstance(ctype, list) else ctype
    assert ctype.startswith("application/problem+json"), f"{response.status_code} answered as {ctype!r}"
    if case.method.upper() == "HEAD":  # a HEAD answer has the headers of the problem, never a body
        assert not response.content, "HEAD answered with a body"
        SEEN["problems"].add(response.status_code)
        return
    body = response.json()
    missing = PROBLEM_FIELDS - set(body)
    assert not missing, f"{response.status_code} problem without {sorted(missing)}: {body}"
    assert body["status"] == response.status_code, body
    assert body["request_id"] == rid, (body["request_id"], rid)
    assert re.fullmatch(r"[a-z][a-z0-9_]*", body["code"]) and body["type"].endswith("/" + body["code"]), body
    if response.status_code == 429:
        assert response.headers.get("retry-after") or response.headers.get("Retry-After"), (
            "429 without Retry-After"
        )
    SEEN["problems"].add(response.status_code)


CHECKS = [
    schemathesis.checks.not_a_server_error,
    oa.status_code_conformance,
    oa.content_type_conformance,
    oa.response_headers_conformance,
    oa.response_schema_conformance,
    problem_details,
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    data = tmp_path_factory.mktemp("schema-data")
    port = _free_port()
    app = create_app(
        make_settings(data, login_max_failures=10_000, enhancement_wait_s=20, rate_limit_per_minute=100_000)
    )
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180  # start-up imports and migrations: slow on a loaded CI box
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    with httpx.Client(base_url=base, timeout=60) as c:
        email = "fuzz@example.com"
        c.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        tok = c.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD}).json()
        headers = {"Authorization": f"Bearer {tok['access_token']}"}
        with open(SONG, "rb") as f:
            assert (
                c.post("/api/v1/files", files={"file": ("song.flac", f)}, headers=headers).status_code == 201
            )
    yield base, headers
    server.should_exit = True
    thread.join(30)


def test_api_conforms_to_its_schema(live):
    """Every operation (except the SSE stream), a bounded number of generated requests each."""
    from hypothesis import given

    base, headers = live
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    failures: list[str] = []
    ran = 0
    for result in schema.get_all_operations():
        op = result.ok()
        if op.path.endswith("/events"):
            continue  # a stream: covered by the flow tests

        @given(case=op.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case):
            case.call_and_validate(headers=headers, checks=CHECKS, timeout=60)

        try:
            check()
            ran += 1
        except Exception as exc:  # collect every operation's failure, report all
            failures.append(f"{op.method.upper()} {op.path}: {str(exc)[:1500]}")
    assert ran >= 15
    assert not failures, "\n\n".join(failures)
    # the generated requests did reach the error paths the check is about
    assert {401, 422} <= SEEN["problems"], SEEN
