"""Text hygiene, error bodies, login throttling that cannot be turned against users, password policy.

The API cases run on SQLite (in-process throttle) and on PostgreSQL + Redis (throttle state in Redis);
under CI=true a missing service is a failure (tests/services.py).
"""

from __future__ import annotations

import typing
import uuid

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient
from pydantic import BaseModel

from app.api.main import create_app
from app.api.security import LoginThrottle, RedisLoginThrottle, client_address, password_problem
from tests.apiclient import PASSWORD, SONG, make_settings, register, upload
from tests.services import pg_url, redis_url  # noqa: F401  (fixtures)

BAD = ["a\x00b", "a\x1bb", "a\x7fb", "a\x85b", "a\ud800b"]
#: a lone surrogate only travels in JSON (as an escape): forms and query strings are UTF-8
BAD_UTF8 = BAD[:-1]


def _post(api, url: str, body, headers=None):
    """POST JSON as escaped ASCII (so lone surrogates arrive as JSON escapes, as an attacker would send them)."""
    import json

    return api.post(
        url,
        content=json.dumps(body).encode(),
        headers={**(headers or {}), "Content-Type": "application/json"},
    )


@pytest.fixture(params=["sqlite", "postgres+redis"])
def backend(request):
    if request.param == "sqlite":
        return {}
    return {
        "database_url": request.getfixturevalue("pg_url"),
        "redis_url": request.getfixturevalue("redis_url"),
    }


@pytest.fixture
def make_api(tmp_path, backend):
    def make(client=None, **overrides):
        # a fresh address per app: the Redis throttle state outlives each test
        client = client or (f"198.18.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}", 50000)
        settings = make_settings(
            tmp_path / f"data-{uuid.uuid4().hex[:6]}",
            job_runner="thread",
            job_queue=f"mixpilot:test:{uuid.uuid4().hex[:8]}",
            **{**backend, **overrides},
        )
        return TestClient(create_app(settings), client=client, raise_server_exceptions=False)

    return make


# ------------------------------------------------------------------ text hygiene


def _request_models() -> list[type[BaseModel]]:
    import importlib
    import pkgutil

    from fastapi.routing import APIRoute

    import app.api.routes as routes

    found: list[type[BaseModel]] = []

    def walk(model: type[BaseModel]) -> None:
        if model in found:
            return
        found.append(model)
        for f in model.model_fields.values():
            for t in _types(f.annotation):
                if isinstance(t, type) and issubclass(t, BaseModel):
                    walk(t)

    for info in pkgutil.iter_modules(routes.__path__):
        router = importlib.import_module(f"app.api.routes.{info.name}").router
        for route in router.routes:
            if not isinstance(route, APIRoute):
                continue
            for param in route.dependant.body_params:
                for t in _types(param.field_info.annotation):
                    if isinstance(t, type) and issubclass(t, BaseModel):
                        walk(t)
    return found


def _types(annotation):
    yield annotation
    for arg in typing.get_args(annotation):
        yield from _types(arg)


def test_every_text_field_of_every_request_model_refuses_control_characters():
    from app.api.schemas import check_line, check_text

    models = _request_models()
    assert {m.__name__ for m in models} >= {
        "RegisterIn",
        "RefreshIn",
        "ChatIn",
        "FeedbackIn",
        "VoiceIn",
        "MixingOptions",
        "CompleteOptions",
    }
    for model in models:
        assert model.model_config.get("allow_inf_nan") is False, model.__name__
        for name in model.model_fields:
            hints = typing.get_type_hints(model, include_extras=True)[name]
            plain = [t for t in _types(hints) if t is str]
            checked = [
                m
                for t in _types(hints)
                for m in getattr(t, "__metadata__", ())
                if getattr(m, "func", None) in (check_text, check_line)
            ]
            assert not plain or checked, (
                f"{model.__name__}.{name} is a str without the control-character check"
            )


def test_nul_and_control_characters_are_422_everywhere(make_api):
    with make_api() as api:
        for bad in BAD:
            r = _post(api, "/api/v1/auth/register", {"email": f"{bad}@example.com", "password": PASSWORD})
            assert r.status_code == 422, (repr(bad), r.text)
            r = _post(
                api, "/api/v1/auth/register", {"email": "x@example.com", "password": f"{PASSWORD}{bad}"}
            )
            assert r.status_code == 422, (repr(bad), r.text)
            r = _post(api, "/api/v1/auth/refresh", {"refresh_token": bad})
            assert r.status_code == 422, (repr(bad), r.text)
        for bad in BAD_UTF8:
            r = api.post("/api/v1/auth/token", data={"username": f"{bad}@example.com", "password": PASSWORD})
            assert r.status_code == 422, (repr(bad), r.text)
            r = api.post("/api/v1/auth/token", data={"username": "x@example.com", "password": bad * 4})
            assert r.status_code == 422, (repr(bad), r.text)
        h = register(api)
        f = upload(api, h, SONG)
        for bad in BAD:
            r = _post(api, "/api/v1/chat", {"message": f"master {bad}", "file_ids": [f["id"]]}, h)
            assert r.status_code == 422 and ("control character" in r.text or "unicode" in r.text), r.text
            r = _post(api, "/api/v1/feedback", {"file_id": f["id"], "rating": 3, "comment": bad}, h)
            assert r.status_code == 422, (repr(bad), r.text)
            r = _post(api, "/api/v1/feedback", {"file_id": f["id"], "rating": 3, "aspects": {bad: 3}}, h)
            assert r.status_code == 422, (repr(bad), r.text)
            r = _post(
                api,
                "/api/v1/enhancement/mixing",
                {"beat_file_id": f["id"], "vocal_file_id": f["id"], "options": {"genre": bad}},
                h,
            )
            assert r.status_code == 422, (repr(bad), r.text)
            r = _post(
                api, "/api/v1/enhancement/complete", {"file_id": f["id"], "options": {"request": bad}}, h
            )
            assert r.status_code == 422, (repr(bad), r.text)
        for bad in BAD_UTF8:
            r = api.get("/api/v1/recommendations", params={"file_id": f["id"], "request": bad}, headers=h)
            assert r.status_code == 422, (repr(bad), r.text)
        # text keeps its tabs and newlines
        r = api.post(
            "/api/v1/feedback", json={"file_id": f["id"], "rating": 3, "comment": "ok\n\tgood"}, headers=h
        )
        assert r.status_code != 422, r.text
        r = api.post(
            "/api/v1/enhancement/voice",
            content=b'{"file_id": "%s", "options": {"target_lufs": NaN}}' % f["id"].encode(),
            headers={**h, "Content-Type": "application/json"},
        )
        assert r.status_code == 422 and "finite" in r.text, r.text


@pytest.mark.parametrize("environment", ["development", "production"])
def test_error_bodies_carry_a_request_id_not_the_error(tmp_path, environment, caplog):
    settings = make_settings(tmp_path / "data", job_runner="thread", environment=environment)
    app = create_app(settings)

    async def boom():
        raise RuntimeError("SELECT password_hash FROM users WHERE email = $1 [parameters: ('a@b.c',)]")

    app.add_api_route("/boom", boom)
    with TestClient(app, raise_server_exceptions=False) as api, caplog.at_level("ERROR", "mixpilot.api"):
        r = api.get("/boom")
    assert r.status_code == 500
    body = r.json()
    assert r.headers["content-type"] == "application/problem+json"
    assert set(body) == {"type", "title", "status", "detail", "code", "instance", "request_id"}
    assert body["code"] == "internal_error" and body["status"] == 500 and body["instance"] == "/boom"
    assert body["request_id"] in body["detail"]
    assert "SELECT" not in r.text and "password" not in r.text and "RuntimeError" not in r.text
    assert r.headers["x-request-id"] == body["request_id"]
    logged = [rec for rec in caplog.records if body["request_id"] in rec.getMessage()]
    assert logged and logged[0].exc_info is not None  # the server keeps the traceback under that id


def test_wrong_token_type_message(make_api):
    with make_api() as api:
        h = register(api)
        access = h["Authorization"].split()[1]
        r = api.post("/api/v1/auth/refresh", json={"refresh_token": access})
        assert r.status_code == 401 and "expected a refresh token" in r.json()["detail"]


# ------------------------------------------------------------------ passwords


@pytest.mark.parametrize(
    "password",
    [
        "password",
        "12345678",
        " " * 8,
        "Password1",
        "qwertyuiop",
        "abcdefgh",
        "iloveyou",
        "ana@example.com",
        "short",
    ],
)
def test_weak_passwords_are_refused(password):
    assert password_problem(password, email="ana@example.com") is not None


@pytest.mark.parametrize(
    "password", ["correct horse battery", "Tr0ub4dor&3x", "mixpilot loves mastering", "pålegg og brød"]
)
def test_good_passwords_pass_without_composition_rules(password):
    assert password_problem(password, email="ana@example.com") is None


def test_register_refuses_weak_passwords(make_api):
    with make_api() as api:
        for weak in ("password", "12345678", " " * 8):
            r = api.post("/api/v1/auth/register", json={"email": "w@example.com", "password": weak})
            assert r.status_code == 422 and "password" in r.json()["detail"], r.text
        r = api.post("/api/v1/auth/register", json={"email": "w@example.com", "password": PASSWORD})
        assert r.status_code == 201


# ------------------------------------------------------------------ client address behind proxies


def test_client_address_ignores_forwarding_headers_from_untrusted_peers():
    h = {"x-forwarded-for": "1.1.1.1", "forwarded": "for=2.2.2.2"}
    assert client_address("203.0.113.7", h, []) == "203.0.113.7"
    assert client_address("203.0.113.7", h, ["10.0.0.0/8"]) == "203.0.113.7"


def test_client_address_through_trusted_proxies():
    from starlette.datastructures import Headers

    trusted = ["10.0.0.0/8", "::1"]
    # the client's own claims (left) are skipped: the nearest untrusted hop is the client
    xff = Headers(raw=[(b"x-forwarded-for", b"6.6.6.6, 198.51.100.9, 10.1.1.1")])
    assert client_address("10.0.0.2", xff, trusted) == "198.51.100.9"
    two = Headers(raw=[(b"x-forwarded-for", b"6.6.6.6"), (b"x-forwarded-for", b"198.51.100.9")])
    assert client_address("10.0.0.2", two, trusted) == "198.51.100.9"
    fwd = Headers({"forwarded": 'for=6.6.6.6, for="[2001:db8::7]:4711";proto=https, for=10.2.2.2'})
    assert client_address("::1", fwd, trusted) == "2001:db8::7"
    garbage = Headers({"x-forwarded-for": "unknown, 10.1.1.1"})
    assert client_address("10.0.0.2", garbage, trusted) == "10.1.1.1"  # the last address vouched for
    assert client_address("10.0.0.2", Headers({}), trusted) == "10.0.0.2"


# ------------------------------------------------------------------ login throttling


def _login(api, email, password, headers=None):
    return api.post(
        "/api/v1/auth/token", data={"username": email, "password": password}, headers=headers or {}
    )


def test_one_address_cannot_lock_out_other_accounts(make_api):
    """The probe's case: 20+ failures on made-up emails from one address; an account nobody attacked still
    signs in from that address with its right password (default limits)."""
    with make_api() as api:
        email = f"v{uuid.uuid4().hex[:8]}@example.com"
        assert (
            api.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD}).status_code == 201
        )
        codes = {_login(api, f"made{i}@example.com", "wrong pass 1").status_code for i in range(25)}
        assert codes == {401}
        assert _login(api, email, PASSWORD).status_code == 200


def test_an_address_over_its_failure_limit_still_lets_known_accounts_in(make_api):
    with make_api(login_max_address_failures=6, login_max_failures=3) as api:
        known, fresh = (f"{n}{uuid.uuid4().hex[:8]}@example.com" for n in ("k", "f"))
        for e in (known, fresh):
            assert (
                api.post("/api/v1/auth/register", json={"email": e, "password": PASSWORD}).status_code == 201
            )
        assert _login(api, known, PASSWORD).status_code == 200  # signed in from this address before
        codes = [_login(api, f"spray{i}@example.com", "wrong pass 1").status_code for i in range(8)]
        assert codes[:6] == [401] * 6 and codes[6:] == [429, 429]
        assert _login(api, known, PASSWORD).status_code == 200
        r = _login(api, fresh, PASSWORD)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        # per account: 3 failures on the known account from this address throttle it here
        for _ in range(3):
            assert _login(api, known, "wrong pass 1").status_code == 401
        assert _login(api, known, PASSWORD).status_code == 429


def test_forwarded_client_addresses_are_throttled_separately_only_behind_trusted_proxies(make_api):
    proxy = ("10.0.0.5", 40000)
    me = f"192.0.2.{uuid.uuid4().int % 250 + 1}"
    attacker_ip = f"198.51.100.{uuid.uuid4().int % 250 + 1}"
    with make_api(client=proxy, trusted_proxies=["10.0.0.0/8"], login_max_address_failures=4) as api:
        email = f"p{uuid.uuid4().hex[:8]}@example.com"
        assert (
            api.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD}).status_code == 201
        )
        attacker = {"X-Forwarded-For": attacker_ip}
        # spoofed left-hand entries do not give the attacker fresh addresses
        codes = [
            _login(
                api, f"s{i}@example.com", "wrong pass 1", {"X-Forwarded-For": f"7.7.7.{i}, {attacker_ip}"}
            ).status_code
            for i in range(6)
        ]
        assert codes[-1] == 429
        assert _login(api, email, PASSWORD, attacker).status_code == 429  # never signed in from there
        # everyone else behind the same proxy is another client
        assert _login(api, email, PASSWORD, {"X-Forwarded-For": me}).status_code == 200
    with make_api(trusted_proxies=["10.0.0.0/8"], login_max_address_failures=4) as api:
        # an untrusted peer's header is ignored: rotating it does not escape the limit
        codes = [
            _login(api, f"s{i}@example.com", "wrong pass 1", {"X-Forwarded-For": f"7.7.7.{i}"}).status_code
            for i in range(6)
        ]
        assert codes[-1] == 429


def test_known_account_markers_are_shared_in_redis(redis_url):  # noqa: F811
    prefix = f"mixpilot:test:login:{uuid.uuid4().hex[:8]}:"
    api1 = RedisLoginThrottle(redis_url, max_failures=3, window_s=60, prefix=prefix, max_address_failures=5)
    api2 = RedisLoginThrottle(redis_url, max_failures=3, window_s=60, prefix=prefix, max_address_failures=5)
    assert not api2.known("ok|a@x|1.2.3.4")
    api1.remember("ok|a@x|1.2.3.4")
    assert api2.known("ok|a@x|1.2.3.4")
    for _ in range(4):
        api1.failed("*|1.2.3.4")
    assert api2.retry_after("*|1.2.3.4") == 0
    api2.failed("*|1.2.3.4")
    assert api1.retry_after("*|1.2.3.4") > 0


def test_in_process_address_limit():
    t = LoginThrottle(max_failures=2, window_s=60, max_address_failures=5)
    for _ in range(4):
        t.failed("*|1.2.3.4")
    assert t.retry_after("*|1.2.3.4") == 0
    t.failed("*|1.2.3.4")
    assert t.retry_after("*|1.2.3.4") > 0
    assert not t.known("ok|a|1.2.3.4")
    t.remember("ok|a|1.2.3.4")
    assert t.known("ok|a|1.2.3.4")
