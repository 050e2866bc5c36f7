"""Where a turn's time goes: per stage, for the CLI and for a warm service, on a 3-minute song.

    .venv/bin/python bench/turn.py [--runs 5] [--minutes 3] [--request "master it for spotify"] [--cli-runs 5]

Song: the music fixtures (../shared/fixtures/music, 30 s 44.1 kHz excerpts) concatenated to the
requested length, 44.1 kHz stereo, written as a 24-bit WAV.

- **CLI**: ``mixpilot process SONG REQUEST -o OUT`` as a user runs it (a fresh process, fresh data
  dir): wall, CPU (user+sys of the child) and peak RSS; and the CLI's start-up to a first plan
  (``mixpilot plan REQUEST --json``, no audio). A cold in-process run (``--child``, the same calls as
  the CLI, imports included) gives the CLI's per-stage split.
- **Warm service**: one `Mixpilot` (memory and cache as `app.runtime.open_service` builds them) that
  has already served a turn; each run imports a new version of the song (a 0.001 dB gain change per
  run, so no cached measurement is reused) and runs the turn on a new thread.

Stages come from the graph's own progress events: load (import: decode, hash, store), analyze
(analysis + diagnosis of the source), recall, plan (plan + validate), one row per step, evaluate
(analysis of the result), checkpoint (respond, checkpoint, memory record), write (24-bit export).
Each is a median over the runs, wall and CPU seconds (CPU = this process, all threads): on a busy
machine the wall figures are polluted and the CPU ones are the fair comparison. The load average
is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_T_START = time.perf_counter()
_C_START = time.process_time()

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MUSIC = ROOT.parent / "shared" / "fixtures" / "music"


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def build_song(path: Path, minutes: float) -> None:
    """The music fixtures concatenated (in name order, repeated) to `minutes`, 44.1 kHz stereo, 24-bit."""
    import numpy as np
    import soundfile as sf

    from tools.audio import load

    clips = [load(p).resample(44100).to_channels(2).samples for p in sorted(MUSIC.glob("*.flac"))]
    if not clips:
        sys.exit(f"needs the real recordings in {MUSIC}")
    n = int(minutes * 60 * 44100)
    with sf.SoundFile(path, "w", 44100, 2, subtype="PCM_24") as f:
        done, i = 0, 0
        while done < n:
            c = clips[i % len(clips)][:, : n - done]
            f.write(np.ascontiguousarray(c.T))
            done += c.shape[1]
            i += 1


def peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Clock:
    """Wall and CPU time at named marks, and the process's peak RSS when each stage ended."""

    def __init__(self) -> None:
        self.marks: list[tuple[str, float, float]] = []
        self.rss: dict[str, float] = {}

    def mark(self, name: str) -> None:
        if self.marks:
            self.rss[self.marks[-1][0]] = peak_rss_mib()
        self.marks.append((name, time.perf_counter(), time.process_time()))

    def stages(self) -> dict[str, tuple[float, float, float]]:
        out: dict[str, tuple[float, float, float]] = {}
        for (name, w0, c0), (_, w1, c1) in zip(self.marks, self.marks[1:]):
            w, c, _r = out.get(name, (0.0, 0.0, 0.0))
            out[name] = (w + w1 - w0, c + c1 - c0, self.rss.get(name, 0.0))
        return out


def event_marker(clock: Clock):
    def on_event(e: dict[str, Any]) -> None:
        ev = e.get("event")
        if ev == "stage" and e.get("stage") != "execute":
            clock.mark(str(e["stage"]))
        elif ev == "step_started":
            clock.mark(f"step {e['index'] + 1} {e['tool']}")
        elif ev == "step_finished" and e["index"] + 1 == e["total"]:
            clock.mark("store result")  # the executor's return and the store put
        elif ev == "done":
            clock.mark("checkpoint")

    return on_event


def one_turn(svc: Any, song: Path, request: str, out: Path, gain_db: float = 0.0) -> Clock:
    from tools.audio import load

    clock = Clock()
    clock.mark("load")
    if gain_db:
        a = load(song, max_duration_s=svc.max_duration_s, require_signal=True)
        audio_id = svc.import_audio(a.with_samples(a.samples * 10 ** (gain_db / 20)))
    else:
        audio_id = svc.import_audio(song)
    result = svc.turn(request, audio_id=audio_id, on_event=event_marker(clock))
    clock.mark("write")
    if result.output_id:
        svc.export(result.output_id, out, bit_depth=24)
    clock.mark("end")
    return clock


def child(song: Path, request: str, out: Path) -> None:
    """One cold turn as the CLI runs it (imports included); prints the stages as JSON."""
    clock = Clock()
    clock.marks.append(("start-up", _T_START, _C_START))
    from app.runtime import open_service
    from app.settings import Settings

    with open_service(Settings()) as svc:
        clock.rss["start-up"] = peak_rss_mib()
        t = one_turn(svc, song, request, out)
    clock.marks.extend(t.marks)
    clock.rss.update(t.rss)
    print(json.dumps(clock.stages()))


def run_child_process(argv: list[str], env: dict[str, str]) -> tuple[float, float, float, str]:
    """(wall s, CPU s, peak RSS MiB, stdout) of a child process."""
    t = time.perf_counter()
    p = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    stdout = p.stdout.read() if p.stdout else ""
    stderr = p.stderr.read() if p.stderr else ""
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({p.returncode}):\n{stderr[-2000:]}")
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, stdout


def median_stages(
    clocks: list[dict[str, tuple[float, float, float]]],
) -> list[tuple[str, float, float, float]]:
    names: list[str] = []
    for c in clocks:
        names += [n for n in c if n not in names]
    return [
        (n, *(statistics.median(c.get(n, (0.0, 0.0, 0.0))[i] for c in clocks) for i in range(3)))
        for n in names
    ]


def print_stages(
    title: str, rows: list[tuple[str, float, float, float]], totals: list[tuple[float, float]]
) -> None:
    print(f"\n{title}")
    print(f"  {'stage':28}{'wall s':>9}{'CPU s':>9}{'peak RSS MiB at its end':>25}")
    for name, w, c, rss in rows:
        print(f"  {name:28}{w:9.3f}{c:9.3f}{rss:25.0f}")
    tw = [t[0] for t in totals]
    tc = [t[1] for t in totals]
    print(
        f"  {'total (median)':28}{statistics.median(tw):9.3f}{statistics.median(tc):9.3f}"
        f"   runs wall: {' '.join(f'{x:.2f}' for x in tw)}"
    )


def warm_service(args: argparse.Namespace, song: Path, tmpd: Path) -> None:
    from app.runtime import open_service
    from app.settings import Settings

    os.environ["MIXPILOT_DATA_DIR"] = str(tmpd / "service-data")
    with open_service(Settings()) as svc:
        one_turn(svc, song, args.request, tmpd / "warm-up.wav", gain_db=-0.5)  # imports, models, caches
        clocks = [
            one_turn(svc, song, args.request, tmpd / "warm.wav", gain_db=-0.001 * (i + 1))
            for i in range(args.runs)
        ]
        previews = [
            one_preview(svc, song, args.request, gain_db=-0.001 * (i + 101))
            for i in range(args.runs)
            if hasattr(svc, "preview")
        ]  # (a checkout from before the preview has none)
    stages = [c.stages() for c in clocks]
    print_stages(
        "warm service per stage (a new version of the song each run)",
        median_stages(stages),
        [(c.marks[-1][1] - c.marks[0][1], c.marks[-1][2] - c.marks[0][2]) for c in clocks],
    )
    if previews:
        print_stages(
            "warm service preview (Mixpilot.preview: the plan on the loudest 15 s; new version each run)",
            median_stages([c.stages() for c in previews]),
            [(c.marks[-1][1] - c.marks[0][1], c.marks[-1][2] - c.marks[0][2]) for c in previews],
        )


def one_preview(svc: Any, song: Path, request: str, gain_db: float) -> Clock:
    from tools.audio import load

    clock = Clock()
    a = load(song, max_duration_s=svc.max_duration_s, require_signal=True)
    audio_id = svc.import_audio(a.with_samples(a.samples * 10 ** (gain_db / 20)))
    clock.mark("preview (plan on the whole, render 15 s)")
    svc.preview(request, audio_id=audio_id)
    clock.mark("end")
    return clock


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--runs", type=int, default=5, help="warm-service runs (median); 0 skips the warm service"
    )
    ap.add_argument("--cli-runs", type=int, default=5, help="CLI runs (median); 0 skips the CLI")
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--request", default="master it for spotify")
    ap.add_argument("--child", nargs=2, metavar=("SONG", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(Path(args.child[0]), args.request, Path(args.child[1]))
        return
    print(f"load average before: {loadavg()}  ({os.cpu_count()} CPUs)")
    with tempfile.TemporaryDirectory(prefix="mixpilot-bench-turn-") as tmp:
        tmpd = Path(tmp)
        song = tmpd / "song.wav"
        build_song(song, args.minutes)
        print(
            f"song: music fixtures concatenated to {args.minutes:g} min, 44.1 kHz stereo; request: {args.request!r}"
        )
        env = dict(os.environ, MIXPILOT_DATA_DIR=str(tmpd / "cli-data"))
        py = sys.executable
        if args.cli_runs:
            startup, cli, cold = [], [], []
            for i in range(args.cli_runs):
                env["MIXPILOT_DATA_DIR"] = str(tmpd / f"cli-data-{i}")
                startup.append(
                    run_child_process([py, "-m", "app.cli", "plan", args.request, "--json"], env)[:3]
                )
                cli.append(
                    run_child_process(
                        [
                            py,
                            "-m",
                            "app.cli",
                            "process",
                            str(song),
                            args.request,
                            "-o",
                            str(tmpd / "cli-out.wav"),
                            "--quiet",
                        ],
                        env,
                    )[:3]
                )
                env["MIXPILOT_DATA_DIR"] = str(tmpd / f"child-data-{i}")
                w, c, rss, out = run_child_process(
                    [
                        py,
                        __file__,
                        "--request",
                        args.request,
                        "--child",
                        str(song),
                        str(tmpd / "child-out.wav"),
                    ],
                    env,
                )
                cold.append(json.loads(out.strip().splitlines()[-1]))
            print("\nCLI (fresh process and data dir each run; medians)")
            print(f"  {'':34}{'wall s':>9}{'CPU s':>9}{'peak RSS MiB':>14}")
            for name, xs in (
                ("mixpilot plan REQUEST --json", startup),
                ("mixpilot process SONG REQUEST", cli),
            ):
                print(
                    f"  {name:34}{statistics.median(x[0] for x in xs):9.2f}"
                    f"{statistics.median(x[1] for x in xs):9.2f}{statistics.median(x[2] for x in xs):14.0f}"
                    f"   runs wall: {' '.join(f'{x[0]:.2f}' for x in xs)}"
                )
            print_stages(
                "CLI per stage (cold in-process run: the CLI's calls, imports included)",
                median_stages(cold),
                [(sum(v[0] for v in c.values()), sum(v[1] for v in c.values())) for c in cold],
            )
        if args.runs:
            warm_service(args, song, tmpd)
    print(f"\nload average after: {loadavg()}")


if __name__ == "__main__":
    main()
