"""Per-user rate limits: ``RateLimit-*`` headers on every API response, 429 problem + ``Retry-After`` over the
limit; counters in Redis shared by every API process, in-process without Redis (or while Redis is down)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("limits")

from fastapi.testclient import TestClient

from app.api.main import create_app
from app.api.ratelimit import JOB_OPERATIONS, Policy, RateLimiter
from tests.apiclient import make_settings, register
from tests.services import dead_port, pg_url, redis_url  # noqa: F401 (fixtures)


@contextlib.contextmanager
def running(tmp_path, **overrides):
    settings = make_settings(tmp_path / f"data-{uuid.uuid4().hex[:6]}", job_runner="thread", **overrides)
    with TestClient(create_app(settings)) as client:
        yield client


def limits_of(r) -> tuple[int, int, int]:
    return (
        int(r.headers["ratelimit-limit"]),
        int(r.headers["ratelimit-remaining"]),
        int(r.headers["ratelimit-reset"]),
    )


def test_requests_per_user_are_limited_with_headers(tmp_path):
    with running(tmp_path, rate_limit_per_minute=5, rate_limit_anonymous_per_minute=1000) as api:
        h, other = register(api), register(api)  # registering is anonymous: not the users' budget
        seen = []
        for _ in range(5):
            r = api.get("/api/v1/jobs", headers=h)
            assert r.status_code == 200, r.text
            limit, remaining, reset = limits_of(r)
            assert limit == 5 and 0 < reset <= 60 and r.headers["ratelimit-policy"] == "5;w=60"
            seen.append(remaining)
        assert seen == [4, 3, 2, 1, 0]
        r = api.get("/api/v1/jobs", headers=h)
        assert r.status_code == 429 and r.headers["content-type"] == "application/problem+json"
        body = r.json()
        assert body["code"] == "rate_limited" and body["limit"] == 5 and body["window_s"] == 60
        assert 1 <= int(r.headers["retry-after"]) <= 60 and limits_of(r)[1] == 0
        assert body["request_id"] == r.headers["x-request-id"]
        # per user: another user still has the whole budget; /health is not an API call
        assert limits_of(api.get("/api/v1/jobs", headers=other))[:2] == (5, 4)
        assert api.get("/health").status_code == 200 and "ratelimit-limit" not in api.get("/health").headers


def test_job_submissions_have_their_own_limit(tmp_path):
    with running(tmp_path, rate_limit_per_minute=100, rate_limit_jobs_per_minute=2) as api:
        h = register(api)
        body = {"message": "is it loud?", "file_ids": ["0" * 32]}  # no such file: a 404, but a submission
        for left in (1, 0):
            r = api.post("/api/v1/chat", json=body, headers=h)
            assert r.status_code == 404, r.text
            assert limits_of(r)[:2] == (2, left)  # the jobs policy is the one closest to its limit
            assert r.headers["ratelimit-policy"] == '100;w=60, 2;w=60;name="jobs"'
        r = api.post("/api/v1/chat", json=body, headers=h)
        assert r.status_code == 429 and "job submissions" in r.json()["detail"], r.text
        assert api.get("/api/v1/jobs", headers=h).status_code == 200  # reads go on
        assert limits_of(api.get("/api/v1/jobs", headers=h))[0] == 100
        # the operations counted as submissions all exist (a renamed one would silently escape the limit)
        paths = api.get("/openapi.json").json()["paths"].values()
        assert {op["operationId"] for item in paths for op in item.values()} >= JOB_OPERATIONS


def test_callers_without_valid_credentials_are_limited_by_address(tmp_path):
    with running(tmp_path, rate_limit_anonymous_per_minute=3, rate_limit_per_minute=100) as api:
        codes = [
            api.get("/api/v1/auth/me", headers={"Authorization": "Bearer made-up"}).status_code
            for _ in range(3)
        ]
        assert codes == [401, 401, 401]
        r = api.get("/api/v1/auth/me")  # no token: the same address
        assert r.status_code == 429 and r.json()["code"] == "rate_limited"


def test_counters_are_shared_through_redis(tmp_path, pg_url, redis_url):  # noqa: F811
    secret = "r" * 8 + uuid.uuid4().hex + "-shared-secret-0123456789"
    shared = dict(database_url=pg_url, redis_url=redis_url, jwt_secret=secret, rate_limit_per_minute=6)
    queue = f"mixpilot:test:{uuid.uuid4().hex[:8]}"
    with running(tmp_path, job_queue=queue, **shared) as a, running(tmp_path, job_queue=queue, **shared) as b:
        h = register(a)
        assert [limits_of(a.get("/api/v1/jobs", headers=h))[1] for _ in range(3)] == [5, 4, 3]
        assert limits_of(b.get("/api/v1/jobs", headers=h))[1] == 2  # the other process counts on
        b.get("/api/v1/jobs", headers=h)
        a.get("/api/v1/jobs", headers=h)
        assert b.get("/api/v1/jobs", headers=h).status_code == 429


def test_redis_down_counts_in_the_process():
    limiter = RateLimiter(f"redis://127.0.0.1:{dead_port()}/0")
    policy = Policy(name="requests", limit=2)

    async def go():
        return [await limiter.hit(policy, "user:x") for _ in range(3)]

    first, second, third = asyncio.run(go())
    assert (first.allowed, second.allowed, third.allowed) == (True, True, False)
    assert (first.remaining, second.remaining, third.remaining) == (1, 0, 0)
    assert 0 < third.reset_s <= 60
