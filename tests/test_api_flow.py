"""HTTP API with httpx (FastAPI TestClient) against the real app: flow, isolation, tokens, uploads."""

from __future__ import annotations

import io
import os
import uuid
from datetime import timedelta

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("fastapi")
pytest.importorskip("jwt")

from fastapi.testclient import TestClient

from app.api.main import create_app
from app.api.security import TokenConfig, create_token
from tests.apiclient import (
    PASSWORD,
    SONG,
    follow_events,
    make_settings,
    register,
    stored_files,
    upload,
    wait_job,
)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    data = tmp_path_factory.mktemp("api-data")
    settings = make_settings(data)
    with TestClient(create_app(settings)) as client:
        client.settings = settings
        yield client


@pytest.fixture(scope="module")
def alice(api):
    headers = register(api)
    f = upload(api, headers)
    r = api.post(
        "/api/v1/chat", json={"message": "master this for Spotify", "file_ids": [f["id"]]}, headers=headers
    )
    assert r.status_code == 202, r.text
    body = r.json()
    events = follow_events(api, headers, body["job_id"])
    return {
        "headers": headers,
        "file": f,
        "job_id": body["job_id"],
        "thread_id": body["thread_id"],
        "events": events,
    }


def test_whole_flow_register_upload_master_follow_download_rate(api, alice):
    h = alice["headers"]
    me = api.get("/api/v1/auth/me", headers=h).json()
    assert me["email"].endswith("@example.com")
    f = alice["file"]
    assert f["duration_s"] == pytest.approx(8.0, abs=0.05) and f["sample_rate"] == 22050

    # live progress: plan, per-step events with rising progress, then the end
    names = [n for n, _ in alice["events"]]
    assert names[-1] == "end" and alice["events"][-1][1]["status"] == "succeeded"
    assert "plan" in names and "step_started" in names and "step_finished" in names
    progress = [d["progress"] for n, d in alice["events"] if n in ("stage", "step_started", "step_finished")]
    assert progress == sorted(progress) and progress[-1] >= 0.8

    job = api.get(f"/api/v1/jobs/{alice['job_id']}", headers=h).json()
    assert job["status"] == "succeeded" and job["progress"] == 1.0 and job["error"] is None
    assert any(s["tool"] == "master" for s in job["plan"]["steps"])
    result = job["result"]
    assert result["file_id"] and result["file_id"] != f["id"] and result["explanation"]
    assert result["metrics"]["after"]["integrated_lufs"] == pytest.approx(-14.0, abs=1.0)

    # the result is a file of mine: metadata + analysis, then FLAC 24-bit
    meta = api.get(f"/api/v1/files/{result['file_id']}", headers=h).json()
    assert meta["analysis"]["integrated_lufs"] == pytest.approx(-14.0, abs=1.0)
    r = api.get(
        f"/api/v1/files/{result['file_id']}/download", params={"format": "flac", "bit_depth": 24}, headers=h
    )
    assert r.status_code == 200 and r.headers["content-type"] == "audio/flac"
    info = sf.info(io.BytesIO(r.content))
    assert (
        info.format == "FLAC" and info.subtype == "PCM_24" and info.duration == pytest.approx(8.0, abs=0.05)
    )
    x, sr = sf.read(io.BytesIO(r.content), dtype="float32")
    assert np.isfinite(x).all() and np.abs(x).max() <= 1.0

    # rate it, read the thread
    r = api.post(
        "/api/v1/feedback",
        json={
            "job_id": alice["job_id"],
            "rating": 5,
            "aspects": {"loudness": 4},
            "comment": "great, maybe a touch too loud",
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    assert r.json()["turn_id"] == result["turn_id"]
    assert r.json()["understood"] == ["lower loudness"]  # the comment, read against the settings played
    thread = api.get(f"/api/v1/threads/{alice['thread_id']}", headers=h).json()
    assert [t["kind"] for t in thread["turns"]] == ["process"] and thread["turns"][0]["file_id"] == result[
        "file_id"
    ]
    rec = api.get(
        "/api/v1/recommendations", params={"file_id": f["id"], "request": "master for spotify"}, headers=h
    )
    assert rec.status_code == 200, rec.text

    # continue the conversation: "a bit louder" on the same thread
    r = api.post("/api/v1/chat", json={"message": "a bit louder", "thread_id": alice["thread_id"]}, headers=h)
    assert r.status_code == 202, r.text
    job2 = wait_job(api, h, r.json()["job_id"])
    assert job2["status"] == "succeeded" and job2["result"]["kind"] == "adjust"
    assert (
        job2["result"]["metrics"]["after"]["integrated_lufs"]
        > result["metrics"]["after"]["integrated_lufs"] + 0.5
    )


def test_same_upload_twice_is_one_file(api, alice):
    again = upload(api, alice["headers"], SONG, name="copy.flac")
    assert again["id"] == alice["file"]["id"] and again["deduplicated"] is True


def test_user_b_cannot_see_download_rate_or_continue_a(api, alice):
    b = register(api)
    a_file, a_job, a_thread = alice["file"]["id"], alice["job_id"], alice["thread_id"]
    a_result = api.get(f"/api/v1/jobs/{a_job}", headers=alice["headers"]).json()["result"]["file_id"]
    for path in (
        f"/api/v1/files/{a_file}",
        f"/api/v1/files/{a_result}",
        f"/api/v1/files/{a_file}/download",
        f"/api/v1/jobs/{a_job}",
        f"/api/v1/jobs/{a_job}/events",
        f"/api/v1/threads/{a_thread}",
    ):
        r = api.get(path, headers=b)
        assert r.status_code == 404, (path, r.status_code)
        assert "not found" in r.json()["detail"]
    r = api.get("/api/v1/recommendations", params={"file_id": a_file}, headers=b)
    assert r.status_code == 404
    for body in (
        {"job_id": a_job, "rating": 1},
        {"file_id": a_result, "rating": 1},
        {"turn_id": a_result, "rating": 1},
    ):
        assert api.post("/api/v1/feedback", json=body, headers=b).status_code == 404
    assert (
        api.post("/api/v1/chat", json={"message": "louder", "thread_id": a_thread}, headers=b).status_code
        == 404
    )
    assert (
        api.post("/api/v1/chat", json={"message": "master", "file_ids": [a_file]}, headers=b).status_code
        == 404
    )
    assert api.post(f"/api/v1/jobs/{a_job}/cancel", headers=b).status_code == 404
    assert api.post(f"/api/v1/jobs/{a_job}/retry", headers=b).status_code == 404
    assert api.post("/api/v1/enhancement/complete", json={"file_id": a_file}, headers=b).status_code == 404
    # B's lists are empty; uploading the same audio gives B its own row
    assert api.get("/api/v1/jobs", headers=b).json()["items"] == []
    assert api.get("/api/v1/threads", headers=b).json()["items"] == []
    mine = upload(api, b, SONG)
    assert mine["id"] == a_file and mine["deduplicated"] is False


def _tokens(api, **overrides) -> TokenConfig:
    s = api.settings
    base = dict(secret=s.api_secret(), issuer=s.jwt_issuer, audience=s.jwt_audience)
    base.update(overrides)
    return TokenConfig(**base)


def test_expired_forged_and_wrong_type_tokens_are_rejected(api, alice):
    me = api.get("/api/v1/auth/me", headers=alice["headers"]).json()
    uid = me["id"]
    cases = {
        "expired": create_token(_tokens(api), subject=uid, type="access", ttl=timedelta(minutes=-5)),
        "forged": create_token(_tokens(api, secret="another-secret-" + "x" * 40), subject=uid, type="access"),
        "refresh_as_access": create_token(_tokens(api), subject=uid, type="refresh"),
        "wrong_audience": create_token(_tokens(api, audience="someone-else"), subject=uid, type="access"),
        "wrong_issuer": create_token(_tokens(api, issuer="evil"), subject=uid, type="access"),
        "unknown_user": create_token(_tokens(api), subject="0" * 32, type="access"),
        "garbage": "not.a.token",
    }
    import jwt

    cases["alg_none"] = jwt.encode(
        {
            "sub": uid,
            "type": "access",
            "iss": api.settings.jwt_issuer,
            "aud": api.settings.jwt_audience,
            "iat": 0,
            "exp": 2**31,
            "jti": "x",
        },
        key=None,
        algorithm="none",
    )
    for name, token in cases.items():
        r = api.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, name
        assert r.headers.get("www-authenticate") == "Bearer"
    assert (
        "expired"
        in api.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {cases['expired']}"}).json()[
            "detail"
        ]
    )
    assert api.get("/api/v1/auth/me").status_code == 401
    # refresh accepts only refresh tokens
    access = alice["headers"]["Authorization"].split()[1]
    assert api.post("/api/v1/auth/refresh", json={"refresh_token": access}).status_code == 401
    # a well-signed refresh token the server never issued (no record of its jti) is refused too
    never_issued = create_token(_tokens(api), subject=uid, type="refresh")
    r = api.post("/api/v1/auth/refresh", json={"refresh_token": never_issued})
    assert r.status_code == 401 and "unknown refresh token" in r.json()["detail"]


def test_refresh_tokens_rotate_and_a_reused_one_revokes_them_all(api):
    email = f"rot{uuid.uuid4().hex[:8]}@example.com"
    assert api.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD}).status_code == 201
    first = api.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD}).json()
    r = api.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 200 and r.json()["token_type"] == "bearer"
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (
        api.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {second['access_token']}"}).status_code
        == 200
    )
    # the first refresh token is spent: replaying it is refused and revokes the newer one as well
    r = api.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 401 and "already used" in r.json()["detail"]
    assert (
        api.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}).status_code == 401
    )
    # signing in again works; logout revokes that refresh token; another login is unaffected
    third = api.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD}).json()
    fourth = api.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD}).json()
    assert api.post("/api/v1/auth/logout", json={"refresh_token": third["refresh_token"]}).status_code == 204
    assert api.post("/api/v1/auth/refresh", json={"refresh_token": third["refresh_token"]}).status_code == 401
    assert (
        api.post("/api/v1/auth/refresh", json={"refresh_token": fourth["refresh_token"]}).status_code == 200
    )
    assert api.post("/api/v1/auth/logout", json={"refresh_token": "not.a.token"}).status_code == 401


def test_login_failures_are_uniform_and_throttled(api):
    email = "throttle@example.com"
    assert api.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD}).status_code == 201
    assert api.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD}).status_code == 409
    unknown = api.post("/api/v1/auth/token", data={"username": "nobody@example.com", "password": PASSWORD})
    wrong = api.post("/api/v1/auth/token", data={"username": email, "password": "wrong password"})
    assert unknown.status_code == wrong.status_code == 401

    def same(r):  # the answer, less what differs per request
        return {k: v for k, v in r.json().items() if k != "request_id"}

    assert same(unknown) == same(wrong) and unknown.json()["request_id"] != wrong.json()["request_id"]
    for _ in range(api.settings.login_max_failures - 1):
        api.post("/api/v1/auth/token", data={"username": email, "password": "wrong password"})
    r = api.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0


def test_every_bad_upload_is_rejected_with_a_message_and_leaves_nothing(api, alice, tmp_path):
    from tests.test_audio import make_bad_inputs

    h = alice["headers"]
    before = stored_files(api.settings.data_dir)
    cases = {k: v for k, v in make_bad_inputs(tmp_path).items() if k != "missing"}
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros((48000, 2), np.float32), 48000, subtype="PCM_16")
    cases["silent"] = (silent, "silent")
    for name, (path, words) in cases.items():
        with open(path, "rb") as f:
            r = api.post("/api/v1/files", files={"file": (path.name, f, "audio/wav")}, headers=h)
        assert 400 <= r.status_code < 500, (name, r.status_code, r.text)
        detail = r.json()["detail"]
        assert words.lower() in detail.lower(), (name, detail)
        assert str(api.settings.data_dir) not in detail  # no server paths in messages
    # too large (limit 2 MB here), and no file at all
    r = api.post(
        "/api/v1/files", files={"file": ("big.wav", b"\0" * (3 * 1024 * 1024), "audio/wav")}, headers=h
    )
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    assert api.post("/api/v1/files", headers=h).status_code == 422
    assert stored_files(api.settings.data_dir) == before


def test_cancel_queued_job_and_retry_it(api, alice):
    """A cancelled job never runs; retry queues it again and it completes."""
    from memory import db

    state = api.app.state.mp
    h = alice["headers"]
    owner = api.get("/api/v1/auth/me", headers=h).json()["id"]

    async def make_job() -> str:
        async with state.sessions() as s:
            conv = db.new_id()
            await db.ensure_conversation(s, owner_id=owner, thread_id=conv)
            job = await db.create_job(
                s,
                owner_id=owner,
                request="master this for Apple Music",
                audio_id=alice["file"]["id"],
                thread_id=conv,
            )
            await s.commit()
            return job.id

    job_id = api.portal.call(make_job)  # queued, not handed to the runner
    r = api.post(f"/api/v1/jobs/{job_id}/cancel", headers=h)
    assert r.status_code == 200 and r.json()["status"] == "cancelled" and r.json()["retryable"]
    assert api.post(f"/api/v1/jobs/{job_id}/cancel", headers=h).status_code == 409
    r = api.post(f"/api/v1/jobs/{job_id}/retry", headers=h)
    assert r.status_code == 200 and r.json()["status"] in ("queued", "running", "succeeded")
    job = wait_job(api, h, job_id)
    assert job["status"] == "succeeded" and job["attempts"] == 1
    assert job["result"]["metrics"]["after"]["integrated_lufs"] == pytest.approx(-16.0, abs=1.0)


def test_crashed_worker_job_is_retried_without_a_hand(api, alice):
    """A job 'running' with a dead heartbeat (its process crashed) is queued again by the API's housekeeping
    and finishes; no manual retry (app.jobs.recovery)."""
    from memory import db

    state = api.app.state.mp
    h = alice["headers"]
    owner = api.get("/api/v1/auth/me", headers=h).json()["id"]

    async def crashed_job() -> str:
        async with state.sessions() as s:
            conv = db.new_id()
            await db.ensure_conversation(s, owner_id=owner, thread_id=conv)
            job = await db.create_job(
                s,
                owner_id=owner,
                request="master this for Spotify",
                audio_id=alice["file"]["id"],
                thread_id=conv,
            )
            job.status, job.attempts, job.progress = "running", 1, 0.4
            job.heartbeat_at = db.utcnow() - timedelta(minutes=10)
            await s.commit()
            return job.id

    job_id = api.portal.call(crashed_job)
    job = wait_job(api, h, job_id)
    assert job["status"] == "succeeded" and job["attempts"] == 2, job


def test_killed_job_process_retries_its_job_and_is_replaced(api, alice):
    """Jobs run in child processes; one killed mid-job is replaced and its job runs again by itself."""
    import os
    import signal
    import time

    runner = api.app.state.mp.runner
    assert type(runner).__name__ == "ProcessRunner"
    h = alice["headers"]
    r = api.post(
        "/api/v1/chat",
        json={"message": "master this for Spotify", "file_ids": [alice["file"]["id"]]},
        headers=h,
    )
    job_id = r.json()["job_id"]
    deadline = time.monotonic() + 180  # a replaced child imports everything again: slow on a loaded box
    while (
        job_id not in runner.running.values()
        or api.get(f"/api/v1/jobs/{job_id}", headers=h).json()["status"] != "running"
    ):
        assert time.monotonic() < deadline, "no job process picked the job up"
        time.sleep(0.02)
    i = next(k for k, v in runner.running.items() if v == job_id)
    pid = runner.procs[i].pid
    assert pid != os.getpid()
    os.kill(pid, signal.SIGKILL)
    while not (runner.procs[i].pid != pid and runner.procs[i].is_alive()):
        assert time.monotonic() < deadline + 30, "the job process was not replaced"
        time.sleep(0.05)
    job = wait_job(api, h, job_id, timeout_s=180)
    assert job["status"] == "succeeded" and job["attempts"] == 2, job


def _ready_children(runner, timeout_s: float = 300.0) -> None:
    """Wait for every job process to say it is ready (start-up imports take 5-60 s on a loaded box)."""
    import time

    deadline = time.monotonic() + timeout_s
    while len(runner.ready) < runner.n:  # a child lowers its priority before it says it is ready
        assert time.monotonic() < deadline, "job processes did not start"
        time.sleep(0.05)


@pytest.mark.skipif(not hasattr(__import__("os"), "SCHED_BATCH"), reason="SCHED_BATCH is Linux-only")
def test_job_processes_run_every_thread_as_niced_batch(api, alice):
    """Request handling gets the CPU first: each job process's threads (BLAS pools included) are
    SCHED_BATCH with the configured niceness (never SCHED_IDLE: a busy machine would starve them)."""
    import os
    from pathlib import Path

    runner = api.app.state.mp.runner
    _ready_children(runner)
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the API process itself keeps normal priority
    nice = api.settings.job_nice
    assert nice > 0
    for i in runner.ready:
        pid = runner.procs[i].pid
        tids = [int(t.name) for t in Path(f"/proc/{pid}/task").iterdir()]
        assert len(tids) > 1
        seen = {}
        for tid in tids:
            try:
                seen[tid] = (os.sched_getscheduler(tid), os.getpriority(os.PRIO_PROCESS, tid))
            except (ProcessLookupError, OSError):  # a thread that ended meanwhile
                pass
        assert seen and all(p == os.SCHED_BATCH and n >= nice for p, n in seen.values()), (pid, seen)


@pytest.mark.skipif(not hasattr(__import__("os"), "SCHED_BATCH"), reason="SCHED_BATCH is Linux-only")
def test_a_job_finishes_while_normal_tasks_keep_every_core_busy(api, alice, tmp_path):
    """Low priority must not mean starvation: with one busy normal-priority process per core (another
    service, a build), a job still runs to the end. Under SCHED_IDLE it never did (its heartbeat
    went stale and the sweeper failed it)."""
    import subprocess
    import sys

    h = alice["headers"]
    _ready_children(api.app.state.mp.runner)
    x, sr = sf.read(SONG, dtype="float32")
    short = tmp_path / "song2s.wav"
    sf.write(short, x[: 2 * sr], sr, subtype="PCM_16")
    f = upload(api, h, short)
    hogs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import time\nend = time.monotonic() + 600\nwhile time.monotonic() < end: pass",
            ]
        )
        for _ in range(os.cpu_count() or 2)
    ]
    try:
        r = api.post(
            "/api/v1/chat", json={"message": "make it 3 dB louder", "file_ids": [f["id"]]}, headers=h
        )
        assert r.status_code == 202, r.text
        job = wait_job(api, h, r.json()["job_id"], timeout_s=120)  # ~1 s when nothing else runs
    finally:
        for p in hogs:
            p.kill()
            p.wait()
    assert job["status"] == "succeeded", job


def test_enhancement_voice_returns_file_metrics_and_what_was_applied(api, alice, tmp_path):
    from tests.apiclient import SPEECH

    h = alice["headers"]
    x, sr = sf.read(SPEECH, dtype="float32")
    short = tmp_path / "speech3s.wav"
    sf.write(short, x[: 3 * sr], sr, subtype="PCM_16")  # 3 s keep the full voice chain quick
    f = upload(api, h, short)
    r = api.post(
        "/api/v1/enhancement/voice",
        json={
            "file_id": f["id"],
            "reference_file_id": f["id"],
            "options": {"denoise": True, "target_lufs": -16},
        },
        headers=h,
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert (
        out["status"] == "succeeded" and out["file_id"] and out["request"].startswith("clean up this voice")
    )
    assert out["applied"], out
    assert "integrated_lufs" in out["metrics"]
    # against the (unprocessed) input as reference: intrusive metrics are present and finite
    for key in ("si_sdr", "lsd"):
        assert np.isfinite(out["metrics"][key]), key
    assert api.get(f"/api/v1/files/{out['file_id']}", headers=h).status_code == 200


def test_health_and_ready(api):
    assert api.get("/health").json()["status"] == "ok"
    r = api.get("/ready")
    assert r.status_code == 200
    checks = r.json()["checks"]
    assert all(checks[k]["ok"] for k in ("database", "storage", "models", "queue"))


def test_production_refuses_weak_or_missing_secret(tmp_path):
    from pydantic import ValidationError

    from app.settings import Settings

    for weak in ("changethis", "short-secret", "a" * 40):
        with pytest.raises((ValueError, ValidationError), match="JWT_SECRET"):
            create_app(Settings(_env_file=None, data_dir=tmp_path, environment="production", jwt_secret=weak))
    with pytest.raises(ValueError, match="required in production"):
        create_app(Settings(_env_file=None, data_dir=tmp_path, environment="production"))
    app = create_app(
        Settings(
            _env_file=None,
            data_dir=tmp_path,
            environment="production",
            jwt_secret="9f8e7d6c5b4a39281706f5e4d3c2b1a0-strong-secret",
        )
    )
    assert app.docs_url is None  # no interactive docs in production


def test_openapi_has_the_documented_paths_and_examples(api):
    spec = api.get("/openapi.json").json()
    paths = spec["paths"]
    for p in (
        "/api/v1/auth/register",
        "/api/v1/auth/token",
        "/api/v1/auth/refresh",
        "/api/v1/auth/me",
        "/api/v1/files",
        "/api/v1/files/{file_id}",
        "/api/v1/files/{file_id}/download",
        "/api/v1/chat",
        "/api/v1/jobs/{job_id}",
        "/api/v1/jobs/{job_id}/events",
        "/api/v1/jobs/{job_id}/cancel",
        "/api/v1/threads/{thread_id}",
        "/api/v1/feedback",
        "/api/v1/recommendations",
        "/api/v1/enhancement/voice",
        "/api/v1/enhancement/mixing",
        "/api/v1/enhancement/complete",
        "/health",
        "/ready",
    ):
        assert p in paths, p
    assert "202" in paths["/api/v1/chat"]["post"]["responses"]
    schemas = spec["components"]["schemas"]
    for name in ("ChatIn", "JobOut", "TokenOut", "FileOut", "FeedbackIn", "EnhancementOut"):
        assert schemas[name].get("examples"), name


def test_a_rating_reaches_the_next_job_through_memory(api):
    """Jobs run in separate processes: a rated turn in one must inform the plan of the next (its
    vector is visible to the other process's similarity search), with the evidence in the notes."""
    h = register(api)
    first = upload(api, h)
    # both job processes have loaded the vector index before the rated turn exists
    warm = [
        api.post(
            "/api/v1/chat", json={"message": "master this", "file_ids": [first["id"]]}, headers=h
        ).json()["job_id"]
        for _ in range(2)
    ]
    assert all(wait_job(api, h, jid)["status"] == "succeeded" for jid in warm)
    r = api.post(
        "/api/v1/chat", json={"message": "master this for Spotify", "file_ids": [first["id"]]}, headers=h
    )
    job1 = wait_job(api, h, r.json()["job_id"])
    assert job1["status"] == "succeeded", job1
    assert (
        api.post("/api/v1/feedback", json={"job_id": job1["id"], "rating": 5}, headers=h).status_code == 201
    )
    x, sr = sf.read(str(SONG), dtype="float32")
    buf = io.BytesIO()
    sf.write(buf, x * 0.9, sr, format="FLAC")  # the same song a little quieter: a new, very similar file
    r = api.post("/api/v1/files", files={"file": ("again.flac", buf.getvalue(), "audio/flac")}, headers=h)
    assert r.status_code == 201, r.text
    again = r.json()["id"]
    # two jobs at once: with two job processes, one of them is not the process that stored the vector
    ids = [
        api.post("/api/v1/chat", json={"message": "master this", "file_ids": [again]}, headers=h).json()[
            "job_id"
        ]
        for _ in range(2)
    ]
    for jid in ids:
        job = wait_job(api, h, jid)
        assert job["status"] == "succeeded", job
        notes = " ".join(job["result"]["notes"] + list((job["plan"] or {}).get("notes") or []))
        assert "similar recording you rated 5" in notes, notes


def test_a_question_is_answered_and_a_yes_runs_the_suggestion(api, alice):
    """The /chat job result speaks the turn contract: an answer with its numbers and a platform check,
    nothing written; a confirming message on the same thread runs what was suggested."""
    h = alice["headers"]
    f = upload(api, h)
    r = api.post(
        "/api/v1/chat", json={"message": "is it ready for Spotify?", "file_ids": [f["id"]]}, headers=h
    )
    assert r.status_code == 202, r.text
    asked = wait_job(api, h, r.json()["job_id"])["result"]
    assert asked["kind"] == "answer" and asked["applied"] == [] and asked["file_id"] == f["id"]
    assert asked["checks"]["platform"] == "spotify" and asked["checks"]["ready"] is False
    assert "LUFS" in asked["answer"] and asked["suggested_steps"][0]["tool"] == "master"
    r = api.post("/api/v1/chat", json={"message": "yes", "thread_id": r.json()["thread_id"]}, headers=h)
    done = wait_job(api, h, r.json()["job_id"])["result"]
    assert done["kind"] == "process" and [a["tool"] for a in done["applied"]] == ["master"]
    assert done["file_id"] != f["id"] and abs(done["metrics"]["after"]["integrated_lufs"] + 14.0) < 0.5
