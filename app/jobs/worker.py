"""Jobs on Redis (arq): `ArqRunner` (the API enqueues) and `make_worker` (`mixpilot worker` runs them).

Any number of workers on any machines that share the database, Redis and the data dir. Each
worker builds its own service, engine and event bus at start-up (`startup`), runs each job with
the same `JobExecutor` as the in-process runners, in niced child processes (a `ProcessRunner`:
a cancelled job still running after a second has its process killed and replaced; a crashed
child's job is retried) — or, when a service object is injected (tests), in low-priority threads.

- Liveness: each worker keeps a key ``mixpilot:worker:{queue}:{id}`` alive (expiring after three
  heartbeats); `ArqRunner.check` (``/ready``) is not ready while no worker holds one.
- Recovery (`app.jobs.recovery.recover`, at start-up and every heartbeat): jobs interrupted by a
  worker's death are queued again after a backoff, up to ``job_max_attempts`` runs. arq's own
  retries are off; a job re-delivered after a crash is skipped because only ``queued`` jobs are
  claimed.
- Shutdown (SIGTERM): running jobs are handed back to the queue (cooperatively within
  ``HANDBACK_S``, else their rows are handed back and the jobs re-enqueued), so another worker
  runs them at once; `mixpilot worker` then exits without waiting for stuck job threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import uuid
from typing import TYPE_CHECKING, Any

from app.settings import Settings

if TYPE_CHECKING:
    from arq.connections import RedisSettings
    from arq.worker import Worker

log = logging.getLogger("mixpilot.worker")
#: how long a stopping worker waits for its running jobs to hand themselves back
HANDBACK_S = 2.5
#: how often a worker looks for cancels of the jobs its processes run
CANCEL_POLL_S = 0.5
WORKER_KEY = "mixpilot:worker:"


def worker_key_prefix(queue_name: str | None) -> str:
    return f"{WORKER_KEY}{queue_name or 'arq:queue'}:"


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

    async def submit(self, job_id: str, attempt: int = 0, delay_s: float = 0.0) -> None:
        if self.pool is None:
            await self.start()
        kwargs: dict[str, Any] = {"_queue_name": self.queue_name} if self.queue_name else {}
        if delay_s > 0:
            kwargs["_defer_by"] = delay_s
        # a fresh delivery id each time: arq drops a job id it still remembers (results are kept an hour),
        # and a second delivery of one job is harmless (only a queued job is claimed)
        delivery = f"{job_id}:{attempt}:{uuid.uuid4().hex[:8]}"
        await self.pool.enqueue_job("run_job", job_id, _job_id=delivery, **kwargs)

    async def heartbeat_queued(self) -> None:
        pass

    def cancel(self, job_id: str) -> None:
        pass  # the worker's heartbeat sees status 'cancelled' in the database

    async def workers(self) -> int:
        """How many `mixpilot worker` processes serve this queue now (their liveness keys)."""
        if self.pool is None:
            await self.start()
        n = 0
        async for _key in self.pool.scan_iter(match=worker_key_prefix(self.queue_name) + "*", count=100):
            n += 1
        return n

    async def check(self) -> str:
        if self.pool is None:
            await self.start()
        await self.pool.ping()
        n = await self.workers()
        if n == 0:
            raise RuntimeError(
                f"no `mixpilot worker` is serving queue {self.queue_name or 'arq:queue'}: jobs would wait forever"
            )
        return f"arq (Redis, {n} worker{'s' if n != 1 else ''})"

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
    bus = RedisBus(redis_url_of(settings))
    store = JobStore(sessions)
    runner = ArqRunner(redis_url_of(settings), queue_name=settings.job_queue)
    await runner.start()
    ctx.update(engine=engine, sessions=sessions, bus=bus, store=store, runner=runner)
    if ctx.get("service") is None:  # jobs in child processes: each builds its own service
        from app.jobs.processes import ProcessRunner

        procs = ProcessRunner(
            settings,
            store=store,
            bus=bus,
            processes=settings.job_threads,
            nice=settings.job_nice,
            service_factory=ctx.get("service_factory"),
        )
        await procs.start()
        ctx["procs"] = procs
        ctx["own_service"] = False
        ctx["housekeeping"] = asyncio.create_task(_housekeeping(ctx))
        return
    service = ctx["service"] or await loop.run_in_executor(None, open_service, settings)
    # the worker's event loop (heartbeats, Redis) keeps normal priority; its job threads get SCHED_BATCH + nice
    threads = concurrent.futures.ThreadPoolExecutor(
        settings.job_threads,
        thread_name_prefix="mixpilot-job",
        initializer=functools.partial(
            lower_cpu_priority, settings.job_nice, policy="batch", whole_process=False
        ),
    )
    ctx.update(
        service=service,
        threads=threads,
        executor=JobExecutor(
            service=service,
            store=store,
            loop=loop,
            bus=bus,
            heartbeat_s=settings.job_heartbeat_s,
            quota_bytes=int(settings.user_quota_bytes),
        ),
    )
    ctx["housekeeping"] = asyncio.create_task(_housekeeping(ctx))


async def _housekeeping(ctx: dict[str, Any]) -> None:
    """Keep this worker's liveness key and recover interrupted jobs (at once, then every heartbeat); pass
    cancels made in the database on to the job processes (every `CANCEL_POLL_S`)."""
    from app.jobs.recovery import recover, startup_stale_s

    settings: Settings = ctx["settings"]
    key = worker_key_prefix(settings.job_queue) + uuid.uuid4().hex
    ttl = max(int(3 * settings.job_heartbeat_s) + 1, 3)
    first, last = True, 0.0
    loop = asyncio.get_running_loop()
    sent: set[str] = set()
    while True:
        try:
            if first or loop.time() - last >= settings.job_heartbeat_s:
                last = loop.time()
                await ctx["runner"].pool.set(key, b"1", ex=ttl)
                stale = startup_stale_s(settings) if first else None
                await recover(
                    ctx["store"], ctx["runner"], settings, startup=first, stale_s=stale, bus=ctx["bus"]
                )
                first = False
            if "procs" in ctx:  # a cancel made in the database: the child is told, and killed if it goes on
                procs = ctx["procs"]
                running = list(procs.running.values())
                sent &= set(running)
                for job_id in await ctx["store"].cancelled(running):
                    if job_id not in sent:
                        sent.add(job_id)
                        procs.cancel(job_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("worker housekeeping failed (%s)", exc)
        try:
            await asyncio.sleep(CANCEL_POLL_S)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await ctx["runner"].pool.delete(key)
            raise


async def shutdown(ctx: dict[str, Any]) -> None:
    if "housekeeping" in ctx:
        ctx["housekeeping"].cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await ctx["housekeeping"]
    if "executor" in ctx:
        await handback(ctx)
    if "procs" in ctx:
        procs = ctx["procs"]
        mine = {*procs.running.values(), *procs.queued()}
        await procs.aclose()  # running jobs handed back (cooperatively, else their child is killed)
        for job_id in mine:  # queued again in the database: enqueue them for the other workers
            if await ctx["store"].status(job_id) == "queued":
                await ctx["runner"].submit(job_id)
    if "threads" in ctx:
        ctx["threads"].shutdown(wait=False, cancel_futures=True)
    if "runner" in ctx:
        await ctx["runner"].aclose()
    if "bus" in ctx:
        await ctx["bus"].aclose()
    if "engine" in ctx:
        await ctx["engine"].dispose()
    if ctx.get("own_service", True) and "service" in ctx:
        ctx["service"].close()


async def handback(ctx: dict[str, Any]) -> None:
    """Hand this worker's running jobs back to the queue: cooperatively within `HANDBACK_S`; a job still
    running then has its row handed back and is enqueued again (another worker runs it at once)."""
    executor = ctx["executor"]
    asked = executor.handback()
    deadline = asyncio.get_running_loop().time() + HANDBACK_S
    while executor.running and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    for job_id, attempt in asked.items():
        if job_id in executor.running and await ctx["store"].handback(
            job_id, attempt=attempt, message="handed back (its worker stopped)"
        ):
            await ctx["runner"].submit(job_id, attempt)
    for job_id, attempt in asked.items():
        if job_id not in executor.running and await ctx["store"].status(job_id) == "queued":
            await ctx["runner"].submit(job_id, attempt)  # handed itself back: enqueue it for another worker


async def run_job(ctx: dict[str, Any], job_id: str) -> str | None:
    if "procs" in ctx:
        return await ctx["procs"].run(job_id)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(ctx["threads"], ctx["executor"].run, job_id)


def make_worker(
    settings: Settings,
    *,
    burst: bool = False,
    service: Any = None,
    service_factory: Any = None,
    handle_signals: bool = True,
    **overrides: Any,
) -> Worker:
    """An arq `Worker` for `settings` (Redis required). Jobs run in `settings.job_threads` child processes,
    each building its service with `service_factory(settings)` (default `app.runtime.open_service`); a
    `service` object instead runs them in threads of this process on that service (tests)."""
    from arq.worker import Worker, func

    url = redis_url_of(settings)
    ctx: dict[str, Any] = {"settings": settings, "service_factory": service_factory}
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
