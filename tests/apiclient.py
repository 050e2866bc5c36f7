"""Helpers for the API tests: an app on a temp data dir, users with tokens, uploads, following jobs."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
SONG = FIXTURES / "karissa_hobbs_lets_go_fishin_8s.flac"
SPEECH = FIXTURES / "speech_female_16k.flac"
PASSWORD = "correct horse battery"


def make_settings(data_dir: Path, **overrides: Any):
    from app.settings import Settings

    values = dict(
        data_dir=data_dir,
        jwt_secret="t" * 8 + uuid.uuid4().hex + "-test-secret-0123456789",
        max_upload_mb=2.0,
        job_threads=2,
        job_heartbeat_s=1.0,
        job_stale_s=30.0,
    )
    values.update(overrides)
    return Settings(_env_file=None, **values)


def register(client, email: str | None = None) -> dict[str, str]:
    """Register + log in a fresh user; returns auth headers."""
    email = email or f"u{uuid.uuid4().hex[:10]}@example.com"
    r = client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    r = client.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def upload(client, headers, path: Path = SONG, name: str | None = None) -> dict[str, Any]:
    with open(path, "rb") as f:
        r = client.post(
            "/api/v1/files",
            files={"file": (name or path.name, f, "application/octet-stream")},
            headers=headers,
        )
    assert r.status_code == 201, r.text
    return r.json()


def follow_events(client, headers, job_id: str, timeout_s: float = 120.0) -> list[tuple[str, dict]]:
    """Read the SSE stream to its `end` event; returns (event, data) pairs."""
    events: list[tuple[str, dict]] = []
    name = None
    deadline = time.monotonic() + timeout_s
    with client.stream("GET", f"/api/v1/jobs/{job_id}/events", headers=headers, timeout=timeout_s) as resp:
        assert resp.status_code == 200, resp.read()
        assert resp.headers["content-type"].startswith("text/event-stream")
        for line in resp.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and name:
                events.append((name, json.loads(line.split(":", 1)[1])))
                if name == "end":
                    break
            assert time.monotonic() < deadline, "event stream did not end"
    return events


def wait_job(client, headers, job_id: str, timeout_s: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        job = client.get(f"/api/v1/jobs/{job_id}", headers=headers).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, f"job still {job['status']}"
        time.sleep(0.1)


def stored_files(data_dir: Path) -> set[Path]:
    """Every file under the data dir that is audio or an upload leftover."""
    return {
        p
        for p in data_dir.rglob("*")
        if p.is_file() and ("uploads" in p.parts or "audio" in p.parts or "exports" in p.parts)
    }
