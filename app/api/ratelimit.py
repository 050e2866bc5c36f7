"""Per-user rate limits on ``/api/v1`` with the IETF ``RateLimit-*`` headers, 429 + ``Retry-After`` over them.

Two policies, fixed one-minute windows (`limits`, the library behind Flask-Limiter and SlowAPI):

- every request of a caller: ``rate_limit_per_minute`` (a signed-in user or an API key, by user id;
  anyone else, by client address with ``rate_limit_anonymous_per_minute``);
- job submissions and previews (`JOB_OPERATIONS`): ``rate_limit_jobs_per_minute`` on top.

Every ``/api/v1`` response carries ``RateLimit-Limit``, ``RateLimit-Remaining``, ``RateLimit-Reset``
(seconds until the window ends) for the policy closest to its limit, and ``RateLimit-Policy`` listing the
policies that apply (draft-ietf-httpapi-ratelimit-headers); a request over a limit is a 429 problem
(``code: rate_limited``) with ``Retry-After``. With ``MIXPILOT_REDIS_URL`` the counters live in Redis,
shared by every API process; otherwise in the process. Redis trouble never blocks a request: the
in-process counters take over meanwhile. A limit of 0 turns its policy off.

`enforce` is the dependency every API router gets (`app.api.main.build_router`); `RequestContext`
(`app.api.problems`) copies the headers it leaves in the request state onto the response.
"""

from __future__ import annotations

import hmac
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from app.api.problems import ProblemError
from app.api.security import TokenError, api_key_hash, client_address, decode_claims, parse_api_key
from app.settings import Settings

log = logging.getLogger("mixpilot.api.ratelimit")

WINDOW_S = 60
#: the operations that start processing (a job, or a preview rendered while the request waits): counted
#: against ``rate_limit_jobs_per_minute`` too
JOB_OPERATIONS = frozenset(
    {"create_chat_job", "retry_job", "enhance_voice", "enhance_mixing", "enhance_complete", "create_preview"}
)
#: documented on every API operation's 2xx and 429 (OpenAPI header objects)
HEADERS: dict[str, dict[str, Any]] = {
    "RateLimit-Limit": {
        "description": "requests allowed in the current window (the policy closest to its limit)",
        "schema": {"type": "integer"},
    },
    "RateLimit-Remaining": {
        "description": "requests left in the current window",
        "schema": {"type": "integer"},
    },
    "RateLimit-Reset": {"description": "seconds until the window resets", "schema": {"type": "integer"}},
    "RateLimit-Policy": {
        "description": 'the policies that apply: `600;w=60, 30;w=60;name="jobs"`',
        "schema": {"type": "string"},
    },
}


@dataclass(frozen=True, kw_only=True)
class Policy:
    name: str
    limit: int
    window_s: int = WINDOW_S

    def header(self) -> str:
        return f"{self.limit};w={self.window_s}" + (f';name="{self.name}"' if self.name != "requests" else "")


@dataclass(frozen=True, kw_only=True)
class Decision:
    policy: Policy
    allowed: bool
    remaining: int
    reset_s: int


class RateLimiter:
    """Fixed-window counters per (policy, caller) in `limits`' storage: in Redis when `redis_url` is given,
    else in the process.

    One round trip per request: the counter's atomic increment (`limits`' INCR + EXPIRE script); when the
    window ends is remembered per counter (from its first hit, or read once from Redis for a window another
    process opened), not asked each time: `limits`' own `FixedWindowRateLimiter` makes three round trips
    (hit, count, TTL), ~0.9 ms on a loaded machine against ~0.3 ms.
    """

    def __init__(self, redis_url: str | None = None, *, prefix: str = "mixpilot:ratelimit") -> None:
        from limits.aio.storage import MemoryStorage, RedisStorage, Storage

        self.local: Storage = MemoryStorage()
        self.shared: Storage | None = None
        if redis_url:
            self.shared = RedisStorage(
                "async+" + redis_url,
                implementation="redispy",
                key_prefix=prefix,
                socket_timeout=0.5,
                socket_connect_timeout=0.5,
            )
        self._warned = 0.0
        #: (storage, counter key) -> when its window ends (epoch s)
        self._ends: dict[tuple[int, str], float] = {}
        #: API key id -> (owner id, stored hash): both never change for a key id (revocation is the route's
        #: business), so a key is looked up once per process
        self._keys: dict[str, tuple[str, str]] = {}

    async def key_owner(self, state: Any, key: str) -> str | None:
        """The owner of a real API key (its hash matches the row), else None."""
        key_id = parse_api_key(key)
        if key_id is None:
            return None
        known = self._keys.get(key_id)
        if known is None:
            row = await state.reads.api_key(key_id)
            if row is None:
                return None
            if len(self._keys) >= 10_000:
                self._keys.clear()
            known = self._keys[key_id] = (row.owner_id, row.secret_hash)
        owner, stored = known
        return owner if hmac.compare_digest(api_key_hash(state.tokens.secret, key), stored) else None

    async def _count(self, storage: Any, key: str, window_s: int) -> tuple[int, float]:
        """(hits in the current window including this one, when the window ends)."""
        count = int(await storage.incr(key, window_s))
        now = time.time()
        slot = (id(storage), key)
        ends = self._ends.get(slot)
        if count == 1:  # this hit opened the window
            ends = now + window_s
        elif ends is None or ends <= now:  # a window another process (or an earlier one) opened
            ends = float(await storage.get_expiry(key))
        if len(self._ends) >= 100_000:
            self._ends.clear()
        self._ends[slot] = ends
        return count, ends

    async def hit(self, policy: Policy, caller: str) -> Decision:
        from limits import RateLimitItemPerSecond

        item = RateLimitItemPerSecond(policy.limit, policy.window_s, namespace=policy.name)
        key = item.key_for(caller)
        try:
            count, ends = await self._count(self.shared or self.local, key, item.get_expiry())
        except Exception as exc:  # Redis down or slow: count here meanwhile
            if time.monotonic() - self._warned > 60:
                self._warned = time.monotonic()
                log.warning("rate-limit counters in Redis unavailable (%s): counting in the process", exc)
            count, ends = await self._count(self.local, key, item.get_expiry())
        reset = max(0, math.ceil(ends - time.time()))
        return Decision(
            policy=policy,
            allowed=count <= policy.limit,
            remaining=max(0, policy.limit - count),
            reset_s=reset,
        )


def make_limiter(settings: Settings) -> RateLimiter:
    return RateLimiter(settings.redis_url)


async def caller_of(request: Request, state: Any, limiter: RateLimiter) -> tuple[str, bool]:
    """Who is calling: (``user:<id>``, True) for a valid access token or API key, else
    (``addr:<client address>``, False): a made-up credential counts against its address (and its request is
    refused by the route, 401)."""
    auth = request.headers.get("authorization", "")
    token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    key = request.headers.get("x-api-key", "") or (token if parse_api_key(token) else "")
    if key:
        owner = await limiter.key_owner(state, key)
        if owner is not None:
            return f"user:{owner}", True
    elif token:
        seen = state.verified.get(token)
        if seen is not None and time.time() < seen[1]:
            return f"user:{seen[0]}", True
        try:
            return f"user:{decode_claims(state.tokens, token, expected_type='access')['sub']}", True
        except TokenError:
            pass
    peer = request.client.host if request.client else None
    return f"addr:{client_address(peer, request.headers, state.settings.trusted_proxies)}", False


def policies_for(settings: Settings, *, known: bool, operation_id: str | None) -> list[Policy]:
    per_minute = settings.rate_limit_per_minute if known else settings.rate_limit_anonymous_per_minute
    out = [Policy(name="requests", limit=per_minute)] if per_minute > 0 else []
    if operation_id in JOB_OPERATIONS and settings.rate_limit_jobs_per_minute > 0:
        out.append(Policy(name="jobs", limit=settings.rate_limit_jobs_per_minute))
    return out


async def enforce(request: Request) -> None:
    """The dependency: count this request, leave the headers in the request state, 429 when over a limit."""
    state, limiter = request.app.state.mp, request.app.state.limiter
    route = request.scope.get("route")
    operation_id = getattr(route, "operation_id", None)
    caller, known = await caller_of(request, state, limiter)
    policies = policies_for(state.settings, known=known, operation_id=operation_id)
    if not policies:
        return
    decisions = [await limiter.hit(p, caller) for p in policies]
    refused = [d for d in decisions if not d.allowed]
    # the headers speak of the policy closest to its limit (a refused one first)
    shown = min(refused or decisions, key=lambda d: (d.remaining, -d.reset_s))
    headers = {
        "RateLimit-Limit": str(shown.policy.limit),
        "RateLimit-Remaining": str(shown.remaining),
        "RateLimit-Reset": str(shown.reset_s),
        "RateLimit-Policy": ", ".join(d.policy.header() for d in decisions),
    }
    request.state.ratelimit_headers = headers
    if refused:
        retry = max(1, max(d.reset_s for d in refused))
        what = "job submissions" if shown.policy.name == "jobs" else "requests"
        raise ProblemError(
            429,
            f"too many {what}: the limit is {shown.policy.limit} per {shown.policy.window_s} s; "
            f"retry in {retry} s",
            code="rate_limited",
            headers={**headers, "Retry-After": str(retry)},
            limit=shown.policy.limit,
            window_s=shown.policy.window_s,
            retry_after_s=retry,
        )
