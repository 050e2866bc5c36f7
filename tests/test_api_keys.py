"""API keys (created, listed, revoked by their owner; hashed at rest; scoped) and the OAuth2 grants at the
token URL (password, refresh_token, client_credentials), on SQLite and on PostgreSQL."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from app.api.main import create_app
from app.api.security import api_key_hash
from memory import db
from tests.apiclient import PASSWORD, SPEECH, make_settings, register, upload
from tests.services import pg_url  # noqa: F401 (fixture)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def api(request, tmp_path_factory):
    extra = {"database_url": request.getfixturevalue("pg_url")} if request.param == "postgres" else {}
    settings = make_settings(tmp_path_factory.mktemp("keys-data"), **extra)
    with TestClient(create_app(settings)) as client:
        yield client


def _key(api, h, **body) -> dict:
    r = api.post("/api/v1/keys", json=body, headers=h)
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store" and r.headers["pragma"] == "no-cache"
    return r.json()


def _row(api, key_id: str) -> db.ApiKey:
    state = api.app.state.mp

    async def q() -> db.ApiKey:
        async with state.sessions() as s:
            return (await s.execute(select(db.ApiKey).where(db.ApiKey.id == key_id))).scalar_one()

    return api.portal.call(q)


def test_a_key_is_shown_once_stored_hashed_and_works_in_either_header(api):
    h = register(api)
    me = api.get("/api/v1/auth/me", headers=h).json()
    created = _key(api, h, name="render farm")
    key = created["key"]
    assert key.startswith("mp_live_" + created["id"] + "_") and len(key) > 60
    assert created["scopes"] == ["read", "write"] and created["prefix"] == "mp_live_" + created["id"][:8]
    assert created["created_at"].endswith(("Z", "+00:00")) and created["revoked_at"] is None

    row = _row(api, created["id"])
    assert key not in (row.secret_hash, row.name) and row.secret_hash != created["id"]
    assert row.secret_hash == api_key_hash(api.app.state.mp.tokens.secret, key)

    listed = api.get("/api/v1/keys", headers=h).json()
    assert listed["total"] == 1 and [k["id"] for k in listed["items"]] == [created["id"]]
    assert key not in str(listed) and "key" not in listed["items"][0]

    for headers in ({"Authorization": f"Bearer {key}"}, {"X-API-Key": key}):
        r = api.get("/api/v1/auth/me", headers=headers)
        assert r.status_code == 200 and r.json()["id"] == me["id"], r.text
    f = upload(api, {"X-API-Key": key}, SPEECH)  # write scope: uploads
    assert api.get(f"/api/v1/files/{f['id']}", headers={"X-API-Key": key}).status_code == 200
    assert _row(api, created["id"]).last_used_at is not None

    # the same id with another secret, a malformed key: 401
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    assert api.get("/api/v1/auth/me", headers={"X-API-Key": forged}).status_code == 401
    assert api.get("/api/v1/auth/me", headers={"X-API-Key": "mp_live_nope"}).status_code == 401


def test_a_read_only_key_reads_but_cannot_write(api):
    h = register(api)
    f = upload(api, h, SPEECH)
    ro = {"X-API-Key": _key(api, h, name="dashboard", scopes=["read"])["key"]}
    assert api.get("/api/v1/files", headers=ro).json()["items"][0]["id"] == f["id"]
    assert api.get(f"/api/v1/files/{f['id']}/download", headers=ro).status_code == 200
    with open(SPEECH, "rb") as fh:
        r = api.post("/api/v1/files", files={"file": ("a.flac", fh, "audio/flac")}, headers=ro)
    assert r.status_code == 403 and "write" in r.text
    assert api.delete(f"/api/v1/files/{f['id']}", headers=ro).status_code == 403
    assert api.get(f"/api/v1/files/{f['id']}", headers=h).status_code == 200  # still there

    # keys and the account are managed with a password sign-in, never with a key
    rw = {"Authorization": f"Bearer {_key(api, h)['key']}"}
    assert api.post("/api/v1/keys", json={}, headers=rw).status_code == 403
    assert api.get("/api/v1/keys", headers=rw).status_code == 403
    me = api.get("/api/v1/auth/me", headers=h).json()["email"]
    assert api.delete("/api/v1/auth/me", params={"confirm": me}, headers=rw).status_code == 403
    assert api.get("/api/v1/auth/me", headers=h).status_code == 200


def test_revocation_counts_from_the_next_request(api):
    h = register(api)
    created = _key(api, h)
    key = {"X-API-Key": created["key"]}
    tok = api.post(
        "/api/v1/auth/token", data={"grant_type": "client_credentials", "client_secret": created["key"]}
    ).json()["access_token"]
    bearer = {"Authorization": f"Bearer {tok}"}
    assert api.get("/api/v1/files", headers=key).status_code == 200
    assert api.get("/api/v1/files", headers=bearer).status_code == 200

    other = register(api)
    assert api.delete(f"/api/v1/keys/{created['id']}", headers=other).status_code == 404
    assert api.get("/api/v1/files", headers=key).status_code == 200

    assert api.delete(f"/api/v1/keys/{created['id']}", headers=h).status_code == 204
    assert api.get("/api/v1/files", headers=key).status_code == 401
    assert api.get("/api/v1/files", headers=bearer).status_code == 401  # its tokens end with it
    assert (
        api.post(
            "/api/v1/auth/token", data={"grant_type": "client_credentials", "client_secret": created["key"]}
        )
    ).status_code == 401
    assert api.delete(f"/api/v1/keys/{created['id']}", headers=h).status_code == 204  # again: no change
    assert api.get("/api/v1/keys", headers=h).json()["items"] == []
    revoked = api.get("/api/v1/keys", params={"include_revoked": True}, headers=h).json()["items"]
    assert [k["id"] for k in revoked] == [created["id"]] and revoked[0]["revoked_at"]


def test_an_expired_key_is_refused(api):
    h = register(api)
    created = _key(api, h, expires_in_days=30)
    key = {"X-API-Key": created["key"]}
    assert api.get("/api/v1/files", headers=key).status_code == 200
    state = api.app.state.mp

    async def expire() -> None:
        async with state.sessions() as s:
            past = datetime.now(UTC) - timedelta(seconds=1)
            await s.execute(update(db.ApiKey).where(db.ApiKey.id == created["id"]).values(expires_at=past))
            await s.commit()

    api.portal.call(expire)
    assert api.get("/api/v1/files", headers=key).status_code == 401


def test_client_credentials_grant(api):
    h = register(api)
    created = _key(api, h)
    url = "/api/v1/auth/token"
    r = api.post(
        url, data={"grant_type": "client_credentials", "client_secret": created["key"], "scope": "read"}
    )
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store" and r.headers["pragma"] == "no-cache"
    body = r.json()
    assert body["scope"] == "read" and body["refresh_token"] is None and body["token_type"] == "bearer"
    narrowed = {"Authorization": f"Bearer {body['access_token']}"}
    assert api.get("/api/v1/files", headers=narrowed).status_code == 200
    with open(SPEECH, "rb") as fh:
        r = api.post("/api/v1/files", files={"file": ("a.flac", fh, "audio/flac")}, headers=narrowed)
    assert r.status_code == 403

    # HTTP Basic client authentication (RFC 6749 2.3.1); all of the key's scopes by default
    basic = base64.b64encode(f"{created['id']}:{created['key']}".encode()).decode()
    r = api.post(url, data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"})
    assert r.status_code == 200 and r.json()["scope"] == "read write", r.text

    ro = _key(api, h, scopes=["read"])
    r = api.post(url, data={"grant_type": "client_credentials", "client_secret": ro["key"], "scope": "write"})
    assert r.status_code == 400 and "scope" in r.text
    r = api.post(
        url, data={"grant_type": "client_credentials", "client_secret": ro["key"], "client_id": created["id"]}
    )
    assert r.status_code == 401
    assert api.post(url, data={"grant_type": "client_credentials"}).status_code == 400
    assert (
        api.post(url, data={"grant_type": "client_credentials", "client_secret": "x" * 20}).status_code == 401
    )


def test_refresh_grant_at_the_token_url(api):
    email = f"grant{datetime.now().timestamp():.0f}@example.com"
    assert api.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD}).status_code == 201
    url = "/api/v1/auth/token"
    r = api.post(url, data={"grant_type": "password", "username": email, "password": PASSWORD})
    assert (
        r.status_code == 200
        and r.headers["cache-control"] == "no-store"
        and r.headers["pragma"] == "no-cache"
    )
    first = r.json()["refresh_token"]
    r = api.post(url, data={"grant_type": "refresh_token", "refresh_token": first})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store", r.text
    second = r.json()
    assert second["refresh_token"] != first
    assert (
        api.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {second['access_token']}"}).json()[
            "email"
        ]
        == email
    )
    # rotation holds at the token URL too: a spent refresh token is refused (and revokes the others)
    assert api.post(url, data={"grant_type": "refresh_token", "refresh_token": first}).status_code == 401
    assert (
        api.post(
            url, data={"grant_type": "refresh_token", "refresh_token": second["refresh_token"]}
        ).status_code
        == 401
    )
    assert api.post(url, data={"grant_type": "refresh_token"}).status_code == 400
    assert api.post(url, data={"grant_type": "password", "username": email}).status_code == 400
    assert api.post(url, data={"grant_type": "magic"}).status_code == 422

    # the old endpoint still works, marked deprecated in the schema
    tokens = api.post(url, data={"username": email, "password": PASSWORD}).json()
    r = api.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    schema = api.get("/openapi.json").json()
    assert schema["paths"]["/api/v1/auth/refresh"]["post"]["deprecated"] is True
    grants = schema["components"]["schemas"]["Body_create_token"]["properties"]["grant_type"]
    assert all(g in json.dumps(grants) for g in ("password", "refresh_token", "client_credentials"))
    ops = {op["operationId"] for item in schema["paths"].values() for op in item.values()}
    assert {"create_api_key", "list_api_keys", "revoke_api_key", "delete_account"} <= ops
