"""Passwords, tokens and login throttling: small pure functions (no DB, no FastAPI).

- Passwords: pwdlib's recommended hasher (Argon2id). `verify_password` never raises; an
  unknown user is checked against `DUMMY_HASH` so the response time does not tell whether
  the email exists.
- Tokens: PyJWT, HMAC. Every token carries ``sub`` (user id), ``type`` (access | refresh),
  ``iss``, ``aud``, ``iat``, ``exp`` and ``jti``; `decode_token` requires all of them and
  checks signature, expiry, issuer, audience and type. Refresh tokens are also recorded by
  ``jti`` (table ``refresh_tokens``, app/api/accounts.py): each is good for one refresh.
- `LoginThrottle`: failed logins per key in a sliding window, in-process; `RedisLoginThrottle`
  keeps the counts in Redis when it is configured, so the limit holds across API processes. Keys:
  ``email|client`` (an account from one address: `login_max_failures`) and ``*|client`` (failures
  only, any emails: `login_max_address_failures`, high). An address over its limit is refused only
  for accounts that have not signed in from it before (``ok|email|client``, `remember`), so one
  attacker behind an office NAT or a proxy cannot lock the others out.
- `client_address`: the client's address; ``X-Forwarded-For`` / ``Forwarded`` count only when the
  peer is a trusted proxy (`Settings.trusted_proxies`).
- `password_problem`: NIST SP 800-63B: at least 8 characters, not a common or breached password
  (the top of zxcvbn's list, from leaked password sets), not the email, not one repeated character;
  no composition rules.
- API keys (`new_api_key`, `parse_api_key`, `api_key_hash`): ``mp_live_<id>_<secret>``, stored as a keyed
  hash (see `api_key_hash` for why HMAC-SHA256 and not Argon2); `app.api.keys` keeps and checks them.
- `cors_options`: `CORSMiddleware`'s arguments for `Settings.cors_origins`.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal

import jwt
from pwdlib import PasswordHash

TokenType = Literal["access", "refresh", "stream"]
#: a stream token (GET /jobs/{id}/events?token=...): one job's events, for a browser's EventSource
STREAM_TOKEN_TTL = timedelta(minutes=5)
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
    except Exception:
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


def create_token(
    cfg: TokenConfig,
    *,
    subject: str,
    type: TokenType,
    now: datetime | None = None,
    ttl: timedelta | None = None,
    jti: str | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """A signed token; `extra` adds claims (an API key's access token: ``kid`` and ``scope``)."""
    now = now or datetime.now(UTC)
    ttl = ttl if ttl is not None else (cfg.access_ttl if type == "access" else cfg.refresh_ttl)
    claims = {
        "sub": subject,
        "type": type,
        "iss": cfg.issuer,
        "aud": cfg.audience,
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
        "jti": jti or uuid.uuid4().hex,
    }
    claims = {**(extra or {}), **claims}
    return jwt.encode(claims, cfg.secret, algorithm=cfg.algorithm)


def decode_token(cfg: TokenConfig, token: str, *, expected_type: TokenType) -> str:
    """The user id in a valid token of `expected_type`; `TokenError` otherwise."""
    return decode_claims(cfg, token, expected_type=expected_type)["sub"]


def decode_claims(cfg: TokenConfig, token: str, *, expected_type: TokenType) -> dict:
    """The claims of a valid token of `expected_type` (``sub``, ``jti`` checked non-empty); `TokenError` otherwise."""
    if not token:
        raise TokenError("missing token")
    try:
        claims = jwt.decode(
            token,
            cfg.secret,
            algorithms=[cfg.algorithm],
            audience=cfg.audience,
            issuer=cfg.issuer,
            options={"require": _REQUIRED_CLAIMS},
            leeway=5,
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("token expired") from None
    except jwt.PyJWTError:
        raise TokenError("invalid token") from None
    if not hmac.compare_digest(str(claims.get("type", "")).encode(), expected_type.encode()):
        article = "an" if expected_type[0] in "aeiou" else "a"
        raise TokenError(f"wrong token type: expected {article} {expected_type} token")
    for name in ("sub", "jti"):
        if not isinstance(claims.get(name), str) or not claims[name] or len(claims[name]) > 64:
            raise TokenError("invalid token")
    return claims


# ------------------------------------------------------------------------------ API keys

#: what every key starts with: recognisable in logs, config files and secret scanners
API_KEY_PREFIX = "mp_live_"
_API_KEY = re.compile(r"^mp_live_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$")


def new_api_key() -> tuple[str, str]:
    """(lookup id, key): ``mp_live_`` + the id (32 hex, the row's primary key) + ``_`` + 32 random bytes
    (256 bits, url-safe base64)."""
    import secrets

    key_id = uuid.uuid4().hex
    return key_id, f"{API_KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def parse_api_key(key: str) -> str | None:
    """The lookup id in a well-formed key; None for anything else."""
    m = _API_KEY.match(key or "")
    return m.group(1) if m else None


def api_key_hash(secret: str, key: str) -> str:
    """What is stored of an API key: HMAC-SHA256 of the whole key under a key derived from `secret` (hex).

    Why a fast keyed hash and not Argon2 as for passwords: a slow hash exists to make guessing a
    low-entropy secret expensive, one guess at a time. An API key is 256 random bits: nobody guesses it,
    fast hash or slow; its stored hash only has to be one-way. And a key is checked on every request, where
    Argon2's ~50 ms and 64 MiB would be the whole budget of a read. The HMAC key (derived from the server's
    JWT secret, never stored in the database) means a leaked database alone does not even let anyone test a
    candidate key offline. (Rotating the JWT secret therefore also retires every API key.)
    """
    pepper = hmac.new(secret.encode(), b"mixpilot api key hash v1", hashlib.sha256).digest()
    return hmac.new(pepper, key.encode(), hashlib.sha256).hexdigest()


def cors_options(settings: Any) -> dict[str, Any]:
    """`starlette.middleware.cors.CORSMiddleware` keyword arguments for `settings.cors_origins`.

    Bearer tokens and API keys travel in headers, never cookies: no credentials mode (so ``*`` is allowed
    as an origin). The headers an app reads (Location, ETag, Retry-After, rate limits, request ids) are
    exposed to scripts."""
    return {
        "allow_origins": list(settings.cors_origins),
        "allow_methods": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        "allow_headers": [
            "Authorization",
            "Content-Type",
            "X-API-Key",
            "Idempotency-Key",
            "Last-Event-ID",
            "If-None-Match",
            "If-Range",
            "Range",
            "X-Request-ID",
        ],
        "expose_headers": [
            "Location",
            "ETag",
            "Content-Range",
            "Accept-Ranges",
            "Retry-After",
            "RateLimit-Limit",
            "RateLimit-Remaining",
            "RateLimit-Reset",
            "RateLimit-Policy",
            "X-Request-ID",
        ],
        "allow_credentials": False,
        "max_age": 600,
    }


# ------------------------------------------------------------------------------ passwords: NIST SP 800-63B

MIN_PASSWORD_CHARS = 8
#: how much of the common-password list (most common first) is refused
COMMON_PASSWORDS = 10_000


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The most common passwords of leaked sets (zxcvbn's list, most common first), lower case."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(w.lower() for w in FREQUENCY_LISTS["passwords"][:COMMON_PASSWORDS])


def password_problem(password: str, *, email: str = "") -> str | None:
    """Why `password` is refused (NIST SP 800-63B: length, blocklist, context), or None when it is fine."""
    if len(password) < MIN_PASSWORD_CHARS:
        return f"password too short: use at least {MIN_PASSWORD_CHARS} characters (a few words work well)"
    if len(set(password)) == 1:
        return "password is one character repeated: use a few words instead"
    steps = {ord(b) - ord(a) for a, b in zip(password, password[1:], strict=False)}
    if steps in ({1}, {-1}):
        return "password is a run of consecutive characters: use a few words instead"
    folded = password.strip().lower()
    local = email.split("@", 1)[0].lower()
    if folded in common_passwords() or re.sub(r"\d+$", "", folded) in common_passwords() and len(folded) < 12:
        return "password is on a list of common or leaked passwords: choose another (a few words work well)"
    if folded in (email.lower(), local) or (
        len(local) >= 4 and folded.startswith(local) and len(folded) - len(local) < 4
    ):
        return "password is your email address: choose another"
    return None


# ------------------------------------------------------------------------------ client address


def _networks(trusted: list[str] | tuple[str, ...]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(t.strip(), strict=False) for t in trusted if t.strip()]


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    v = value.strip().strip('"')
    if v.startswith("["):  # Forwarded: "[2001:db8::1]:4711"
        v = v[1:].split("]", 1)[0]
    elif v.count(":") == 1:  # "192.0.2.1:4711"
        v = v.split(":", 1)[0]
    try:
        return ipaddress.ip_address(v)
    except ValueError:
        return None


def _forwarded_for(header: str) -> list[str]:
    """The ``for=`` values of a ``Forwarded`` header (RFC 7239), first hop first."""
    out = []
    for element in header.split(","):
        for pair in element.split(";"):
            name, _, value = pair.strip().partition("=")
            if name.lower() == "for":
                out.append(value)
    return out


def client_address(peer: str | None, headers: Any, trusted: list[str] | tuple[str, ...] = ()) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy; then the nearest address in
    ``Forwarded`` (preferred) or ``X-Forwarded-For`` that is not itself a trusted proxy (walking from the
    right: the entries left of it are whatever the client claimed)."""
    nets = _networks(trusted)
    peer_ip = _ip(peer or "")

    def trusted_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
        return ip is not None and any(ip in n for n in nets)

    if not nets or not trusted_ip(peer_ip):
        return str(peer_ip) if peer_ip is not None else (peer or "?")
    hops: list[str] = []
    forwarded = headers.get("forwarded")
    if forwarded:
        hops = _forwarded_for(forwarded)
    else:
        for value in (
            headers.getlist("x-forwarded-for")
            if hasattr(headers, "getlist")
            else [headers.get("x-forwarded-for") or ""]
        ):
            hops.extend(h for h in value.split(",") if h.strip())
    for hop in reversed(hops):
        ip = _ip(hop)
        if ip is None:  # garbage or an obfuscated name: stop at the last address we can vouch for
            break
        if not trusted_ip(ip):
            return str(ip)
        peer_ip = ip
    return str(peer_ip)


# ------------------------------------------------------------------------------ login throttling

#: keys of the form ``*|client``: one address's failures across all emails (their own, higher limit)
ADDRESS_PREFIX = "*|"
#: keys of the form ``ok|email|client``: that account signed in from that address (kept this long)
KNOWN_TTL_S = 90 * 24 * 3600.0


def _limit(max_failures: int, max_address_failures: int, key: str) -> int:
    return max_address_failures if key.startswith(ADDRESS_PREFIX) else max_failures


class LoginThrottle:
    """At most `max_failures` failed logins per key within `window_s` (`max_address_failures` for an
    address key); thread-safe, in-process. Keys: see the module docstring; a success clears the
    account's. (Several API processes each keep their own counts here: `RedisLoginThrottle` shares them.)
    """

    def __init__(
        self,
        *,
        max_failures: int = 5,
        window_s: float = 300.0,
        max_keys: int = 100_000,
        max_address_failures: int = 100,
    ) -> None:
        self.max_failures, self.window_s, self.max_keys = max_failures, window_s, max_keys
        self.max_address_failures = max_address_failures
        self._fails: dict[str, deque[float]] = {}
        self._known: dict[str, float] = {}
        self._lock = threading.Lock()

    def limit(self, key: str) -> int:
        return _limit(self.max_failures, self.max_address_failures, key)

    def remember(self, key: str) -> None:
        """Mark `key` (``ok|email|client``) as seen, for `KNOWN_TTL_S`."""
        with self._lock:
            if len(self._known) >= self.max_keys and key not in self._known:
                self._known.pop(next(iter(self._known)))
            self._known[key] = time.monotonic() + KNOWN_TTL_S

    def known(self, key: str) -> bool:
        with self._lock:
            return self._known.get(key, 0.0) > time.monotonic()

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
            oldest_counted = list(q)[-self.limit(key)]
            return max(1.0, self.window_s - (now - oldest_counted))

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

    def __init__(
        self,
        url: str,
        *,
        max_failures: int = 5,
        window_s: float = 300.0,
        prefix: str = "mixpilot:login:",
        fallback: LoginThrottle | None = None,
        max_address_failures: int = 100,
    ) -> None:
        import redis

        self.max_failures, self.window_s, self.prefix = max_failures, window_s, prefix
        self.max_address_failures = max_address_failures
        self._r = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.fallback = fallback or LoginThrottle(
            max_failures=max_failures, window_s=window_s, max_address_failures=max_address_failures
        )

    def remember(self, key: str) -> None:
        self.fallback.remember(key)
        try:
            self._r.set(self._key(key), b"1", ex=int(KNOWN_TTL_S))
        except Exception:
            pass

    def known(self, key: str) -> bool:
        try:
            return bool(self._r.exists(self._key(key)))
        except Exception:
            return self.fallback.known(key)

    def _key(self, key: str) -> str:
        return self.prefix + hashlib.sha256(key.encode()).hexdigest()[:32]  # no emails in Redis key names

    def retry_after(self, key: str) -> float:
        try:
            k = self._key(key)
            pipe: Any = self._r.pipeline()
            count, ttl = pipe.get(k).pttl(k).execute()
        except Exception:
            return self.fallback.retry_after(key)
        if count is None or int(count) < _limit(self.max_failures, self.max_address_failures, key):
            return self.fallback.retry_after(key)
        return max(1.0, (ttl or 0) / 1000.0)

    def failed(self, key: str) -> None:
        self.fallback.failed(key)
        try:
            k = self._key(key)
            pipe: Any = self._r.pipeline()
            count, ttl = pipe.incr(k).ttl(k).execute()
            if int(count) == 1 or ttl is None or int(ttl) < 0:  # the window starts at the first failure
                self._r.expire(k, int(self.window_s) + 1)
        except Exception:
            pass

    def succeeded(self, key: str) -> None:
        self.fallback.succeeded(key)
        try:
            self._r.delete(self._key(key))
        except Exception:
            pass


def login_throttle(settings: Any) -> LoginThrottle | RedisLoginThrottle:
    """The throttle for these settings: shared in Redis when ``redis_url`` is set, else in-process."""
    local = LoginThrottle(
        max_failures=settings.login_max_failures,
        window_s=settings.login_window_s,
        max_address_failures=settings.login_max_address_failures,
    )
    if not settings.redis_url:
        return local
    try:
        return RedisLoginThrottle(
            settings.redis_url,
            max_failures=settings.login_max_failures,
            window_s=settings.login_window_s,
            fallback=local,
            max_address_failures=settings.login_max_address_failures,
        )
    except Exception:
        return local
