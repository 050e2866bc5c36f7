"""Login throttling: per email + client, per client across emails (failures only, a higher limit), shared
across processes in Redis. (tests/test_hardening_api.py: the lock-out scenario and trusted proxies.)"""

from __future__ import annotations

import uuid

import pytest

pytest.importorskip("fastapi")

from app.api.security import LoginThrottle, RedisLoginThrottle
from tests.services import dead_port, redis_url  # noqa: F401 - (fixture)

ADDRESS_LIMIT = 12


def test_in_process_limits_per_email_and_per_client():
    t = LoginThrottle(max_failures=3, window_s=60, max_address_failures=ADDRESS_LIMIT)
    for _ in range(3):
        assert t.retry_after("a@x|1.2.3.4") == 0
        t.failed("a@x|1.2.3.4")
    assert 1 <= t.retry_after("a@x|1.2.3.4") <= 60
    assert t.retry_after("a@x|5.6.7.8") == 0  # another client is not throttled for that email
    for _ in range(ADDRESS_LIMIT - 1):
        t.failed("*|1.2.3.4")
    assert t.retry_after("*|1.2.3.4") == 0  # the client-wide key allows more
    t.failed("*|1.2.3.4")
    assert t.retry_after("*|1.2.3.4") > 0


def test_redis_throttle_is_shared_between_processes(redis_url):  # noqa: F811
    prefix = f"mixpilot:test:login:{uuid.uuid4().hex[:8]}:"
    api1 = RedisLoginThrottle(redis_url, max_failures=3, window_s=60, prefix=prefix)
    api2 = RedisLoginThrottle(redis_url, max_failures=3, window_s=60, prefix=prefix)  # another API process
    key = "b@x|10.0.0.1"
    api1.failed(key)
    api2.failed(key)
    assert api1.retry_after(key) == 0 and api2.retry_after(key) == 0
    api1.failed(key)
    assert 1 <= api2.retry_after(key) <= 61  # counted across both
    api2.succeeded(key)
    assert api1.retry_after(key) == 0


def test_redis_outage_throttles_in_process_and_never_fails_a_login():
    t = RedisLoginThrottle(f"redis://127.0.0.1:{dead_port()}/0", max_failures=2, window_s=60)
    key = "c@x|10.0.0.2"
    assert t.retry_after(key) == 0
    t.failed(key)
    t.failed(key)
    assert t.retry_after(key) > 0  # the fallback counted
    t.succeeded(key)
    assert t.retry_after(key) == 0


def test_one_client_trying_many_accounts_is_throttled(tmp_path):
    from fastapi.testclient import TestClient

    from app.api.main import create_app
    from tests.apiclient import make_settings

    settings = make_settings(
        tmp_path / "data", login_max_failures=2, login_max_address_failures=8, job_runner="thread"
    )
    with TestClient(create_app(settings)) as api:
        codes = [
            api.post(
                "/api/v1/auth/token", data={"username": f"n{i}@example.com", "password": "wrong pass 1"}
            ).status_code
            for i in range(9)
        ]
    assert codes[:8] == [401] * 8  # each email failed once only
    assert codes[-1] == 429
