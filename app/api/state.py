"""What the API builds at start-up and hands to every request (`AppState`, on ``app.state.mp``)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from app.api.security import LoginThrottle, RedisLoginThrottle, TokenConfig
from app.api.webhooks import WebhookPolicy
from app.jobs import EventBus, Runner
from app.settings import Settings


@dataclass(kw_only=True)
class AppState:
    settings: Settings
    service: Any  # agents.service.Mixpilot
    engine: Any  # sqlalchemy AsyncEngine
    sessions: Any  # async_sessionmaker
    tokens: TokenConfig
    throttle: LoginThrottle | RedisLoginThrottle
    runner: Runner  # app.jobs.make_runner
    bus: EventBus  # app.jobs.make_bus
    reads: Any = None  # app.api.reads.Reads: token user, job and file lookups (inline on SQLite)
    #: uploads decoded at once (``decode_slots``): decoded audio is what an upload costs in memory
    decode_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(2))
    started_at: float = field(default_factory=time.time)
    #: per-job callbacks: attempts, backoff, timeout (`app.api.webhooks`)
    webhooks: WebhookPolicy = field(default_factory=WebhookPolicy)
    #: user id -> (expires at (monotonic), (email, is_active, created_at)): `deps.get_current_user`
    users: dict[str, tuple[float, tuple[Any, ...]]] = field(default_factory=dict)
    #: access token -> (user id, its expiry (epoch s)): tokens already verified, `deps.get_current_user`
    verified: dict[str, tuple[str, float]] = field(default_factory=dict)


def token_config(settings: Settings) -> TokenConfig:
    from datetime import timedelta

    return TokenConfig(
        secret=settings.api_secret(),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        algorithm=settings.jwt_algorithm,
        access_ttl=timedelta(minutes=settings.access_token_minutes),
        refresh_ttl=timedelta(days=settings.refresh_token_days),
    )
