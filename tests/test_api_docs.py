"""/docs (Swagger UI) and /redoc load without the internet: every script, style and icon they reference is
served by the app itself (from the installed fastapi-offline package)."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient

from app.api.main import create_app
from tests.apiclient import make_settings

TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    settings = make_settings(tmp_path_factory.mktemp("docs-data"), job_runner="thread")
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_reference_only_local_assets(api, page):
    r = api.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    assert any(u.endswith(".js") for u in refs), refs
    assert not re.search(r"https?://", html), re.findall(r"https?://\S+", html)  # no CDN, no web fonts
    assert "'/openapi.json'" in html or '"/openapi.json"' in html
    for url in refs:
        assert url.startswith("/"), url
        asset = api.get(url)
        assert asset.status_code == 200, url
        kind = next(v for k, v in TYPES.items() if url.endswith(k))
        assert kind in asset.headers["content-type"], (url, asset.headers["content-type"])
        assert len(asset.content) > (100_000 if url.endswith(".js") else 100), url  # the real bundle


def test_swagger_oauth2_redirect_and_schema_are_served(api):
    assert api.get("/docs/oauth2-redirect").status_code == 200
    assert api.get("/openapi.json").json()["info"]["title"] == "mixpilot API"


def test_production_hides_the_docs(tmp_path):
    settings = make_settings(tmp_path / "data", job_runner="thread", environment="production")
    with TestClient(create_app(settings)) as api:
        for page in ("/docs", "/redoc", "/docs/assets/swagger-ui-bundle.js"):
            r = api.get(page)
            assert r.status_code == 404 and r.json()["code"] == "not_found", page
