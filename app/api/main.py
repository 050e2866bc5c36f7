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
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from starlette.types import ASGIApp

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

Every error is `application/problem+json` (RFC 9457) with a stable `code` and the `request_id` that is
also in the `X-Request-ID` header; every `/api/v1` response carries `RateLimit-*` headers (429 with
`Retry-After` over the limit).
"""


class MixpilotAPI(FastAPI):
    """FastAPI with CORS (when ``cors_options`` is set) outside everything, Starlette's own error layer too.

    Starlette answers an unexpected error (the 500 problem of `problems.install`) from its outermost
    middleware, ServerErrorMiddleware, past every middleware `add_middleware` adds: CORS added that way
    never sees those answers, and a browser app cannot read them. Here CORS wraps the whole stack."""

    cors_options: dict[str, Any] | None = None

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        if not self.cors_options:
            return stack
        from starlette.middleware.cors import CORSMiddleware

        return CORSMiddleware(stack, **self.cors_options)


def build_router() -> APIRouter:
    from app.api.problems import Problem
    from app.api.ratelimit import enforce
    from app.api.routes import (
        auth,
        chat,
        enhancement,
        feedback,
        files,
        jobs,
        keys,
        models,
        preview,
        recommendations,
        threads,
        webhooks,
    )
    from app.api.schemas import Responses

    common: Responses = {
        400: {"model": Problem, "description": "malformed request body (not JSON)"},
        422: {"model": Problem, "description": "invalid request or unusable input"},
        401: {"model": Problem, "description": "missing, expired, forged or wrong-type token"},
        413: {"model": Problem, "description": "request body over the limit"},
        429: {"model": Problem, "description": "over a rate limit (`Retry-After`) or a quota"},
    }
    api = APIRouter(prefix=API_PREFIX, dependencies=[Depends(enforce)])
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
        keys,
        preview,
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
    from app.api import problems
    from app.api.files import BodyLimit
    from app.api.ratelimit import HEADERS as RATE_LIMIT_HEADERS
    from app.api.ratelimit import make_limiter
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
        app.state.limiter = make_limiter(settings)  # app.api.ratelimit.enforce counts through it

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
    app = MixpilotAPI(
        title="mixpilot API",
        version=_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served from the package by `offline_docs` (no CDN)
        redoc_url=None,
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
                "webhooks",
                "health",
            )
        ],
    )
    app.include_router(health.router)
    app.include_router(build_router())
    if not production:
        offline_docs(app)
    app.add_middleware(BodyLimit, upload_limit=settings.max_upload_bytes, upload_path=f"{API_PREFIX}/files")
    problems.install(app)  # after BodyLimit: its early 413 becomes a problem too
    if settings.cors_origins:  # outermost: every answer, 500s included, carries the CORS headers
        from app.api.security import cors_options

        app.cors_options = cors_options(settings)
    problems.document(app, api_prefix=API_PREFIX, rate_limit_headers=RATE_LIMIT_HEADERS)
    return app


def offline_docs(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` with their scripts and styles served from the installed
    ``fastapi-offline`` package under ``/docs/assets``: the pages work without the internet."""
    from pathlib import Path

    import fastapi_offline
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles

    assets = "/docs/assets"
    app.mount(
        assets, StaticFiles(directory=Path(fastapi_offline.__file__).parent / "static"), name="docs-assets"
    )
    openapi_url = app.openapi_url or "/openapi.json"
    title = app.title

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} - Swagger UI",
            oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon.png",
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{title} - ReDoc",
            redoc_js_url=f"{assets}/redoc.standalone.js",
            redoc_favicon_url=f"{assets}/favicon.png",
            with_google_fonts=False,
        )


def _version() -> str:
    from app.cli import _version as v

    return v()
