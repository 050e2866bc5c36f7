"""`create_app(settings)`: the FastAPI application. Nothing is built at import.

The lifespan builds everything once (database engine, service with cache and memory, job
runner, event bus) into an `AppState` on ``app.state.mp`` and closes it at shutdown. In
production a missing or weak ``MIXPILOT_JWT_SECRET`` stops `create_app` before anything starts.

Jobs (`app.jobs`, `make_runner`) run locally by default, in niced child processes of the API
(threads when ``MIXPILOT_JOB_RUNNER=thread`` or a `service` object is injected); with
``MIXPILOT_REDIS_URL`` they are enqueued for `mixpilot worker` (arq) — set ``in_process_jobs=True``
to run them locally.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from app.settings import Settings

log = logging.getLogger("mixpilot.api")
API_PREFIX = "/api/v1"

DESCRIPTION = """
Conversational audio production over HTTP.

1. `POST /api/v1/auth/register`, then `POST /api/v1/auth/token` (OAuth2 password form) → bearer tokens.
2. `POST /api/v1/files` (multipart `file`) → a file id.
3. `POST /api/v1/chat` `{"message": "master this for Spotify", "file_ids": [id]}` → 202 `{job_id, thread_id}`.
4. Follow `GET /api/v1/jobs/{job_id}/events` (Server-Sent Events) or poll `GET /api/v1/jobs/{job_id}`.
5. `GET /api/v1/files/{result.file_id}/download?format=flac`, then `POST /api/v1/feedback`.

Every resource belongs to one user: another user's id answers 404.
"""


def build_router() -> APIRouter:
    from app.api.routes import (
        auth,
        chat,
        enhancement,
        feedback,
        files,
        jobs,
        models,
        recommendations,
        threads,
        webhooks,
    )
    from app.api.schemas import Message, Responses, ValidationMessage

    common: Responses = {
        400: {"model": Message, "description": "malformed request body"},
        422: {"model": ValidationMessage, "description": "invalid request or unusable input"},
        401: {"model": Message, "description": "missing, expired, forged or wrong-type token"},
        413: {"model": Message, "description": "request body over the limit"},
    }
    api = APIRouter(prefix=API_PREFIX)
    for module in (
        auth,
        files,
        chat,
        jobs,
        threads,
        feedback,
        recommendations,
        enhancement,
        models,
        webhooks,
    ):
        api.include_router(module.router, responses=common)
    return api


def create_app(
    settings: Settings | None = None,
    *,
    service: Any = None,
    in_process_jobs: bool | None = None,
    sweep_every_s: float | None = None,
    freeze_gc: bool = False,
) -> FastAPI:
    """The app for `settings`; `service` reuses an existing `Mixpilot` (tests, the UI), not closed here.

    `freeze_gc` (`mixpilot serve`): once started, move every object alive to the collector's
    permanent generation (`gc.freeze`). They live as long as the process anyway (modules, models,
    the service), and a full collection walking them stops the request loop for ~100 ms: the
    slowest reads under load. Undone at shutdown.
    """
    from app.api.files import BodyLimit
    from app.api.routes import health
    from app.api.state import token_config

    settings = settings or Settings()
    tokens = token_config(settings)  # raises in production without a strong secret
    in_process = bool(in_process_jobs)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        from app.api.reads import Reads
        from app.api.security import login_throttle
        from app.api.state import AppState
        from app.jobs import JobStore, make_bus, make_runner, periodic
        from app.runtime import database_url, open_database

        loop = asyncio.get_running_loop()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine, sessions = await open_database(settings)
        own_service = service is None
        if own_service:
            from app.runtime import open_service

            svc = await loop.run_in_executor(None, open_service, settings)
        else:
            svc = service
        store = JobStore(sessions)
        bus = make_bus(settings, loop=loop, in_process=in_process)
        # threads are the only way to run jobs on an injected service object
        runner = make_runner(
            settings,
            store=store,
            bus=bus,
            service=svc,
            loop=loop,
            in_process=in_process,
            injected_service=not own_service,
        )
        await runner.start()
        from app.jobs.recovery import recover, startup_stale_s

        # jobs a previous run left: queued ones handed out at once; running ones (their process is gone) once
        # they missed two heartbeats
        await recover(store, runner, settings, startup=True, stale_s=startup_stale_s(settings), bus=bus)
        reads = Reads(database_url(settings), sessions)
        state = AppState(
            settings=settings,
            service=svc,
            engine=engine,
            sessions=sessions,
            tokens=tokens,
            throttle=login_throttle(settings),
            runner=runner,
            bus=bus,
            reads=reads,
            decode_slots=asyncio.Semaphore(settings.decode_slots),
        )
        app.state.mp = state

        async def housekeeping() -> None:
            await runner.heartbeat_queued()
            await recover(store, runner, settings, bus=bus)

        async def after_startup() -> None:
            await asyncio.sleep(startup_stale_s(settings))
            await recover(store, runner, settings, stale_s=startup_stale_s(settings), bus=bus)

        every = sweep_every_s or min(settings.job_heartbeat_s, settings.job_stale_s / 3)
        task = asyncio.create_task(periodic(housekeeping, every))
        second = asyncio.create_task(after_startup())
        from app.api.webhooks import deliver_due

        callbacks = asyncio.create_task(periodic(lambda: deliver_due(state), 1.0))
        if freeze_gc:
            import gc

            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if freeze_gc:
                gc.unfreeze()
            for t in (task, second, callbacks):
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            await runner.aclose()
            await bus.aclose()
            await reads.aclose()
            await engine.dispose()
            if own_service:
                svc.close()

    production = settings.environment == "production"
    app = FastAPI(
        title="mixpilot API",
        version=_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None if production else "/docs",
        redoc_url=None if production else "/redoc",
        openapi_tags=[
            {"name": n}
            for n in (
                "auth",
                "files",
                "chat",
                "jobs",
                "threads",
                "feedback",
                "recommendations",
                "enhancement",
                "health",
            )
        ],
    )
    app.include_router(health.router)
    app.include_router(build_router())
    app.add_middleware(BodyLimit, upload_limit=settings.max_upload_bytes, upload_path=f"{API_PREFIX}/files")

    from fastapi.exceptions import RequestValidationError

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [str(x) for x in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        detail = f"{'.'.join(first['loc'])}: {first['msg']}".lstrip(": ")
        if len(errors) > 1:
            detail += f" (and {len(errors) - 1} more)"
        return JSONResponse({"detail": detail[:500], "errors": errors[:20]}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        """Last resort, in every environment: the body names a request id, never the error (it may quote SQL,
        parameters or paths); the log has the traceback under that id."""
        request_id = uuid.uuid4().hex
        log.error(
            "unhandled error %s on %s %s",
            request_id,
            request.method,
            request.url.path,
            exc_info=(type(exc), exc, exc.__traceback__),
        )
        return JSONResponse(
            {
                "detail": f"internal error (request id {request_id}): the server log has the details",
                "request_id": request_id,
            },
            status_code=500,
            headers={"X-Request-ID": request_id},
        )

    return app


def _version() -> str:
    from app.cli import _version as v

    return v()
