from __future__ import annotations

import functools

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from app.api import health as svc
from app.api.deps import StateDep
from app.api.problems import Problem, problem_response
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
    responses={503: {"model": Problem, "description": "not ready: `checks` says which check failed"}},
)
async def ready(state: StateDep, request: Request):
    """Readiness: database, cache, storage, models, job queue. Not ready: a 503 problem
    (`code: not_ready`) whose `checks` field has the same checks."""
    checks = await svc.readiness(state)
    failed = [name for name, c in checks.items() if name != "cache" and not c["ok"]]  # no cache = slower
    if failed:
        return problem_response(
            request, 503, f"not ready: {', '.join(failed)} failing", code="not_ready", checks=checks
        )
    return JSONResponse(ReadyOut(status="ready", checks=checks).model_dump())
