"""Schemathesis against the live OpenAPI schema of a running server (uvicorn on loopback), authenticated.

Bounded: a few examples per operation (``MIXPILOT_SCHEMATHESIS_EXAMPLES``, default 8), so it
runs in CI in well under a minute. Checks: no 5xx, documented status codes, content types,
headers, and response bodies that match their schemas.
"""

from __future__ import annotations

import os
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
CHECKS = [
    schemathesis.checks.not_a_server_error,
    oa.status_code_conformance,
    oa.content_type_conformance,
    oa.response_headers_conformance,
    oa.response_schema_conformance,
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    data = tmp_path_factory.mktemp("schema-data")
    port = _free_port()
    app = create_app(make_settings(data, login_max_failures=10_000, enhancement_wait_s=20))
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
