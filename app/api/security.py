"""Passwords, tokens and login throttling: small pure functions (no DB, no FastAPI).

- Passwords: pwdlib's recommended hasher (Argon2id). `verify_password` never raises; an
  unknown user is checked against `DUMMY_HASH` so the response time does not tell whether
  the email exists.
- Tokens: PyJWT, HMAC. Every token carries ``sub`` (user id), ``type`` (access | refresh),
  ``iss``, ``aud``, ``iat``, ``exp`` and ``jti``; `decode_token` requires all of them and
  checks signature, expiry, issuer, audience and type. Refresh tokens are also recorded by
  ``jti`` (table ``refresh_tokens``, app/api/accounts.py): each is good for one refresh.
- `LoginThrottle`: failed logins per key (email + client, and client alone) in a sliding window,
  in-process; `RedisLoginThrottle` keeps the counts in Redis when it is configured, so the
  limit holds across API processes.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Literal

import jwt
from pwdlib import PasswordHash

TokenType = Literal["access", "refresh"]
_REQUIRED_CLAIMS = ["sub", "type", "iss", "aud", "iat", "exp", "jti"]


@lru_cache(maxsize=1)
def _hasher() -> PasswordHash:
    return PasswordHash.recommended()


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password: str, hashed: str) -> bool:
    """True when `password` matches `hashed`; False for a wrong password or a malformed/empty hash."""
    if not hashed:
        _hasher().verify(password or "", dummy_hash())
        return False
    try:
        return bool(_hasher().verify(password or "", hashed))
    except Exception:  # noqa: BLE001 - unknown hash format
        return False


@lru_cache(maxsize=1)
def dummy_hash() -> str:
    """A real Argon2 hash of a random password: verified against when the user does not exist."""
    return _hasher().hash(uuid.uuid4().hex)


def check_password_unknown_user(password: str) -> bool:
    """Spend the same time as a real check, then fail (unknown email)."""
    _hasher().verify(password or "", dummy_hash())
    return False


class TokenError(ValueError):
    """The token is missing, malformed, expired, forged or of the wrong type (message says which)."""


@dataclass(frozen=True, kw_only=True)
class TokenConfig:
    secret: str
    issuer: str
    audience: str
    algorithm: str = "HS256"
    access_ttl: timedelta = timedelta(minutes=30)
    refresh_ttl: timedelta = timedelta(days=14)


def create_token(cfg: TokenConfig, *, subject: str, type: TokenType, now: datetime | None = None,
                 ttl: timedelta | None = None, jti: str | None = None) -> str:
    now = now or datetime.now(UTC)
    ttl = ttl if ttl is not None else (cfg.access_ttl if type == "access" else cfg.refresh_ttl)
    claims = {"sub": subject, "type": type, "iss": cfg.issuer, "aud": cfg.audience, "iat": int(now.timestamp()),
              "exp": int((now + ttl).timestamp()), "jti": jti or uuid.uuid4().hex}
    return jwt.encode(claims, cfg.secret, algorithm=cfg.algorithm)


def decode_token(cfg: TokenConfig, token: str, *, expected_type: TokenType) -> str:
    """The user id in a valid token of `expected_type`; `TokenError` otherwise."""
    return decode_claims(cfg, token, expected_type=expected_type)["sub"]


def decode_claims(cfg: TokenConfig, token: str, *, expected_type: TokenType) -> dict:
    """The claims of a valid token of `expected_type` (``sub``, ``jti`` checked non-empty); `TokenError` otherwise."""
    if not token:
        raise TokenError("missing token")
    try:
        claims = jwt.decode(token, cfg.secret, algorithms=[cfg.algorithm], audience=cfg.audience, issuer=cfg.issuer,
                            options={"require": _REQUIRED_CLAIMS}, leeway=5)
    except jwt.ExpiredSignatureError:
        raise TokenError("token expired") from None
    except jwt.PyJWTError:
        raise TokenError("invalid token") from None
    if not hmac.compare_digest(str(claims.get("type", "")).encode(), expected_type.encode()):
        raise TokenError(f"wrong token type: expected an {expected_type} token")
    for name in ("sub", "jti"):
        if not isinstance(claims.get(name), str) or not claims[name] or len(claims[name]) > 64:
            raise TokenError("invalid token")
    return claims


#: a key of the form ``*|client`` counts one client's failures across all emails: a wider limit
CLIENT_WIDE_FACTOR = 4


def _limit(max_failures: int, key: str) -> int:
    return max_failures * CLIENT_WIDE_FACTOR if key.startswith("*|") else max_failures


class LoginThrottle:
    """At most `max_failures` failed logins per key within `window_s`; thread-safe, in-process.

    Keys are ``email|client`` and ``client``; a success clears the first. (Several API processes
    each keep their own counts here: `RedisLoginThrottle` shares them.)
    """

    def __init__(self, *, max_failures: int = 5, window_s: float = 300.0, max_keys: int = 100_000) -> None:
        self.max_failures, self.window_s, self.max_keys = max_failures, window_s, max_keys
        self._fails: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def limit(self, key: str) -> int:
        return _limit(self.max_failures, key)

    def _prune(self, key: str, now: float) -> deque[float]:
        q = self._fails.get(key)
        if q is None:
            return deque()
        while q and now - q[0] > self.window_s:
            q.popleft()
        if not q:
            self._fails.pop(key, None)
        return q

    def retry_after(self, key: str) -> float:
        """Seconds until `key` may try again (0 when allowed)."""
        now = time.monotonic()
        with self._lock:
            q = self._prune(key, now)
            if len(q) < self.limit(key):
                return 0.0
            q = list(q)[-self.limit(key):]
            return max(1.0, self.window_s - (now - q[0]))

    def failed(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._fails) >= self.max_keys and key not in self._fails:
                self._fails.pop(next(iter(self._fails)))
            self._fails.setdefault(key, deque()).append(now)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._fails.pop(key, None)


class RedisLoginThrottle:
    """`LoginThrottle`'s interface with the counts in Redis, shared by every API process.

    A fixed window per key (``INCR`` + ``EXPIRE`` on the first failure). Redis trouble never
    blocks a login: the in-process `fallback` counts meanwhile.
    """

    def __init__(self, url: str, *, max_failures: int = 5, window_s: float = 300.0, prefix: str = "mixpilot:login:",
                 fallback: LoginThrottle | None = None) -> None:
        import redis

        self.max_failures, self.window_s, self.prefix = max_failures, window_s, prefix
        self._r = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.fallback = fallback or LoginThrottle(max_failures=max_failures, window_s=window_s)

    def _key(self, key: str) -> str:
        return self.prefix + hashlib.sha256(key.encode()).hexdigest()[:32]  # no emails in Redis key names

    def retry_after(self, key: str) -> float:
        try:
            k = self._key(key)
            count, ttl = self._r.pipeline().get(k).pttl(k).execute()
        except Exception:  # noqa: BLE001 - Redis down: count in-process
            return self.fallback.retry_after(key)
        if count is None or int(count) < _limit(self.max_failures, key):
            return self.fallback.retry_after(key)
        return max(1.0, (ttl or 0) / 1000.0)

    def failed(self, key: str) -> None:
        self.fallback.failed(key)
        try:
            k = self._key(key)
            count, ttl = self._r.pipeline().incr(k).ttl(k).execute()
            if int(count) == 1 or ttl is None or int(ttl) < 0:  # the window starts at the first failure
                self._r.expire(k, int(self.window_s) + 1)
        except Exception:  # noqa: BLE001
            pass

    def succeeded(self, key: str) -> None:
        self.fallback.succeeded(key)
        try:
            self._r.delete(self._key(key))
        except Exception:  # noqa: BLE001
            pass


def login_throttle(settings) -> LoginThrottle | RedisLoginThrottle:
    """The throttle for these settings: shared in Redis when ``redis_url`` is set, else in-process."""
    local = LoginThrottle(max_failures=settings.login_max_failures, window_s=settings.login_window_s)
    if not settings.redis_url:
        return local
    try:
        return RedisLoginThrottle(settings.redis_url, max_failures=settings.login_max_failures,
                                  window_s=settings.login_window_s, fallback=local)
    except Exception:  # noqa: BLE001 - redis package missing: in-process
        return local
