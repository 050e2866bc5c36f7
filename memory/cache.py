"""Cache for recommendations and expensive intermediates (separated stems, analyses, embeddings).

One duck-typed interface (what `tools.registry.ToolContext.cache` expects)::

    get(key) -> bytes | None
    set(key, value: bytes, ttl_s: float | None) -> None

`RedisCache` (``MIXPILOT_REDIS_URL``) for several processes and machines; `MemoryCache` (an
in-process LRU with TTLs) when there is no Redis. A Redis outage degrades to *no cache*, never
to a failed request: every Redis error is swallowed, logged once, and Redis is left alone for
a few seconds (so a dead server costs one short timeout, not one per call).

Keys: build them with `cache_key("kind", audio_id, params...)` — content hashes and params,
so an entry is valid for as long as it lives.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from typing import Any, Protocol

log = logging.getLogger("mixpilot.cache")
PREFIX = "mixpilot:"


class Cache(Protocol):
    def get(self, key: str) -> bytes | None: ...

    def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None: ...


def cache_key(kind: str, *parts: Any) -> str:
    """A short, stable key: ``kind:`` + sha256 of the JSON of `parts`."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":")).encode()
    return f"{kind}:{hashlib.sha256(blob).hexdigest()[:40]}"


def get_json(cache: Cache | None, key: str) -> Any:
    if cache is None:
        return None
    raw = cache.get(key)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def set_json(cache: Cache | None, key: str, value: Any, ttl_s: float | None) -> None:
    if cache is not None:
        cache.set(key, json.dumps(value, default=str).encode(), ttl_s)


class MemoryCache:
    """In-process LRU with per-entry TTL, bounded by item count and total bytes. Thread-safe."""

    def __init__(self, *, max_items: int = 512, max_bytes: int = 512 * 1024 * 1024) -> None:
        self.max_items, self.max_bytes = max_items, max_bytes
        self._data: OrderedDict[str, tuple[bytes, float | None]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            value, expires = item
            if expires is not None and time.monotonic() >= expires:
                self._drop(key)
                return None
            self._data.move_to_end(key)
            return value

    def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        value = bytes(value)
        if len(value) > self.max_bytes:
            return
        expires = time.monotonic() + float(ttl_s) if ttl_s else None
        with self._lock:
            if key in self._data:
                self._drop(key)
            self._data[key] = (value, expires)
            self._bytes += len(value)
            while self._data and (len(self._data) > self.max_items or self._bytes > self.max_bytes):
                self._drop(next(iter(self._data)))

    def delete(self, key: str) -> None:
        with self._lock:
            if key in self._data:
                self._drop(key)

    def _drop(self, key: str) -> None:
        value, _ = self._data.pop(key)
        self._bytes -= len(value)

    def close(self) -> None:
        pass


class RedisCache:
    """Redis with TTLs; errors never propagate (the caller just sees a miss)."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 0.5,
        backoff_s: float = 5.0,
        prefix: str = PREFIX,
        client: Any = None,
    ) -> None:
        import redis

        self.url, self.prefix, self.backoff_s = url, prefix, backoff_s
        self._client = client or redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._down_until = 0.0
        self._warned = False
        self.errors = 0

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, exc: BaseException) -> None:
        self.errors += 1
        self._down_until = time.monotonic() + self.backoff_s
        if not self._warned:
            log.warning("Redis at %s unavailable (%s); running without cache", self.url, exc)
            self._warned = True

    def get(self, key: str) -> bytes | None:
        if not self.available:
            return None
        try:
            value: bytes | None = self._client.get(self.prefix + key)  # type: ignore[assignment]  # sync client
        except Exception as exc:  # redis.RedisError, OSError, timeouts: all mean "no cache"
            self._failed(exc)
            return None
        self._warned = False
        return value

    def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        if not self.available:
            return
        try:
            if ttl_s:
                self._client.set(self.prefix + key, bytes(value), px=max(1, int(float(ttl_s) * 1000)))
            else:
                self._client.set(self.prefix + key, bytes(value))
        except Exception as exc:
            self._failed(exc)

    def delete(self, key: str) -> None:
        if not self.available:
            return
        try:
            self._client.delete(self.prefix + key)
        except Exception as exc:
            self._failed(exc)

    def close(self) -> None:
        try:
            self._client.close()
        except Exception:
            pass


def make_cache(redis_url: str | None = None, **kwargs: Any) -> MemoryCache | RedisCache:
    """`RedisCache` when a URL is given (even if Redis is down right now: it recovers), else `MemoryCache`."""
    if redis_url:
        return RedisCache(redis_url, **kwargs)
    return MemoryCache(**kwargs)
