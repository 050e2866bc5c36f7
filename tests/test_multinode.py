"""Two API processes and two arq workers, as on four machines: each with its own empty data dir, sharing
only PostgreSQL, Redis and an S3-compatible object store (moto's server, started here). A user uploads
through API 1, the job runs on either worker, the result downloads through API 2 bit-identical; a worker
killed with SIGKILL in the middle of a job leaves it to be retried, and the other worker finishes it.

Real processes (`python -m app.cli serve` / `worker`), real services: under CI=true a missing Postgres or
Redis fails the test (tests/services.py).
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("boto3")
pytest.importorskip("fastapi")

import httpx
import soundfile as sf

from tests.apiclient import PASSWORD, SONG
from tests.s3server import ACCESS_KEY, REGION, SECRET_KEY, s3_server  # noqa: F401  (fixture)
from tests.services import dead_port, pg_url, redis_url  # noqa: F401  (fixtures)
from tools.audio import load

REPO = Path(__file__).resolve().parents[1]


class Node:
    """One `mixpilot serve` or `mixpilot worker` process with its own data dir and log."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], root: Path) -> None:
        self.name, self.data_dir = name, root / name
        self.data_dir.mkdir(parents=True)
        self.log = (root / f"{name}.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", *args],
            cwd=REPO,
            env={**env, "MIXPILOT_DATA_DIR": str(self.data_dir)},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: its job processes go with it
        )

    def cached(self, version_id: str) -> bool:
        """Whether this node has read or written the version (its disk cache holds it)."""
        return any((self.data_dir / "cache").rglob(f"{version_id}.*"))

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        self.log.close()

    def tail(self) -> str:
        self.log.flush()
        return (self.data_dir.parent / f"{self.name}.log").read_text(errors="replace")[-3000:]


@pytest.fixture
def cluster(tmp_path, pg_url, redis_url, s3_server):  # noqa: F811
    bucket = s3_server.new_bucket()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIXPILOT_")}
    env.update(
        MIXPILOT_DATABASE_URL=pg_url,
        MIXPILOT_REDIS_URL=redis_url,
        MIXPILOT_JOB_QUEUE=f"mixpilot:multinode:{uuid.uuid4().hex[:8]}",
        MIXPILOT_JWT_SECRET=f"multinode-{uuid.uuid4().hex}-0123456789abcdef",  # one secret: any API, any token
        MIXPILOT_STORAGE_URL=f"s3://{bucket}/mixpilot",
        MIXPILOT_STORAGE_ENDPOINT_URL=s3_server.endpoint,
        MIXPILOT_STORAGE_REGION=REGION,
        MIXPILOT_STORAGE_ACCESS_KEY_ID=ACCESS_KEY,
        MIXPILOT_STORAGE_SECRET_ACCESS_KEY=SECRET_KEY,
        MIXPILOT_STORAGE_ALLOW_HTTP="true",
        MIXPILOT_JOB_THREADS="1",
        MIXPILOT_JOB_HEARTBEAT_S="0.5",
        MIXPILOT_JOB_STALE_S="6",
        MIXPILOT_JOB_RETRY_BACKOFF_S="0.2",
        MIXPILOT_JOB_MAX_ATTEMPTS="3",
        PYTHONUNBUFFERED="1",
    )
    nodes: list[Node] = []
    urls: list[str] = []
    try:
        for i in (1, 2):  # one after the other: the first migrates the empty database
            port = dead_port()
            nodes.append(
                Node(f"api{i}", ["serve", "--port", str(port), "--log-level", "warning"], env, tmp_path)
            )
            urls.append(f"http://127.0.0.1:{port}")
            _wait(lambda u=urls[-1]: httpx.get(f"{u}/health", timeout=5).status_code == 200, 180, nodes[-1])
        workers = [Node(f"worker{i}", ["worker"], env, tmp_path) for i in (1, 2)]
        nodes += workers

        def two_workers() -> bool:
            r = httpx.get(f"{urls[0]}/ready", timeout=5)
            return "2 workers" in r.json()["checks"]["queue"]["detail"]

        _wait(two_workers, 180, workers[0])
        yield {"api": urls, "workers": workers, "nodes": nodes, "bucket": bucket, "env": env}
    finally:
        for n in nodes:
            n.stop()


def _wait(ok, timeout_s: float, node: Node) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if ok():
                return
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        if node.proc.poll() is not None:
            pytest.fail(f"{node.name} exited ({node.proc.returncode}):\n{node.tail()}")
        if time.monotonic() > deadline:
            pytest.fail(f"{node.name} not ready after {timeout_s:.0f} s:\n{node.tail()}")
        time.sleep(0.2)


def _login(api: str) -> dict[str, str]:
    email = f"u{uuid.uuid4().hex[:10]}@example.com"
    r = httpx.post(f"{api}/api/v1/auth/register", json={"email": email, "password": PASSWORD}, timeout=30)
    assert r.status_code == 201, r.text
    r = httpx.post(f"{api}/api/v1/auth/token", data={"username": email, "password": PASSWORD}, timeout=30)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _upload(api: str, h: dict[str, str], name: str, data: bytes) -> dict:
    r = httpx.post(f"{api}/api/v1/files", files={"file": (name, data)}, headers=h, timeout=120)
    assert r.status_code == 201, r.text
    return r.json()


def _chat(api: str, h: dict[str, str], file_id: str, message: str) -> str:
    r = httpx.post(
        f"{api}/api/v1/chat", json={"message": message, "file_ids": [file_id]}, headers=h, timeout=60
    )
    assert r.status_code == 202, r.text
    return r.json()["job_id"]


def _job(api: str, h: dict[str, str], job_id: str) -> dict:
    r = httpx.get(f"{api}/api/v1/jobs/{job_id}", headers=h, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def _finished(api: str, h: dict[str, str], job_id: str, timeout_s: float, node: Node) -> dict:
    box: dict = {}

    def done() -> bool:
        box["job"] = _job(api, h, job_id)
        return box["job"]["status"] in ("succeeded", "failed", "cancelled")

    _wait(done, timeout_s, node)
    return box["job"]


def _float32(api: str, h: dict[str, str], file_id: str) -> tuple[np.ndarray, int, str]:
    r = httpx.get(
        f"{api}/api/v1/files/{file_id}/download",
        params={"format": "wav", "bit_depth": 32},
        headers=h,
        timeout=120,
    )
    assert r.status_code == 200, r.text
    x, rate = sf.read(io.BytesIO(r.content), dtype="float32", always_2d=True)
    return x.T, rate, r.headers["etag"]


def _long_song(tmp_path: Path, seconds: float) -> bytes:
    """The test song repeated to `seconds` (a job long enough to be killed in the middle), as FLAC bytes."""
    song = load(SONG, max_duration_s=None)
    reps = int(np.ceil(seconds * song.sample_rate / song.frames))
    x = np.tile(song.samples, (1, reps))
    buf = io.BytesIO()
    sf.write(buf, x.T, song.sample_rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def test_upload_on_one_api_work_on_any_worker_download_on_the_other(cluster):
    api1, api2 = cluster["api"]
    workers = cluster["workers"]
    h = _login(api1)
    f = _upload(api1, h, SONG.name, SONG.read_bytes())
    # the upload is in the shared store: API 2 (empty data dir) serves the same samples
    original = load(SONG, max_duration_s=None)
    x, rate, _ = _float32(api2, h, f["id"])
    assert rate == original.sample_rate
    np.testing.assert_array_equal(x.view(np.uint32), original.samples.view(np.uint32))

    job = _finished(api1, h, _chat(api1, h, f["id"], "master this for Spotify"), 300, workers[0])
    assert job["status"] == "succeeded", job
    result = job["result"]["file_id"]
    assert [w.name for w in workers if w.cached(result)], "no worker made the result"
    x2, _, tag2 = _float32(api2, h, result)  # through the API that ran nothing
    x1, _, tag1 = _float32(api1, h, result)
    assert tag1 == tag2
    np.testing.assert_array_equal(x2.view(np.uint32), x1.view(np.uint32))
    # ... and bit-identical to the version in the bucket, read with a store of our own
    from memory.objectstore import open_s3_store

    env = cluster["env"]
    store = open_s3_store(
        env["MIXPILOT_STORAGE_URL"],
        endpoint_url=env["MIXPILOT_STORAGE_ENDPOINT_URL"],
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        allow_http=True,
    )
    np.testing.assert_array_equal(x2.view(np.uint32), store.get(result).samples.view(np.uint32))
    # nothing of the audio landed in an API's or worker's data dir outside its cache
    for node in cluster["nodes"]:
        assert (
            not list((node.data_dir / "audio").rglob("*.*")) if (node.data_dir / "audio").exists() else True
        )


def test_a_worker_killed_mid_job_leaves_it_to_the_other(cluster, tmp_path):
    api1, api2 = cluster["api"]
    workers = cluster["workers"]
    h = _login(api2)
    f = _upload(api2, h, "long.flac", _long_song(tmp_path, 150))
    job_id = _chat(api1, h, f["id"], "master this for Spotify")

    box: dict = {}

    def picked_up() -> bool:  # running, and one worker has fetched the source: that one dies
        if _job(api1, h, job_id)["status"] != "running":
            return False
        box["victim"] = next((w for w in workers if w.cached(f["id"])), None)
        return box["victim"] is not None

    _wait(picked_up, 180, workers[0])
    victim = box["victim"]
    survivor = next(w for w in workers if w is not victim)
    assert _job(api1, h, job_id)["status"] == "running", "the job ended before the kill: make it longer"
    victim.kill()
    assert victim.proc.returncode == -signal.SIGKILL

    job = _finished(api2, h, job_id, 300, survivor)
    assert job["status"] == "succeeded", job
    assert job["attempts"] == 2, job  # the killed run, then the survivor's
    result = job["result"]["file_id"]
    assert survivor.cached(result) and not victim.cached(result)
    x1, _, t1 = _float32(api1, h, result)
    x2, _, t2 = _float32(api2, h, result)
    assert t1 == t2
    np.testing.assert_array_equal(x1.view(np.uint32), x2.view(np.uint32))
