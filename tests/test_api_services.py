"""The API on Postgres + Redis with an arq worker: the API only enqueues, the worker runs the job.

Skipped when Postgres/Redis are not reachable; a failure under CI=true (tests/services.py).
"""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest

pytest.importorskip("arq")
pytest.importorskip("fastapi")

from fastapi.testclient import TestClient

from app.api.main import create_app
from tests.apiclient import follow_events, make_settings, register, upload
from tests.services import pg_url, redis_url  # noqa: F401 - (fixtures)


def _run_worker(settings, service, stop: threading.Event, errors: list) -> None:
    from app.jobs import make_worker

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        worker = make_worker(settings, burst=False, service=service, handle_signals=False)

        async def main() -> None:
            task = asyncio.create_task(worker.main())
            while not stop.is_set() and not task.done():
                await asyncio.sleep(0.1)
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
            await worker.close()

        loop.run_until_complete(main())
    except Exception as exc:  # reported by the test
        errors.append(exc)
    finally:
        loop.close()


def test_flow_on_postgres_and_redis_with_an_arq_worker(tmp_path, pg_url, redis_url):  # noqa: F811
    settings = make_settings(
        tmp_path / "data",
        database_url=pg_url,
        redis_url=redis_url,
        job_queue=f"mixpilot:test:{uuid.uuid4().hex[:8]}",
    )
    app = create_app(settings)
    with TestClient(app) as api:
        state = api.app.state.mp
        assert type(state.runner).__name__ == "ArqRunner" and type(state.bus).__name__ == "RedisBus"
        ready = api.get("/ready").json()
        assert ready["checks"]["database"]["detail"] == "postgresql"
        assert not ready["checks"]["queue"]["ok"]  # no worker yet: nothing would run the jobs
        assert ready["checks"]["cache"]["detail"] == "RedisCache"

        h = register(api)
        f = upload(api, h)
        r = api.post(
            "/api/v1/chat", json={"message": "master this for Spotify", "file_ids": [f["id"]]}, headers=h
        )
        assert r.status_code == 202
        job_id = r.json()["job_id"]
        # nothing runs in the API process: the job waits for a worker
        assert api.get(f"/api/v1/jobs/{job_id}", headers=h).json()["status"] == "queued"

        stop, errors = threading.Event(), []
        worker = threading.Thread(
            target=_run_worker, args=(settings, state.service, stop, errors), daemon=True
        )
        worker.start()
        try:
            events = follow_events(api, h, job_id, timeout_s=120)
        finally:
            stop.set()
            worker.join(30)
        assert not errors, errors
        names = [n for n, _ in events]
        assert "plan" in names and "step_finished" in names  # progress came across Redis
        assert events[-1] == ("end", {"status": "succeeded"})
        job = api.get(f"/api/v1/jobs/{job_id}", headers=h).json()
        assert job["status"] == "succeeded" and job["attempts"] == 1
        out = job["result"]["file_id"]
        assert job["result"]["metrics"]["after"]["integrated_lufs"] == pytest.approx(-14.0, abs=1.0)
        r = api.get(f"/api/v1/files/{out}/download", params={"format": "flac"}, headers=h)
        assert r.status_code == 200 and r.content[:4] == b"fLaC"
        r = api.post("/api/v1/feedback", json={"job_id": job_id, "rating": 4}, headers=h)
        assert r.status_code == 201, r.text

        b = register(api)
        assert api.get(f"/api/v1/jobs/{job_id}", headers=b).status_code == 404
        assert api.get(f"/api/v1/files/{out}/download", headers=b).status_code == 404
