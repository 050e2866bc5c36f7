"""arq workers (`mixpilot worker`): run the jobs the API enqueues when ``MIXPILOT_REDIS_URL`` is set.

Any number of workers on any machines that share the database, Redis and the data dir.
Each worker builds its own service, engine and event bus at start-up (`startup`), runs each
job with the same `JobExecutor` as the in-process runner (in a thread: the graph is sync),
and at start-up fails jobs whose worker died (`sweep_stale`). arq's own retries are off:
a failed job is retried explicitly (``POST /api/v1/jobs/{id}/retry``), and a job re-delivered
after a crash is skipped because only ``queued`` jobs are claimed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from typing import Any

from app.settings import Settings

log = logging.getLogger("mixpilot.worker")


def redis_settings(url: str):
    from arq.connections import RedisSettings

    return RedisSettings.from_dsn(url)


async def startup(ctx: dict[str, Any]) -> None:
    from app.api.jobs import JobExecutor, RedisBus, lower_priority, sweep_stale
    from app.api.state import open_database
    from app.runtime import open_service

    settings: Settings = ctx["settings"]
    loop = asyncio.get_running_loop()
    engine, sessions = await open_database(settings)
    service = ctx.get("service") or await loop.run_in_executor(None, open_service, settings)
    bus = RedisBus(settings.redis_url)
    ctx.update(engine=engine, sessions=sessions, service=service, bus=bus,
               threads=concurrent.futures.ThreadPoolExecutor(settings.job_threads, thread_name_prefix="mixpilot-job",
                                                          initializer=lower_priority, initargs=(settings.job_nice,)),
               executor=JobExecutor(service=service, sessions=sessions, loop=loop, bus=bus,
                                    heartbeat_s=settings.job_heartbeat_s))
    await sweep_stale(sessions, stale_s=settings.job_stale_s)


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


def make_worker(settings: Settings, *, burst: bool = False, service: Any = None, handle_signals: bool = True,
                **overrides: Any):
    """An arq `Worker` for `settings` (Redis required); `service` reuses an existing one (tests)."""
    from arq.worker import Worker, func

    if not settings.redis_url:
        raise ValueError("mixpilot worker needs Redis: set MIXPILOT_REDIS_URL (e.g. redis://127.0.0.1:6379/0)")
    ctx: dict[str, Any] = {"settings": settings}
    if service is not None:
        ctx.update(service=service, own_service=False)
    return Worker(
        functions=[func(run_job, name="run_job", timeout=settings.job_timeout_s, max_tries=1)],
        queue_name=settings.job_queue, redis_settings=redis_settings(settings.redis_url),
        on_startup=startup, on_shutdown=shutdown, ctx=ctx, burst=burst, max_jobs=settings.job_threads,
        keep_result=3600, handle_signals=handle_signals, retry_jobs=False, poll_delay=0.2, **overrides)
