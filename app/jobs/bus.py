"""Progress events of jobs: published by whoever runs a job, read by the API (Server-Sent Events).

- `LocalBus`: in the API process (in-process runners); publish from any thread, read on the loop.
- `RedisBus`: across processes and machines (arq workers): one capped, expiring stream per job.
- `QueueBus`: in a job process of `ProcessRunner`; events go to the parent, which publishes them.

Events are best effort: the job row (`app.jobs.store`) is the truth. Each event a subscription yields
carries its position in the job's stream under ``"_id"`` (opaque: a sequence number, a Redis stream id);
``subscribe(after=that id)`` resumes after it (SSE ``Last-Event-ID``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from app.settings import Settings

log = logging.getLogger("mixpilot.jobs.bus")


def jsonable(value: Any) -> Any:
    """A JSON-safe copy (numpy scalars etc. via str/float; NaN and inf → None)."""
    return _clean(json.loads(json.dumps(value, default=_default)))


def _default(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def _clean(value: Any) -> Any:
    """NaN/inf → None (JSON has no NaN)."""
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


@runtime_checkable
class EventBus(Protocol):
    def publish(self, job_id: str, event: dict[str, Any]) -> None: ...

    def subscribe(
        self, job_id: str, *, wait_s: float = 1.0, after: str | None = None
    ) -> AsyncGenerator[list[dict[str, Any]], None]: ...

    async def aclose(self) -> None: ...


class LocalBus:
    """In-process: events kept per job (bounded), published from any thread, read on the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, keep: int = 500, linger_s: float = 600.0) -> None:
        self.loop, self.keep, self.linger_s = loop, keep, linger_s
        self._events: dict[str, list[dict[str, Any]]] = {}
        self._offset: dict[str, int] = {}
        self._waiters: dict[str, asyncio.Event] = {}
        self._touched: dict[str, float] = {}

    def publish(self, job_id: str, event: dict[str, Any]) -> None:
        self.loop.call_soon_threadsafe(self._append, job_id, jsonable(event))

    def _append(self, job_id: str, event: dict[str, Any]) -> None:
        events = self._events.setdefault(job_id, [])
        events.append(event)
        if len(events) > self.keep:  # keep the first (plan) and the latest
            drop = len(events) - self.keep
            del events[1 : 1 + drop]
            self._offset[job_id] = self._offset.get(job_id, 0) + drop
        self._touched[job_id] = time.monotonic()
        self._waiters.setdefault(job_id, asyncio.Event()).set()
        self._expire()

    def _expire(self) -> None:
        now = time.monotonic()
        for jid in [j for j, t in self._touched.items() if now - t > self.linger_s]:
            for d in (self._events, self._offset, self._waiters, self._touched):
                d.pop(jid, None)

    async def subscribe(
        self, job_id: str, *, wait_s: float = 1.0, after: str | None = None
    ) -> AsyncGenerator[list[dict[str, Any]], None]:
        """Yield batches of new events (an empty batch after `wait_s` without any); each event's ``_id`` is its
        1-based position in the job's stream, `after` one of them to resume after it."""
        seen = int(after) if after and after.isdigit() else 0
        while True:
            events = self._events.get(job_id, [])
            offset = self._offset.get(job_id, 0)
            start = max(seen - offset, 0)
            batch = events[start:]
            if batch:
                seen = offset + len(events)
                yield [{**e, "_id": str(offset + start + i + 1)} for i, e in enumerate(batch)]
                continue
            waiter = self._waiters.setdefault(job_id, asyncio.Event())
            waiter.clear()
            try:
                await asyncio.wait_for(waiter.wait(), wait_s)
            except TimeoutError:
                yield []

    async def aclose(self) -> None:
        pass


class RedisBus:
    """Across processes: one Redis stream per job (``mixpilot:jobev:{id}``), capped and expiring."""

    PREFIX = "mixpilot:jobev:"

    def __init__(self, url: str, *, keep: int = 1000, ttl_s: int = 24 * 3600) -> None:
        import redis

        self.url, self.keep, self.ttl_s = url, keep, ttl_s
        self._sync = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._async: Any = None

    def publish(self, job_id: str, event: dict[str, Any]) -> None:
        key = self.PREFIX + job_id
        try:
            pipe = self._sync.pipeline()
            pipe.xadd(key, {"e": json.dumps(jsonable(event))}, maxlen=self.keep, approximate=True)
            pipe.expire(key, self.ttl_s)
            pipe.execute()
        except Exception as exc:  # progress is best effort; the job row is the truth
            log.warning("could not publish job progress (%s)", exc)

    async def subscribe(
        self, job_id: str, *, wait_s: float = 1.0, after: str | None = None
    ) -> AsyncGenerator[list[dict[str, Any]], None]:
        import re

        import redis.asyncio as aredis

        if self._async is None:
            self._async = aredis.Redis.from_url(self.url, socket_connect_timeout=2)
        last = after if after and re.fullmatch(r"\d{1,20}-\d{1,20}", after) else "0-0"
        key = self.PREFIX + job_id
        while True:
            try:
                got = await self._async.xread({key: last}, block=int(wait_s * 1000), count=200)
            except Exception as exc:  # Redis hiccup: caller falls back to the job row
                log.warning("could not read job progress (%s)", exc)
                await asyncio.sleep(wait_s)
                yield []
                continue
            batch = []
            for _key, entries in got or []:
                for entry_id, fields in entries:
                    last = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                    raw = fields.get(b"e") or fields.get("e")
                    try:
                        batch.append({**json.loads(raw), "_id": last})
                    except (TypeError, ValueError):
                        continue
            yield batch

    async def aclose(self) -> None:
        if self._async is not None:
            await self._async.aclose()
        self._sync.close()


class QueueBus:
    """The bus of a `ProcessRunner` job process: events go to the parent's drain thread (which publishes them)."""

    def __init__(self, events: Any) -> None:
        self.events = events

    def publish(self, job_id: str, event: dict[str, Any]) -> None:
        try:
            self.events.put(("event", job_id, jsonable(event)))
        except Exception as exc:  # progress is best effort; the job row is the truth
            log.warning("could not publish job progress (%s)", exc)

    async def subscribe(
        self, job_id: str, *, wait_s: float = 1.0, after: str | None = None
    ) -> AsyncGenerator[list[dict[str, Any]], None]:
        raise NotImplementedError("a job process only publishes")
        yield []  # pragma: no cover - makes this an async generator

    async def aclose(self) -> None:
        pass


def make_bus(settings: Settings, *, loop: asyncio.AbstractEventLoop, in_process: bool = False) -> EventBus:
    """The API's bus: Redis when jobs go to arq workers (`app.jobs.runner.runner_kind`), else in-process."""
    from app.jobs.runner import runner_kind
    from app.jobs.worker import redis_url_of

    if runner_kind(settings, in_process=in_process) == "arq":
        return RedisBus(redis_url_of(settings))
    return LocalBus(loop)
