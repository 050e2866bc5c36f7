"""Soak: mixed API load on PostgreSQL + Redis + `mixpilot worker`s, with workers killed and the server restarted.

    .venv/bin/python bench/soak.py [--duration-s 1200] [--clients 4] [--workers 2] [--kill-every-s 180]
                                   [--clip-s 4] [--postgres URL] [--redis URL] [--json OUT] [--keep]

Starts `mixpilot serve` and `--workers` `mixpilot worker` processes on a fresh Postgres database
(created beside --postgres, dropped at the end unless --keep), a fresh Redis queue and a temp data
dir. `--clients` users each loop for `--duration-s` (bounded: at most 2 h): upload a short clip
(now and then), chat (master / tonal / question turns), poll the job to its end, cancel about one
job in ten, rate about half of the results, download each result (FLAC 16-bit) and keep its sha256.
Meanwhile a worker is killed (SIGKILL) every `--kill-every-s` and started again, and the server is
restarted once (SIGTERM, half-way). After the load it waits (`--drain-s`) for every job to end,
downloads every result again and prints: jobs submitted / succeeded / cancelled / failed (with
reasons) / lost (not ended: must be 0), HTTP 5xx (must be 0), the server's shutdown time and RSS
at start and end, and whether every result downloaded bit-identical (dither is seeded by the
version id). The exit status is 1 when jobs were lost, a 5xx was seen or a download differed.

Measured (2 shared cores with other work on them; `--duration-s 360 --kill-every-s 60 --clients 4`,
4 s clips, one job thread per worker): 728 jobs submitted, 695 succeeded, 33 cancelled, 0 failed,
0 lost, 3 run twice (interrupted by a worker kill, retried without a hand); 7135 responses, 0 5xx
(69 connection errors retried while the server restarted); the server's SIGTERM shutdown 0.43 s,
back in 9.4 s; server RSS 164 MB at start, 233 MB at the end (the decoded-audio cache fills
towards its 256 MB bound); 310 results downloaded again bit-identical, 0 differed. Five worker kills
and one server restart. (A 90 s run: 225 jobs, 0 lost, 0 5xx, 119/119 results identical.)
With the workers' jobs in child processes (`--kill-every-s 45`, eight worker kills, one server
restart): 1268 jobs, 1245 succeeded, 23 cancelled, 0 failed, 0 lost, 1 run twice; 9414 responses,
0 5xx; shutdown 0.37 s; RSS 164 → 224 MB; 420/420 results bit-identical.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "soak password 4711"
REQUESTS = [
    "master this for Spotify",
    "make it a bit brighter",
    "less muddy and louder",
    "is it ready for Spotify?",
    "master this for Apple Music",
    "add a little warmth",
]
TERMINAL = ("succeeded", "failed", "cancelled")


def rate_limits_off() -> dict[str, str]:
    """Environment turning every per-user rate limit off (0): the soak measures the service, not 429s
    (each ``rate_limit_*`` setting, so a limit added later is off here too)."""
    from app.settings import Settings

    return {
        f"MIXPILOT_{name.upper()}": "0" for name in Settings.model_fields if name.startswith("rate_limit_")
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_clip(path: Path, seconds: float, seed: int, sr: int = 44100) -> None:
    import soundfile as sf

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 110.0 * (1 + seed % 5)
    chord = sum(0.06 * np.sin(2 * np.pi * f * t) for f in (f0, 2 * f0, 2.52 * f0, 3 * f0))
    x = np.stack([chord + 0.01 * rng.standard_normal(t.size), chord + 0.01 * rng.standard_normal(t.size)])
    sf.write(path, x.T.astype(np.float32), sr, subtype="PCM_16")


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.codes: collections.Counter[int] = collections.Counter()
        self.five: list[str] = []
        self.jobs: dict[str, tuple[dict[str, str], str]] = {}  # job id -> (headers, request)
        self.downloads: dict[str, str] = {}  # file id -> sha256 of its first FLAC 16-bit download
        self.download_headers: dict[str, dict[str, str]] = {}
        self.cancels = 0
        self.ratings = 0
        self.uploads = 0
        self.connection_errors = 0

    def seen(self, method: str, url: str, r: httpx.Response) -> None:
        with self.lock:
            self.codes[r.status_code] += 1
            if r.status_code >= 500:
                self.five.append(f"{method} {url} -> {r.status_code}: {r.text[:200]}")


class Client:
    """One user: requests retried through connection errors (the server restarts once)."""

    def __init__(self, base: str, stats: Stats, stop: threading.Event, seed: int, clip: Path) -> None:
        self.http = httpx.Client(base_url=base, timeout=60)
        self.stats, self.stop, self.rng, self.clip = stats, stop, random.Random(seed), clip
        self.headers: dict[str, str] = {}
        self.files: list[str] = []

    def call(self, method: str, url: str, *, retry_s: float = 120.0, **kw: Any) -> httpx.Response:
        deadline = time.monotonic() + retry_s
        while True:
            try:
                r = self.http.request(method, url, headers={**self.headers, **kw.pop("headers", {})}, **kw)
            except (httpx.TransportError, httpx.TimeoutException):
                with self.stats.lock:
                    self.stats.connection_errors += 1
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
                if "files" in kw:  # rewind an upload
                    for _name, (_fn, fh, _ct) in kw["files"].items():
                        fh.seek(0)
                continue
            self.stats.seen(method, url, r)
            return r

    def setup(self) -> None:
        email = f"soak-{uuid.uuid4().hex[:10]}@example.com"
        r = self.call("POST", "/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        assert r.status_code == 201, r.text
        r = self.call("POST", "/api/v1/auth/token", data={"username": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        self.token_at = time.monotonic()
        self.email = email
        self.headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        self.upload()

    def relogin(self) -> None:
        if time.monotonic() - self.token_at > 600:
            r = self.call("POST", "/api/v1/auth/token", data={"username": self.email, "password": PASSWORD})
            if r.status_code == 200:
                self.headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
                self.token_at = time.monotonic()

    def upload(self) -> None:
        with open(self.clip, "rb") as f:
            r = self.call("POST", "/api/v1/files", files={"file": ("clip.wav", f, "audio/wav")})
        if r.status_code == 201:
            self.files.append(r.json()["id"])
            with self.stats.lock:
                self.stats.uploads += 1

    def turn(self) -> None:
        self.relogin()
        if self.rng.random() < 0.15:
            self.upload()
        request = self.rng.choice(REQUESTS)
        r = self.call(
            "POST", "/api/v1/chat", json={"message": request, "file_ids": [self.rng.choice(self.files)]}
        )
        if r.status_code != 202:
            return
        job_id = r.json()["job_id"]
        with self.stats.lock:
            self.stats.jobs[job_id] = (dict(self.headers), request)
        cancel_at = time.monotonic() + self.rng.uniform(0.2, 3.0) if self.rng.random() < 0.1 else None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            time.sleep(0.3)
            if cancel_at is not None and time.monotonic() >= cancel_at:
                c = self.call("POST", f"/api/v1/jobs/{job_id}/cancel")
                with self.stats.lock:
                    self.stats.cancels += c.status_code == 200
                cancel_at = None
            job = self.call("GET", f"/api/v1/jobs/{job_id}").json()
            if job.get("status") in TERMINAL:
                break
        else:
            return
        fid = (job.get("result") or {}).get("file_id")
        if job["status"] == "succeeded" and fid:
            d = self.call("GET", f"/api/v1/files/{fid}/download", params={"format": "flac", "bit_depth": 16})
            if d.status_code == 200:
                with self.stats.lock:
                    self.stats.downloads.setdefault(fid, hashlib.sha256(d.content).hexdigest())
                    self.stats.download_headers[fid] = dict(self.headers)
            if self.rng.random() < 0.5:
                f = self.call(
                    "POST", "/api/v1/feedback", json={"job_id": job_id, "rating": self.rng.randint(1, 5)}
                )
                with self.stats.lock:
                    self.stats.ratings += f.status_code == 201

    def loop(self) -> None:
        try:
            self.setup()
            while not self.stop.is_set():
                self.turn()
        except Exception as exc:  # reported; the others go on
            print(f"soak: a client stopped: {type(exc).__name__}: {exc}", file=sys.stderr)


def create_database(admin_url: str) -> tuple[str, str]:
    import asyncio

    import asyncpg
    from sqlalchemy.engine import make_url

    name = f"mixpilot_soak_{uuid.uuid4().hex[:8]}"
    u = make_url(admin_url)

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(u.set(drivername="postgresql").render_as_string(hide_password=False))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    return u.set(database=name).render_as_string(hide_password=False), name


def drop_database(admin_url: str, name: str) -> None:
    import asyncio

    import asyncpg
    from sqlalchemy.engine import make_url

    async def run() -> None:
        u = make_url(admin_url).set(drivername="postgresql").render_as_string(hide_password=False)
        conn = await asyncpg.connect(u)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--duration-s", type=float, default=1200.0, help="load duration (default 20 min; max 2 h)"
    )
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--kill-every-s", type=float, default=180.0, help="SIGKILL a worker this often")
    ap.add_argument("--clip-s", type=float, default=4.0)
    ap.add_argument(
        "--drain-s", type=float, default=300.0, help="after the load: wait this long for jobs to end"
    )
    ap.add_argument(
        "--postgres",
        default=os.environ.get(
            "MIXPILOT_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
        ),
    )
    ap.add_argument("--redis", default=os.environ.get("MIXPILOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/14"))
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--keep", action="store_true", help="keep the database and data dir")
    args = ap.parse_args(argv)
    duration = min(max(args.duration_s, 10.0), 7200.0)

    data = Path(tempfile.mkdtemp(prefix="mixpilot-soak-"))
    db_url, db_name = create_database(args.postgres)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(
        os.environ,
        MIXPILOT_DATA_DIR=str(data),
        MIXPILOT_DATABASE_URL=db_url,
        MIXPILOT_REDIS_URL=args.redis,
        MIXPILOT_JOB_QUEUE=f"mixpilot:soak:{uuid.uuid4().hex[:8]}",
        MIXPILOT_JOB_THREADS="1",
        MIXPILOT_JWT_SECRET="soak-" + uuid.uuid4().hex + uuid.uuid4().hex,
        MIXPILOT_JOB_HEARTBEAT_S="2",
        MIXPILOT_JOB_STALE_S="15",
        **rate_limits_off(),
    )
    logs = data / "logs"
    logs.mkdir()
    subprocess.run(
        [sys.executable, "-m", "app.cli", "migrate"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL
    )

    def start_server() -> subprocess.Popen[bytes]:
        out = open(logs / "server.log", "ab")  # noqa: SIM115 - the server process writes it
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--log-level", "warning"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=out,
        )

    def start_worker(i: int) -> subprocess.Popen[bytes]:
        out = open(logs / f"worker{i}.log", "ab")  # noqa: SIM115 - the worker process writes it
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker"], cwd=ROOT, env=env, stdout=out, stderr=out
        )

    def wait_ready(timeout_s: float = 180.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/ready", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError("the server did not become ready (see the logs in the data dir)")

    server = start_server()
    workers = [start_worker(i) for i in range(args.workers)]
    stats, stop = Stats(), threading.Event()
    events: list[str] = []
    figures: dict[str, Any] = {}
    try:
        wait_ready()
        figures["rss_start_mb"] = round(rss_mb(server.pid), 1)
        clips = []
        for i in range(args.clients):
            clip = data / f"clip{i}.wav"
            make_clip(clip, args.clip_s, seed=i)
            clips.append(clip)
        clients = [Client(base, stats, stop, seed=i, clip=clips[i]) for i in range(args.clients)]
        threads = [threading.Thread(target=c.loop, daemon=True) for c in clients]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        next_kill = t0 + args.kill_every_s
        restarted = False
        while time.monotonic() - t0 < duration:
            time.sleep(1.0)
            now = time.monotonic()
            if args.workers and now >= next_kill:
                i = random.randrange(len(workers))
                workers[i].send_signal(signal.SIGKILL)
                workers[i].wait()
                time.sleep(1.0)
                workers[i] = start_worker(i)
                events.append(f"{now - t0:.0f} s: worker {i} killed and started again")
                next_kill = now + args.kill_every_s
            if not restarted and now - t0 >= duration / 2:
                s0 = time.monotonic()
                server.send_signal(signal.SIGTERM)
                server.wait(60)
                figures["server_shutdown_s"] = round(time.monotonic() - s0, 2)
                server = start_server()
                wait_ready()
                events.append(
                    f"{now - t0:.0f} s: server restarted (shutdown {figures['server_shutdown_s']} s, "
                    f"back in {time.monotonic() - s0:.1f} s)"
                )
                restarted = True
        stop.set()
        for t in threads:
            t.join(660)
        figures["load_s"] = round(time.monotonic() - t0, 1)

        # drain: every job must end (nothing lost), then every result downloads again bit-identical
        admin = httpx.Client(base_url=base, timeout=60)
        deadline = time.monotonic() + args.drain_s
        final: dict[str, dict[str, Any]] = {}
        while True:
            for job_id, (headers, _req) in stats.jobs.items():
                if job_id in final:
                    continue
                r = admin.get(f"/api/v1/jobs/{job_id}", headers=headers)
                stats.seen("GET", "/api/v1/jobs/{id}", r)
                if r.status_code == 200 and r.json()["status"] in TERMINAL:
                    final[job_id] = r.json()
            if len(final) == len(stats.jobs) or time.monotonic() > deadline:
                break
            time.sleep(2.0)
        same, differ = 0, []
        for fid, digest in stats.downloads.items():
            r = admin.get(
                f"/api/v1/files/{fid}/download",
                params={"format": "flac", "bit_depth": 16},
                headers=stats.download_headers[fid],
            )
            stats.seen("GET", "/api/v1/files/{id}/download", r)
            if r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == digest:
                same += 1
            else:
                differ.append(fid)
        figures["rss_end_mb"] = round(rss_mb(server.pid), 1)
        statuses = collections.Counter(j["status"] for j in final.values())
        reasons = collections.Counter(
            (j.get("error") or "")[:120] for j in final.values() if j["status"] == "failed"
        )
        retried = sum(1 for j in final.values() if (j.get("attempts") or 0) > 1)
        figures.update(
            duration_s=duration,
            clients=args.clients,
            workers=args.workers,
            uploads=stats.uploads,
            jobs_submitted=len(stats.jobs),
            jobs_succeeded=statuses["succeeded"],
            jobs_cancelled=statuses["cancelled"],
            jobs_failed=statuses["failed"],
            failed_reasons=dict(reasons),
            jobs_lost=len(stats.jobs) - len(final),
            jobs_run_more_than_once=retried,
            cancel_requests_ok=stats.cancels,
            ratings=stats.ratings,
            responses=sum(stats.codes.values()),
            http_5xx=sum(n for c, n in stats.codes.items() if c >= 500),
            codes=dict(stats.codes),
            connection_errors_retried=stats.connection_errors,
            results_checked=len(stats.downloads),
            results_bit_identical=same,
            results_differ=len(differ),
            events=events,
        )
    finally:
        stop.set()
        for p in [server, *workers]:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in [server, *workers]:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        if not args.keep:
            shutil.rmtree(data, ignore_errors=True)
            drop_database(args.postgres, db_name)
        else:
            print(f"soak: kept {data} and database {db_name}", file=sys.stderr)

    for key in (
        "duration_s",
        "load_s",
        "clients",
        "workers",
        "uploads",
        "jobs_submitted",
        "jobs_succeeded",
        "jobs_cancelled",
        "jobs_failed",
        "failed_reasons",
        "jobs_lost",
        "jobs_run_more_than_once",
        "cancel_requests_ok",
        "ratings",
        "responses",
        "http_5xx",
        "codes",
        "connection_errors_retried",
        "server_shutdown_s",
        "rss_start_mb",
        "rss_end_mb",
        "results_checked",
        "results_bit_identical",
        "results_differ",
    ):
        print(f"{key:28s} {figures.get(key)}")
    for e in figures.get("events", []):
        print(f"  {e}")
    for line in stats.five[:10]:
        print(f"  5xx: {line}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    bad = figures.get("jobs_lost", 1) or figures.get("http_5xx", 1) or figures.get("results_differ", 1)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
