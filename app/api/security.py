"""Passwords, tokens and login throttling: small pure functions (no DB, no FastAPI).

- Passwords: pwdlib's recommended hasher (Argon2id). `verify_password` never raises; an
  unknown user is checked against `DUMMY_HASH` so the response time does not tell whether
  the email exists.
- Tokens: PyJWT, HMAC. Every token carries ``sub`` (user id), ``type`` (access | refresh),
  ``iss``, ``aud``, ``iat``, ``exp`` and ``jti``; `decode_token` requires all of them and
  checks signature, expiry, issuer, audience and type.
- `LoginThrottle`: failed logins per (email, client) in a sliding window.
"""

from __future__ import annotations

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
                 ttl: timedelta | None = None) -> str:
    now = now or datetime.now(UTC)
    ttl = ttl if ttl is not None else (cfg.access_ttl if type == "access" else cfg.refresh_ttl)
    claims = {"sub": subject, "type": type, "iss": cfg.issuer, "aud": cfg.audience, "iat": int(now.timestamp()),
              "exp": int((now + ttl).timestamp()), "jti": uuid.uuid4().hex}
    return jwt.encode(claims, cfg.secret, algorithm=cfg.algorithm)


def decode_token(cfg: TokenConfig, token: str, *, expected_type: TokenType) -> str:
    """The user id in a valid token of `expected_type`; `TokenError` otherwise."""
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
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise TokenError("invalid token")
    return sub


class LoginThrottle:
    """At most `max_failures` failed logins per key within `window_s`; thread-safe, in-process.

    Keys are ``email|client``; a success clears the key. (Several API processes each keep their
    own counts: the limit then applies per process.)
    """

    def __init__(self, *, max_failures: int = 5, window_s: float = 300.0, max_keys: int = 100_000) -> None:
        self.max_failures, self.window_s, self.max_keys = max_failures, window_s, max_keys
        self._fails: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

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
            if len(q) < self.max_failures:
                return 0.0
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
