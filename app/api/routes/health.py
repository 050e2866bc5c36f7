from __future__ import annotations

import functools

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from app.api import health as svc
from app.api.deps import StateDep
from app.api.schemas import HealthOut, ReadyOut

router = APIRouter(tags=["health"])


@functools.cache
def _version() -> str:  # read once: the package metadata lookup costs more than the rest of the request
    from app.cli import _version as v

    return v()


@router.get("/health", operation_id="health", response_model=HealthOut)
async def health(state: StateDep) -> HealthOut:
    """Liveness: the process answers; which neural models are installed (a few file look-ups)."""
    models = await run_in_threadpool(
        lambda: {s.name: s.installed for s in state.settings.weight_sources().list_models()}
    )
    return HealthOut(version=_version(), models=models)


@router.get(
    "/ready",
    operation_id="ready",
    response_model=ReadyOut,
    responses={503: {"model": ReadyOut, "description": "not ready"}},
)
async def ready(state: StateDep):
    """Readiness: database, cache, storage, models, job queue."""
    checks = await svc.readiness(state)
    ok = all(c["ok"] for name, c in checks.items() if name != "cache")  # no cache = slower, not down
    body = ReadyOut(status="ready" if ok else "not ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
