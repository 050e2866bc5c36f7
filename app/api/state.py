"""What the API builds at start-up and hands to every request (`AppState`, on ``app.state.mp``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from app.api.security import LoginThrottle, TokenConfig
from app.settings import Settings


@dataclass(kw_only=True)
class AppState:
    settings: Settings
    service: Any  # agents.service.Mixpilot
    engine: Any  # sqlalchemy AsyncEngine
    sessions: Any  # async_sessionmaker
    tokens: TokenConfig
    throttle: LoginThrottle
    runner: Any  # LocalRunner | ArqRunner
    bus: Any  # LocalBus | RedisBus
    reads: Any = None  # app.api.reads.Reads: token user, job and file lookups (inline on SQLite)
    started_at: float = field(default_factory=time.time)
    #: user id -> (expires at (monotonic), (email, is_active, created_at)): `deps.get_current_user`
    users: dict[str, tuple[float, tuple[Any, ...]]] = field(default_factory=dict)
    #: access token -> (user id, its expiry (epoch s)): tokens already verified, `deps.get_current_user`
    verified: dict[str, tuple[str, float]] = field(default_factory=dict)


def database_url(settings: Settings) -> str:
    from memory.db import default_database_url

    if settings.database_url:
        return settings.database_url
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return default_database_url(settings.data_dir)


async def open_database(settings: Settings):
    """(engine, sessionmaker); an empty database is migrated, one that is behind is refused."""
    import asyncio

    from memory import migrate
    from memory.db import make_engine, make_sessionmaker

    url = database_url(settings)
    loop = asyncio.get_running_loop()
    if await loop.run_in_executor(None, migrate.current_revision, url) is None:
        await loop.run_in_executor(None, migrate.upgrade, url)
    engine = make_engine(url)
    try:
        await migrate.check_schema_current_async(engine)
    except Exception:
        await engine.dispose()
        raise
    return engine, make_sessionmaker(engine)


def token_config(settings: Settings) -> TokenConfig:
    from datetime import timedelta

    return TokenConfig(secret=settings.api_secret(), issuer=settings.jwt_issuer, audience=settings.jwt_audience,
                       algorithm=settings.jwt_algorithm, access_ttl=timedelta(minutes=settings.access_token_minutes),
                       refresh_ttl=timedelta(days=settings.refresh_token_days))
