"""CORS: no headers by default; with `cors_origins` the listed origins (only) get them, errors included."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient
from pydantic import ValidationError

from app.api.main import create_app
from tests.apiclient import make_settings, register

APP = "https://app.example.com"
PREFLIGHT = {
    "Origin": APP,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
}


def test_no_cors_headers_by_default(tmp_path):
    with TestClient(create_app(make_settings(tmp_path))) as api:
        r = api.get("/health", headers={"Origin": APP})
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
        r = api.options("/api/v1/chat", headers=PREFLIGHT)
        assert "access-control-allow-origin" not in r.headers


def test_the_allow_list(tmp_path):
    settings = make_settings(tmp_path, cors_origins=[APP, "http://localhost:5173"])
    with TestClient(create_app(settings)) as api:
        r = api.options("/api/v1/chat", headers=PREFLIGHT)
        assert r.status_code == 200, r.text
        assert r.headers["access-control-allow-origin"] == APP
        allowed = r.headers["access-control-allow-headers"].lower()
        assert {"authorization", "content-type", "idempotency-key", "x-api-key"} <= set(
            allowed.replace(" ", "").split(",")
        )
        assert "POST" in r.headers["access-control-allow-methods"]
        assert "access-control-allow-credentials" not in r.headers  # bearer tokens, never cookies

        h = register(api)
        r = api.get("/api/v1/files", headers=h | {"Origin": APP})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == APP
        exposed = r.headers["access-control-expose-headers"].lower()
        assert "location" in exposed and "etag" in exposed and "retry-after" in exposed
        r = api.get("/api/v1/files", headers={"Origin": APP})  # an error answer carries them too
        assert r.status_code == 401 and r.headers["access-control-allow-origin"] == APP

        evil = api.options("/api/v1/chat", headers=PREFLIGHT | {"Origin": "https://evil.example"})
        assert evil.status_code == 400 and "access-control-allow-origin" not in evil.headers
        r = api.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers


def test_a_500_carries_the_cors_headers(tmp_path):
    """An unexpected error is answered by Starlette's outermost layer (ServerErrorMiddleware): a browser app
    must still be able to read that answer (its problem body and request id), so CORS wraps even that."""
    app = create_app(make_settings(tmp_path, cors_origins=[APP]))

    @app.get("/api/v1/boom", include_in_schema=False)
    async def boom() -> None:
        raise RuntimeError("a bug")

    with TestClient(app, raise_server_exceptions=False) as api:
        r = api.get("/api/v1/boom", headers={"Origin": APP})
        assert r.status_code == 500 and r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "internal_error" and "a bug" not in r.text
        assert r.headers["access-control-allow-origin"] == APP
        assert "x-request-id" in r.headers["access-control-expose-headers"].lower()
        assert r.json()["request_id"] == r.headers["x-request-id"]
        r = api.get("/api/v1/boom", headers={"Origin": "https://evil.example"})
        assert r.status_code == 500 and "access-control-allow-origin" not in r.headers
        # a preflight is still answered before anything else
        assert (
            api.options(
                "/api/v1/boom", headers=PREFLIGHT | {"Access-Control-Request-Method": "GET"}
            ).status_code
            == 200
        )


@pytest.mark.parametrize(
    "bad", ["https://app.example.com/", "app.example.com", "https://a.example/x", "ftp://a"]
)
def test_an_origin_is_scheme_host_port(tmp_path, bad):
    with pytest.raises(ValidationError, match="not an origin"):
        make_settings(tmp_path, cors_origins=[bad])
