"""Real Postgres and Redis for tests: used when reachable, skipped with a message when not,
and a FAILURE (not a skip) when ``CI=true`` — CI must test against the real services.

Postgres: ``MIXPILOT_TEST_POSTGRES_URL`` (default ``postgresql+asyncpg://postgres@127.0.0.1:5432/test``);
each test session creates its own throw-away database beside it (dropped afterwards) so
parallel suites never share tables. Redis: ``MIXPILOT_TEST_REDIS_URL`` (default
``redis://127.0.0.1:6379/15``).

Import the fixtures into a test module: ``from tests.services import pg_url, redis_url``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid

import pytest

PG_URL = os.environ.get("MIXPILOT_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("MIXPILOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def dead_port() -> int:
    """A loopback port nothing listens on (to stand for a service that is down)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(what: str, exc: BaseException) -> None:
    msg = f"{what} not reachable ({type(exc).__name__}: {exc})"
    if in_ci():
        pytest.fail(f"{msg}; CI=true requires the real service", pytrace=False)
    pytest.skip(f"{msg}; start it to run these tests")


def _dsn(url: str) -> str:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return u.set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_dsn(url), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_url():
    """URL of a fresh, empty Postgres database for this test session."""
    try:
        import asyncpg  # noqa: F401

        asyncio.run(_admin(PG_URL, "SELECT 1"))
    except Exception as exc:
        unavailable(f"Postgres at {PG_URL}", exc)
    from sqlalchemy.engine import make_url

    name = f"mixpilot_t_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_admin(PG_URL, f'CREATE DATABASE "{name}"'))
    except Exception:  # no CREATE DATABASE right: use the given database itself
        yield PG_URL
        return
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    try:
        asyncio.run(_admin(PG_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    except Exception:
        pass


@pytest.fixture(scope="session")
def redis_url():
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
        client.ping()
        client.close()
    except Exception as exc:
        unavailable(f"Redis at {REDIS_URL}", exc)
    return REDIS_URL
