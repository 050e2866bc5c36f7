"""Liveness and readiness checks: database, cache, storage, models."""

from __future__ import annotations

import time
import uuid
from typing import Any

from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from app.api.state import AppState


async def _timed(fn) -> dict[str, Any]:
    t0 = time.perf_counter()
    try:
        detail = await fn()
        ok = True
    except Exception as exc:  # a failing check is reported, not raised
        detail, ok = f"{type(exc).__name__}: {str(exc)[:200]}", False
    out = {"ok": ok, "ms": round((time.perf_counter() - t0) * 1000, 1)}
    if detail:
        out["detail"] = detail
    return out


async def readiness(state: AppState) -> dict[str, dict[str, Any]]:
    async def database() -> str:
        async with state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return state.engine.dialect.name

    async def cache() -> str:
        c = getattr(state.service, "cache", None)
        if c is None:
            return "no cache configured"
        key = f"ready:{uuid.uuid4().hex}"
        await run_in_threadpool(c.set, key, b"1", 5)
        hit = await run_in_threadpool(c.get, key)
        kind = type(c).__name__
        if hit != b"1":
            if kind == "RedisCache":
                raise RuntimeError("Redis cache did not answer (requests run without cache)")
            raise RuntimeError("cache write/read failed")
        return kind

    async def storage() -> str:
        root = state.settings.data_dir
        probe = root / f".ready-{uuid.uuid4().hex}"
        await run_in_threadpool(probe.write_bytes, b"ok")
        probe.unlink()
        store = getattr(state.service, "store", None)
        check = getattr(store, "check", None)  # object storage: the bucket answers with these credentials
        if callable(check):
            await run_in_threadpool(check)
            return f"data dir writable; {type(store).__name__} reachable"
        return "writable"

    async def models() -> str:
        def check() -> str:
            reg = state.service.registry
            names = list(reg)
            unavailable = [n for n in names if not reg[n].availability()[0]]
            missing = [
                s.name
                for s in state.settings.weight_sources().list_models()
                if s.card is not None and s.card.default and not s.installed
            ]
            return (
                f"{len(names) - len(unavailable)}/{len(names)} tools available"
                + (f" (unavailable: {', '.join(sorted(unavailable))})" if unavailable else "")
                + (
                    f"; not installed: {', '.join(missing)} (`mixpilot models pull NAME`; GET /api/v1/models)"
                    if missing
                    else "; neural models installed"
                )
            )

        return await run_in_threadpool(check)

    async def queue() -> str:
        return await state.runner.check()

    return {
        "database": await _timed(database),
        "cache": await _timed(cache),
        "storage": await _timed(storage),
        "models": await _timed(models),
        "queue": await _timed(queue),
    }
