"""Jobs on Redis (arq): `ArqRunner` (the API enqueues) and `make_worker` (`mixpilot worker` runs them).

Any number of workers on any machines that share the database, Redis and the data dir. Each
worker builds its own service, engine and event bus at start-up (`startup`), runs each job with
the same `JobExecutor` as the in-process runners (in a low-priority thread: the graph is sync),
and at start-up fails jobs whose worker died (`JobStore.sweep_stale`). arq's own retries are
off: a failed job is retried explicitly (``POST /api/v1/jobs/{id}/retry``), and a job
re-delivered after a crash is skipped because only ``queued`` jobs are claimed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
from typing import TYPE_CHECKING, Any

from app.settings import Settings

if TYPE_CHECKING:
    from arq.connections import RedisSettings
    from arq.worker import Worker

log = logging.getLogger("mixpilot.worker")


def redis_url_of(settings: Settings) -> str:
    """``MIXPILOT_REDIS_URL``, which arq needs."""
    if not settings.redis_url:
        raise ValueError(
            "mixpilot worker needs Redis: set MIXPILOT_REDIS_URL (e.g. redis://127.0.0.1:6379/0)"
        )
    return settings.redis_url


def redis_settings(url: str) -> RedisSettings:
    from arq.connections import RedisSettings

    return RedisSettings.from_dsn(url)


class ArqRunner:
    """A `Runner` that only enqueues (``run_job`` on `queue_name`); `mixpilot worker` processes run the jobs."""

    #: queued jobs wait in Redis, not here
    tracks_queued = False

    def __init__(self, redis_url: str, *, queue_name: str | None = None) -> None:
        self.redis_url, self.queue_name = redis_url, queue_name
        self.pool: Any = None

    async def start(self) -> None:
        from arq import create_pool

        self.pool = await create_pool(redis_settings(self.redis_url))

    async def submit(self, job_id: str, attempt: int = 0) -> None:
        if self.pool is None:
            await self.start()
        kwargs = {"_queue_name": self.queue_name} if self.queue_name else {}
        await self.pool.enqueue_job("run_job", job_id, _job_id=f"{job_id}:{attempt}", **kwargs)

    async def heartbeat_queued(self) -> None:
        pass

    def cancel(self, job_id: str) -> None:
        pass  # the worker's heartbeat sees status 'cancelled' in the database

    async def check(self) -> str:
        if self.pool is None:
            await self.start()
        await self.pool.ping()
        return "arq (Redis)"

    async def aclose(self) -> None:
        if self.pool is not None:
            await self.pool.aclose()


# ------------------------------------------------------------------------------ the worker side


async def startup(ctx: dict[str, Any]) -> None:
    from app.jobs.bus import RedisBus
    from app.jobs.executor import JobExecutor
    from app.jobs.priority import lower_cpu_priority
    from app.jobs.store import JobStore
    from app.runtime import open_database, open_service

    settings: Settings = ctx["settings"]
    loop = asyncio.get_running_loop()
    engine, sessions = await open_database(settings)
    service = ctx.get("service") or await loop.run_in_executor(None, open_service, settings)
    bus = RedisBus(redis_url_of(settings))
    store = JobStore(sessions)
    # the worker's event loop (heartbeats, Redis) keeps normal priority; its job threads get SCHED_BATCH + nice
    threads = concurrent.futures.ThreadPoolExecutor(
        settings.job_threads,
        thread_name_prefix="mixpilot-job",
        initializer=functools.partial(
            lower_cpu_priority, settings.job_nice, policy="batch", whole_process=False
        ),
    )
    ctx.update(
        engine=engine,
        sessions=sessions,
        service=service,
        bus=bus,
        threads=threads,
        executor=JobExecutor(
            service=service, store=store, loop=loop, bus=bus, heartbeat_s=settings.job_heartbeat_s
        ),
    )
    await store.sweep_stale(stale_s=settings.job_stale_s)


async def shutdown(ctx: dict[str, Any]) -> None:
    if "threads" in ctx:
        ctx["threads"].shutdown(wait=True)
    if "bus" in ctx:
        await ctx["bus"].aclose()
    if "engine" in ctx:
        await ctx["engine"].dispose()
    if ctx.get("own_service", True) and "service" in ctx:
        ctx["service"].close()


async def run_job(ctx: dict[str, Any], job_id: str) -> str | None:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(ctx["threads"], ctx["executor"].run, job_id)


def make_worker(
    settings: Settings,
    *,
    burst: bool = False,
    service: Any = None,
    handle_signals: bool = True,
    **overrides: Any,
) -> Worker:
    """An arq `Worker` for `settings` (Redis required); `service` reuses an existing one (tests)."""
    from arq.worker import Worker, func

    url = redis_url_of(settings)
    ctx: dict[str, Any] = {"settings": settings}
    if service is not None:
        ctx.update(service=service, own_service=False)
    return Worker(
        functions=[func(run_job, name="run_job", timeout=settings.job_timeout_s, max_tries=1)],
        queue_name=settings.job_queue,
        redis_settings=redis_settings(url),
        on_startup=startup,
        on_shutdown=shutdown,
        ctx=ctx,
        burst=burst,
        max_jobs=settings.job_threads,
        keep_result=3600,
        handle_signals=handle_signals,
        retry_jobs=False,
        poll_delay=0.2,
        **overrides,
    )
