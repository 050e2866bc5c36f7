"""API load on loopback: authenticated reads at N concurrent clients while M processing jobs run.

    .venv/bin/python bench/api.py [--clients 50] [--jobs 20] [--clip-s 30] [--threads 2] [--workers 0]

Starts `mixpilot serve` (uvicorn, a subprocess, fresh temp data dir), registers a user, uploads
a synthetic stereo clip, starts `--jobs` chat jobs ("master this for Spotify", each on its own
thread) and, while they run, `--clients` concurrent clients loop over GET /auth/me, /jobs/{id}
and /files/{id}?analysis=false until every job has finished (bounded by --max-s). Prints
requests/s, p50/p90/p99 read latency, job wall times, and the server's peak RSS.
`--workers N` (with Redis at --redis) runs the jobs on N `mixpilot worker` processes instead.
Loopback only; everything it starts is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench password 123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_clip(path: Path, seconds: float, sr: int = 44100) -> None:
    import soundfile as sf

    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    chord = sum(0.05 * np.sin(2 * np.pi * f * t) for f in (110.0, 220.0, 277.2, 329.6, 440.0))
    beat = 0.2 * (np.sin(2 * np.pi * 2 * t) > 0.95) * rng.standard_normal(t.size)
    x = np.stack([chord + beat + 0.01 * rng.standard_normal(t.size),
                  chord + beat + 0.01 * rng.standard_normal(t.size)]).astype(np.float32)
    sf.write(path, x.T, sr, subtype="PCM_16")


def descendants(pids: list[int]) -> list[int]:
    """`pids` and all their descendants (the API's job processes)."""
    out, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        out.append(pid)
        try:
            for task in Path(f"/proc/{pid}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            pass
    return out


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in descendants(pids):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


async def run(args: argparse.Namespace) -> None:
    data = Path(tempfile.mkdtemp(prefix="mixpilot-bench-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, MIXPILOT_DATA_DIR=str(data), MIXPILOT_JWT_SECRET="bench-" + "k" * 40 + os.urandom(8).hex(),
               MIXPILOT_JOB_THREADS=str(args.threads), MIXPILOT_LOGIN_MAX_FAILURES="1000")
    if args.runner:
        env["MIXPILOT_JOB_RUNNER"] = args.runner
    if args.workers:
        env["MIXPILOT_REDIS_URL"] = args.redis
        env["MIXPILOT_JOB_QUEUE"] = f"mixpilot:bench:{os.urandom(4).hex()}"
    else:
        env.pop("MIXPILOT_REDIS_URL", None)
    procs: list[subprocess.Popen] = []
    server = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--log-level",
                               "warning"], cwd=ROOT, env=env)
    procs.append(server)
    for _ in range(args.workers):
        procs.append(subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], cwd=ROOT, env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    peak = {"rss": 0.0}
    read_errors: list[str] = []
    try:
        limits = httpx.Limits(max_connections=args.clients + 10, max_keepalive_connections=args.clients + 10)
        async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as c:
            t0 = time.monotonic()
            while True:
                try:
                    if (await c.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() - t0 > 120 or server.poll() is not None:
                    raise SystemExit("server did not start")
                await asyncio.sleep(0.2)
            print(f"server up in {time.monotonic() - t0:.1f} s (pid {server.pid}), data dir {data}")
            await c.post("/api/v1/auth/register", json={"email": "bench@example.com", "password": PASSWORD})
            tok = (await c.post("/api/v1/auth/token", data={"username": "bench@example.com",
                                                              "password": PASSWORD})).json()
            h = {"Authorization": f"Bearer {tok['access_token']}"}
            clip = data / "clip.wav"
            make_clip(clip, args.clip_s)
            files = []
            for i in range(args.jobs):  # distinct audio per job (no cache hits between jobs)
                import soundfile as sf

                x, sr = sf.read(clip, dtype="float32")
                sf.write(clip.with_name(f"clip{i}.wav"), x * (0.5 + 0.02 * i), sr, subtype="PCM_16")
                with open(clip.with_name(f"clip{i}.wav"), "rb") as f:
                    r = await c.post("/api/v1/files", files={"file": (f"clip{i}.wav", f.read())}, headers=h)
                r.raise_for_status()
                files.append(r.json()["id"])

            async def sample_rss() -> None:
                while True:
                    peak["rss"] = max(peak["rss"], rss_mb([p.pid for p in procs]))
                    await asyncio.sleep(0.2)

            sampler = asyncio.create_task(sample_rss())
            t_jobs = time.monotonic()
            job_ids = []
            for fid in files:
                r = await c.post("/api/v1/chat", json={"message": "master this for Spotify", "file_ids": [fid]},
                                 headers=h)
                r.raise_for_status()
                job_ids.append(r.json()["job_id"])
            done: dict[str, tuple[str, float]] = {}
            errs: list = []

            async def watch() -> None:
                while len(done) < len(job_ids) and time.monotonic() - t_jobs < args.max_s:
                    for jid in job_ids:
                        if jid in done:
                            continue
                        j = (await c.get(f"/api/v1/jobs/{jid}", headers=h)).json()
                        if j["status"] in ("succeeded", "failed", "cancelled"):
                            done[jid] = (j["status"], time.monotonic() - t_jobs)
                            if j["status"] != "succeeded" and not errs:
                                errs.append(j.get("error"))
                    await asyncio.sleep(0.5)

            latencies: list[float] = []
            errors = 0
            paths = ["/api/v1/auth/me", f"/api/v1/jobs/{job_ids[0]}", f"/api/v1/files/{files[0]}?analysis=false"]

            async def reader(k: int) -> None:
                nonlocal errors
                i = k
                while len(done) < len(job_ids) and time.monotonic() - t_jobs < args.max_s:
                    t = time.perf_counter()
                    try:
                        r = await c.get(paths[i % len(paths)], headers=h)
                        ok = r.status_code == 200
                        if not ok and len(read_errors) < 3:
                            read_errors.append(f"{paths[i % len(paths)]}: {r.status_code} {r.text[:200]}")
                    except httpx.HTTPError as exc:
                        ok = False
                        if len(read_errors) < 3:
                            read_errors.append(f"{paths[i % len(paths)]}: {type(exc).__name__}: {exc}")
                    latencies.append(time.perf_counter() - t)
                    errors += not ok
                    i += 1
                    await asyncio.sleep(args.think_ms / 1000)

            t_reads = time.monotonic()
            await asyncio.gather(watch(), *(reader(k) for k in range(args.clients)))
            wall = time.monotonic() - t_reads
            sampler.cancel()
    finally:
        for p in procs:
            p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
    lat = np.asarray(latencies) * 1000
    if errs:
        print("first job error:", errs[0])
    for e in read_errors:
        print("read error:", e)
    statuses = [s for s, _ in done.values()]
    times = sorted(t for _, t in done.values())
    print(f"\n{args.jobs} jobs × {args.clip_s:.0f} s clips, {args.threads} jobs at once"
          + (f" per worker, {args.workers} arq workers" if args.workers else f" in-process ({args.runner or 'default'} runner)")
          + f"; {args.clients} concurrent readers (think {args.think_ms} ms)")
    print(f"jobs: {statuses.count('succeeded')}/{args.jobs} succeeded"
          + (f" ({len(job_ids) - len(done)} unfinished at --max-s)" if len(done) < len(job_ids) else "")
          + (f"; first done {times[0]:.1f} s, median {statistics.median(times):.1f} s, all {times[-1]:.1f} s"
             if times else ""))
    print(f"reads: {lat.size} requests in {wall:.1f} s = {lat.size / wall:.0f} req/s, errors {errors}")
    if lat.size:
        print(f"read latency ms: p50 {np.percentile(lat, 50):.1f}  p90 {np.percentile(lat, 90):.1f}  "
              f"p99 {np.percentile(lat, 99):.1f}  max {lat.max():.1f}   (goal p99 < 100 ms)")
    print(f"peak RSS (server{' + workers' if args.workers else ''} + their children, sampled): {peak['rss']:.0f} MB")
    print(f"load average at the end: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--jobs", type=int, default=20)
    ap.add_argument("--clip-s", type=float, default=30.0)
    ap.add_argument("--threads", type=int, default=2, help="jobs at once (local job processes, or per arq worker)")
    ap.add_argument("--runner", choices=["process", "thread"], default=None,
                    help="local job runner (MIXPILOT_JOB_RUNNER; default: the server's default, process)")
    ap.add_argument("--workers", type=int, default=0, help="arq worker processes (needs --redis)")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    ap.add_argument("--think-ms", type=float, default=10.0, help="pause between a client's requests")
    ap.add_argument("--max-s", type=float, default=900.0, help="stop after this long even if jobs remain")
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
