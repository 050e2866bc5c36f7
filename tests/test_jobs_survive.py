"""Jobs that survive restarts and cancel at once (app.jobs: recovery, ProcessRunner, the arq worker).

Runner-level cases drive a real `ProcessRunner` (spawned children) whose service is `tests.jobfakes`
(turns that sleep, spin without progress, or crash), on SQLite and on PostgreSQL; the arq cases run
on PostgreSQL + Redis (a failure under CI=true when they are down: tests/services.py).
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

pytest.importorskip("fastapi")

from app.jobs import JobStore, LocalBus, ProcessRunner
from app.jobs.recovery import recover
from memory import db
from tests.apiclient import make_settings
from tests.jobfakes import fake_service
from tests.services import pg_url, redis_url  # noqa: F401  (fixtures)


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request, tmp_path):
    extra = {"database_url": request.getfixturevalue("pg_url")} if request.param == "postgres" else {}
    return make_settings(
        tmp_path / "data",
        job_threads=1,
        job_heartbeat_s=0.5,
        job_stale_s=5.0,
        job_retry_backoff_s=0.1,
        job_max_attempts=3,
        **extra,
    )


class Harness:
    """A database, a store and a bus on the running loop, and jobs created for one user."""

    def __init__(self, settings) -> None:
        self.settings = settings

    async def __aenter__(self) -> Harness:
        from app.runtime import open_database

        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.engine, self.sessions = await open_database(self.settings)
        self.store = JobStore(self.sessions)
        self.bus = LocalBus(asyncio.get_running_loop())
        self.owner = db.new_id()
        async with self.sessions() as s:
            await db.ensure_user(s, user_id=self.owner)
            await s.commit()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.engine.dispose()

    def runner(self, **kw) -> ProcessRunner:
        return ProcessRunner(
            self.settings,
            store=self.store,
            bus=self.bus,
            processes=self.settings.job_threads,
            nice=0,
            service_factory=fake_service,
            **kw,
        )

    async def job(self, request: str) -> str:
        async with self.sessions() as s:
            job = await db.create_job(s, owner_id=self.owner, request=request)
            job.heartbeat_at = db.utcnow()
            await s.commit()
            return job.id

    async def row(self, job_id: str) -> db.Job:
        async with self.sessions() as s:
            job = await db.get_job(s, owner_id=self.owner, job_id=job_id)
            assert job is not None
            return job

    async def wait(self, job_id: str, statuses: tuple[str, ...], timeout_s: float = 90.0) -> db.Job:
        deadline = time.monotonic() + timeout_s
        while True:
            job = await self.row(job_id)
            if job.status in statuses:
                return job
            assert time.monotonic() < deadline, f"job {job.request!r} still {job.status} ({job.message})"
            await asyncio.sleep(0.05)


async def _ready(runner: ProcessRunner, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while len(runner.ready) < runner.n:
        assert time.monotonic() < deadline, "job processes did not start"
        await asyncio.sleep(0.05)


def test_shutdown_hands_jobs_back_within_5s_and_the_next_start_runs_them(settings):
    async def scenario() -> None:
        async with Harness(settings) as h:
            runner = h.runner()
            await runner.start()
            await _ready(runner)
            stubborn = await h.job("spin 60")  # no progress events: its process must be killed
            queued = [await h.job("sleep 0.1") for _ in range(2)]
            for j in (stubborn, *queued):
                await runner.submit(j)
            await h.wait(stubborn, ("running",))
            t0 = time.monotonic()
            await runner.aclose()
            assert time.monotonic() - t0 < 5.0
            rows = [await h.row(j) for j in (stubborn, *queued)]
            assert [r.status for r in rows] == ["queued"] * 3, [(r.status, r.message) for r in rows]
            assert "handed back" in (rows[0].message or "")

            # the next start-up hands them out at once (the stubborn one becomes quick: same row, new request)
            async with h.sessions() as s:
                await db.update_job(s, owner_id=h.owner, job_id=stubborn, request="sleep 0.1")
                await s.commit()
            again = h.runner()
            await again.start()
            try:
                done = await recover(h.store, again, settings, startup=True)
                assert done["queued"] == 3
                for j in (stubborn, *queued):
                    job = await h.wait(j, ("succeeded", "failed", "cancelled"))
                    assert job.status == "succeeded", job.error
            finally:
                await again.aclose()

    asyncio.run(scenario())


def test_a_cooperative_job_hands_itself_back_at_shutdown(settings):
    async def scenario() -> None:
        async with Harness(settings) as h:
            runner = h.runner()
            await runner.start()
            await _ready(runner)
            j = await h.job("sleep 60")
            await runner.submit(j)
            await h.wait(j, ("running",))
            alive = [p for p in runner.procs if p is not None]
            t0 = time.monotonic()
            await runner.aclose()
            assert time.monotonic() - t0 < 5.0
            assert all(p.exitcode == 0 for p in alive)  # exited on its own, not killed
            row = await h.row(j)
            assert row.status == "queued" and row.attempts == 1

    asyncio.run(scenario())


def test_a_crashed_job_process_retries_the_job_then_fails_it_at_the_limit(settings, tmp_path):
    async def scenario() -> None:
        async with Harness(settings) as h:
            runner = h.runner()
            await runner.start()
            try:
                once = await h.job(f"crash-once {tmp_path / 'marker'}")
                await runner.submit(once)
                job = await h.wait(once, ("succeeded", "failed"), timeout_s=180)
                assert job.status == "succeeded" and job.attempts == 2  # retried by itself, no manual retry
                always = await h.job("crash")
                await runner.submit(always)
                job = await h.wait(always, ("succeeded", "failed"), timeout_s=300)
                assert job.status == "failed" and job.attempts == settings.job_max_attempts
                assert "stopped" in job.error and f"{settings.job_max_attempts} time(s)" in job.error
            finally:
                await runner.aclose()

    asyncio.run(scenario())


@pytest.mark.parametrize("request_text,killed", [("spin 60", True), ("sleep 60", False)])
def test_cancel_stops_the_work_within_2s(settings, request_text, killed):
    async def scenario() -> None:
        async with Harness(settings) as h:
            runner = h.runner()
            await runner.start()
            try:
                await _ready(runner)
                j = await h.job(request_text)
                await runner.submit(j)
                await h.wait(j, ("running",))
                while j not in runner.running.values():
                    await asyncio.sleep(0.02)
                proc = runner.procs[0]
                t0 = time.monotonic()
                # as the route does
                assert await h.store.write(j, status="cancelled", error="cancelled by request")
                runner.cancel(j)
                while time.monotonic() - t0 < 5:
                    if killed and not proc.is_alive():
                        break
                    if not killed and j not in runner.running.values():
                        break
                    await asyncio.sleep(0.02)
                took = time.monotonic() - t0
                assert took < 2.0, f"the work went on for {took:.1f} s after the cancel"
                assert proc.is_alive() is (not killed)
                assert (await h.row(j)).status == "cancelled"
                if killed:  # the killed process is replaced and runs the next job
                    nxt = await h.job("sleep 0.1")
                    await runner.submit(nxt)
                    assert (await h.wait(nxt, ("succeeded", "failed"), timeout_s=120)).status == "succeeded"
            finally:
                await runner.aclose()

    asyncio.run(scenario())


def test_recovery_retries_stale_running_jobs_with_backoff_then_fails(settings):
    async def scenario() -> None:
        async with Harness(settings) as h:
            from datetime import timedelta

            class Recorder:
                tracks_queued = True

                def __init__(self) -> None:
                    self.submitted: list[tuple[str, int, float]] = []

                async def submit(self, job_id: str, attempt: int = 0, delay_s: float = 0.0) -> None:
                    self.submitted.append((job_id, attempt, delay_s))

            rec = Recorder()
            ids = []
            for attempts in (1, 2, 3):
                j = await h.job("sleep 0.1")
                async with h.sessions() as s:
                    await db.update_job(
                        s,
                        owner_id=h.owner,
                        job_id=j,
                        status="running",
                        attempts=attempts,
                        heartbeat_at=db.utcnow() - timedelta(minutes=5),
                    )
                    await s.commit()
                ids.append(j)
            fresh = await h.job("sleep 0.1")  # queued, heartbeat fresh: left alone unless start-up
            mine = {*ids, fresh}  # (a shared Postgres database may hold other tests' jobs)
            await recover(h.store, rec, settings)
            assert sorted(x for x in rec.submitted if x[0] in mine) == sorted(
                [(ids[0], 1, 0.1), (ids[1], 2, 0.2)]
            )
            rows = [await h.row(j) for j in ids]
            assert [r.status for r in rows] == ["queued", "queued", "failed"]
            assert "run 2 of 3" in rows[0].message and "3 time(s)" in rows[2].error
            rec.submitted.clear()
            await recover(h.store, rec, settings)  # once only
            assert not [x for x in rec.submitted if x[0] in mine]
            await recover(h.store, rec, settings, startup=True)
            assert sorted(x for x in rec.submitted if x[0] in mine) == sorted(
                [(ids[0], 1, 0.0), (ids[1], 2, 0.0), (fresh, 0, 0.0)]
            )

    asyncio.run(scenario())


# ------------------------------------------------------------------ through the API


@pytest.fixture(params=["sqlite", "postgres"])
def api_settings(request, tmp_path):
    extra = {"database_url": request.getfixturevalue("pg_url")} if request.param == "postgres" else {}
    return make_settings(tmp_path / "data", job_runner="thread", max_queued_jobs=2, **extra)


def test_per_user_limit_on_queued_jobs(api_settings):
    from fastapi.testclient import TestClient

    from app.api.main import create_app
    from tests.apiclient import register, upload

    with TestClient(create_app(api_settings)) as api:
        h, other = register(api), register(api)
        f = upload(api, h)
        owner = api.get("/api/v1/auth/me", headers=h).json()["id"]
        state = api.app.state.mp

        async def park() -> None:  # two jobs queued in the database (no runner has them)
            async with state.sessions() as s:
                for _ in range(2):
                    await db.create_job(s, owner_id=owner, request="wait")
                await s.commit()

        api.portal.call(park)
        r = api.post("/api/v1/chat", json={"message": "master this", "file_ids": [f["id"]]}, headers=h)
        assert r.status_code == 429 and "limit is 2" in r.json()["detail"], r.text
        g = upload(api, other)
        r = api.post("/api/v1/chat", json={"message": "master this", "file_ids": [g["id"]]}, headers=other)
        assert r.status_code == 202  # another user's jobs are their own


# ------------------------------------------------------------------ arq workers (PostgreSQL + Redis)


def _worker_thread(settings, stop, errors, processes=False, box=None):
    import threading

    from app.jobs import make_worker

    def run() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            if processes:  # jobs in the worker's child processes, as `mixpilot worker` runs them
                worker = make_worker(settings, service_factory=fake_service, handle_signals=False)
            else:
                worker = make_worker(settings, service=fake_service(), handle_signals=False)
            if box is not None:
                box["worker"] = worker

            async def main() -> None:
                task = asyncio.create_task(worker.main())
                while not stop.is_set() and not task.done():
                    await asyncio.sleep(0.05)
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
                await worker.close()

            loop.run_until_complete(main())
        except Exception as exc:
            errors.append(exc)
        finally:
            loop.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_ready_needs_a_worker_and_a_stopping_worker_hands_its_job_on(tmp_path, pg_url, redis_url):  # noqa: F811
    import threading

    from fastapi.testclient import TestClient

    from app.api.main import create_app
    from tests.apiclient import register, upload, wait_job

    settings = make_settings(
        tmp_path / "data",
        database_url=pg_url,
        redis_url=redis_url,
        job_heartbeat_s=0.5,
        job_stale_s=5.0,
        job_queue=f"mixpilot:test:{uuid.uuid4().hex[:8]}",
    )
    with TestClient(create_app(settings)) as api:
        r = api.get("/ready")
        assert r.status_code == 503 and "no `mixpilot worker`" in r.json()["checks"]["queue"]["detail"], (
            r.text
        )
        stop1, errors = threading.Event(), []
        w1 = _worker_thread(settings, stop1, errors)
        deadline = time.monotonic() + 60
        while api.get("/ready").status_code != 200:
            assert time.monotonic() < deadline and not errors, errors
            time.sleep(0.1)
        assert "1 worker" in api.get("/ready").json()["checks"]["queue"]["detail"]

        h = register(api)
        f = upload(api, h)
        owner = api.get("/api/v1/auth/me", headers=h).json()["id"]
        state = api.app.state.mp

        async def make(request: str) -> str:
            async with state.sessions() as s:
                job = await db.create_job(s, owner_id=owner, request=request, audio_id=f["id"])
                await s.commit()
            await state.runner.submit(job.id)
            return job.id

        j = api.portal.call(make, "sleep 30")
        deadline = time.monotonic() + 60
        while api.get(f"/api/v1/jobs/{j}", headers=h).json()["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        t0 = time.monotonic()
        stop1.set()
        w1.join(10)
        assert time.monotonic() - t0 < 5.0 and not w1.is_alive()
        job = api.get(f"/api/v1/jobs/{j}", headers=h).json()
        assert job["status"] == "queued" and "handed back" in job["message"], job

        # a stale 'running' row (its worker was killed) is retried by the API's housekeeping without a hand
        async def killed(request: str) -> str:
            from datetime import timedelta

            async with state.sessions() as s:
                job = await db.create_job(s, owner_id=owner, request=request, audio_id=f["id"])
                job.status, job.attempts, job.heartbeat_at = "running", 1, db.utcnow() - timedelta(minutes=5)
                await s.commit()
                return job.id

        k = api.portal.call(killed, "sleep 0.1")

        async def shorten() -> None:
            async with state.sessions() as s:
                await db.update_job(s, owner_id=owner, job_id=j, request="sleep 0.1")
                await s.commit()

        api.portal.call(shorten)
        stop2 = threading.Event()
        w2 = _worker_thread(settings, stop2, errors)
        try:
            for jid, runs in ((j, 2), (k, 2)):
                job = wait_job(api, h, jid, timeout_s=90)
                assert job["status"] == "succeeded" and job["attempts"] == runs, job
        finally:
            stop2.set()
            w2.join(10)
        assert not errors, errors


def test_a_cancel_on_a_worker_stops_its_job_process_within_2s(tmp_path, pg_url, redis_url):  # noqa: F811
    import threading

    from fastapi.testclient import TestClient

    from app.api.main import create_app
    from tests.apiclient import register, upload

    settings = make_settings(
        tmp_path / "data",
        database_url=pg_url,
        redis_url=redis_url,
        job_threads=1,
        job_heartbeat_s=0.5,
        job_stale_s=5.0,
        job_queue=f"mixpilot:test:{uuid.uuid4().hex[:8]}",
    )
    with TestClient(create_app(settings)) as api:
        stop, errors, box = threading.Event(), [], {}
        w = _worker_thread(settings, stop, errors, processes=True, box=box)
        try:
            h = register(api)
            f = upload(api, h)
            owner = api.get("/api/v1/auth/me", headers=h).json()["id"]
            state = api.app.state.mp

            async def make(request: str) -> str:
                async with state.sessions() as s:
                    job = await db.create_job(s, owner_id=owner, request=request, audio_id=f["id"])
                    await s.commit()
                await state.runner.submit(job.id)
                return job.id

            j = api.portal.call(make, "spin 60")
            deadline = time.monotonic() + 120
            while api.get(f"/api/v1/jobs/{j}", headers=h).json()["status"] != "running":
                assert time.monotonic() < deadline and not errors, errors
                time.sleep(0.05)
            procs = box["worker"].ctx["procs"]
            child = procs.procs[0]
            t0 = time.monotonic()
            r = api.post(f"/api/v1/jobs/{j}/cancel", headers=h)
            assert r.status_code == 200 and r.json()["status"] == "cancelled"
            while child.is_alive() and time.monotonic() - t0 < 5:
                time.sleep(0.02)
            took = time.monotonic() - t0
            assert not child.is_alive() and took < 2.0, f"the job's process ran {took:.1f} s after the cancel"
            # the replaced process runs the next job
            k = api.portal.call(make, "sleep 0.1")
            deadline = time.monotonic() + 120
            while api.get(f"/api/v1/jobs/{k}", headers=h).json()["status"] != "succeeded":
                assert time.monotonic() < deadline and not errors, errors
                time.sleep(0.1)
        finally:
            stop.set()
            w.join(15)
        assert not errors, errors
        assert not w.is_alive()


def test_job_processes_killed_mid_event_stream_leave_the_runner_working(settings):
    """A child killed while it writes a progress event (SIGKILL: OOM killer, a cancel that did not stop)
    must not take the other children's channels with it: its replacement says it is ready, the next job
    runs, and that job's progress still reaches the bus. (With one event queue shared by every child, a
    child killed mid-write held the queue's lock forever: no child was ever ready again.)"""
    import os
    import signal

    async def scenario() -> None:
        async with Harness(settings) as h:
            runner = h.runner()
            await runner.start()
            try:
                await _ready(runner, timeout_s=180)
                for _ in range(4):
                    j = await h.job("chatter 60")
                    await runner.submit(j)
                    deadline = time.monotonic() + 120
                    while j not in runner.running.values():
                        assert time.monotonic() < deadline, "no job process picked the job up"
                        await asyncio.sleep(0.02)
                    await asyncio.sleep(0.3)  # events flow back to back now
                    i = next(k for k, v in runner.running.items() if v == j)
                    pid = runner.procs[i].pid
                    os.kill(pid, signal.SIGKILL)
                    assert await h.store.write(j, status="cancelled", error="cancelled by the test")
                    while runner.procs[i].pid == pid or i not in runner.ready:  # replaced, and ready
                        assert time.monotonic() < deadline + 180, "the killed job process was not replaced"
                        await asyncio.sleep(0.02)
                nxt = await h.job("sleep 0.5")
                seen: list[dict] = []

                async def listen() -> None:
                    async for batch in h.bus.subscribe(nxt, wait_s=0.2):
                        seen.extend(batch)
                        if any(e.get("event") == "end" for e in batch):
                            return

                listener = asyncio.create_task(listen())
                await asyncio.sleep(0.05)
                await runner.submit(nxt)
                assert (await h.wait(nxt, ("succeeded", "failed"), timeout_s=120)).status == "succeeded"
                await asyncio.wait_for(listener, 30)
                assert any(e.get("event") == "step_progress" for e in seen), seen
            finally:
                await runner.aclose()

    asyncio.run(scenario())
