"""Tool speed on a 3-minute 44.1 kHz stereo song: `genre_preset` (goal <= 1 s), `master`, and the
other steps of "clean and master this in a pop style" (`denoise`, strength 0.5 as that plan asks).

    .venv/bin/python bench/tools_speed.py [--runs 5] [--tools genre_preset,master,denoise] [--stages]

The song: Kevin MacLeod's "Vibe Ace" (../shared/fixtures/music) looped to 3:00. Each tool runs as
`mixpilot apply SONG --tool NAME` runs it (the registry's callable on loaded audio, default params;
genre_preset with genre=pop, master with platform=spotify, denoise with strength=0.5), once to warm
up, then ``--runs`` times. Prints the median wall and CPU seconds (this process, all threads: the
fair figure when the machine is busy), every run, and the load average before and after (the
machine is shared: rerun when it is high).

``--stages`` also runs `genre_preset` with its two threads' work done one after the other and prints
the median CPU seconds of each stage (the functions it calls, timed where they are called): what
is left to speed up, and whose code it is.

``--loudness`` prints the median wall and CPU seconds of one integrated-loudness measurement of the
song (`tools.loudness.integrated_lufs`), by the compiled K-weighted pass (numba loaded, as in a warm
service) and by the scipy path (a fresh CLI's, before numba is loaded).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.mastering import MUSIC, TRACK, looped  # noqa: E402
from tools.registry import get_tool  # noqa: E402

PARAMS: dict[str, dict[str, Any]] = {
    "genre_preset": {"genre": "pop"},
    "master": {"platform": "spotify"},
    "denoise": {"strength": 0.5},
}
GOALS = {"genre_preset": 1.0, "master": 0.5}


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" ({os.cpu_count()} CPUs)"


class _Serial:
    """A stand-in for genre_preset's thread pool that runs each task at once, in the caller's thread."""

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        return [fn(v) for v in items]

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        done: Future[Any] = Future()
        done.set_result(fn(*args))
        return done


def genre_preset_stages(song: Any, runs: int) -> None:
    """Median CPU seconds per stage of `genre_preset` (pop), its pool's tasks run one after the other."""
    import tools.loudness
    from tools import dsp
    from tools import genre_preset as gp

    stages = {
        "tone profile (long-term spectrum)": (dsp, "third_octave_levels"),
        "tone filter (FIR)": (dsp, "apply_fir"),
        "compressor": (dsp, "compress"),
        "width": (dsp, "stereo_width"),
        "loudness (tools/loudness.py)": (tools.loudness, "integrated_lufs"),
    }
    spent: dict[str, float] = defaultdict(float)
    originals = {label: getattr(mod, name) for label, (mod, name) in stages.items()}

    def timed(label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            c = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[label] += time.process_time() - c

        return run

    params = gp.GenrePresetParams(genre="pop")
    per_run: dict[str, list[float]] = defaultdict(list)
    try:
        for label, (mod, name) in stages.items():
            setattr(mod, name, timed(label, originals[label]))
        gp._run(song, params, _Serial())  # type: ignore[arg-type]
        for _ in range(runs):
            spent.clear()
            c = time.process_time()
            gp._run(song, params, _Serial())  # type: ignore[arg-type]
            total = time.process_time() - c
            for label in stages:
                per_run[label].append(spent[label])
            per_run["rest"].append(total - sum(spent.values()))
            per_run["total (one thread)"].append(total)
    finally:
        for label, (mod, name) in stages.items():
            setattr(mod, name, originals[label])
    for label, values in per_run.items():
        print(f"  {label:36} {statistics.median(values):.3f} s CPU")


def loudness_per_call(song: Any, runs: int) -> None:
    """Median seconds of one integrated loudness of `song`, compiled pass and scipy path."""
    from tools import dsp
    from tools.loudness import _gated_integrated, k_weighted_blocks

    dsp.warm_compiled()
    dsp._WARMING[0].join()
    for compiled in (True, False):
        blocks = k_weighted_blocks(song, compiled=compiled)  # warm-up
        wall, cpu = [], []
        for _ in range(runs):
            t, c = time.perf_counter(), time.process_time()
            blocks = k_weighted_blocks(song, compiled=compiled)
            lufs = _gated_integrated(blocks.window_mean_power(4, blocks.hop // blocks.chunk))
            wall.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        path = "compiled" if compiled else "scipy   "
        print(
            f"  loudness, {path} median {statistics.median(wall):.3f} s wall, "
            f"{statistics.median(cpu):.3f} s CPU ({lufs:.4f} LUFS); runs {' '.join(f'{x:.3f}' for x in wall)}"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tools", default="genre_preset,master,denoise")
    ap.add_argument("--stages", action="store_true", help="genre_preset's CPU per stage")
    ap.add_argument("--loudness", action="store_true", help="one integrated loudness, compiled and scipy")
    args = ap.parse_args()
    if not MUSIC.is_dir():
        sys.exit(f"needs the real recordings in {MUSIC}")
    song = looped(MUSIC / TRACK)
    print(f"song: {TRACK} looped to 3:00, 44.1 kHz stereo; load average before: {load_average()}")
    if args.loudness:
        print("integrated loudness of the song, one call:")
        loudness_per_call(song, args.runs)
    for name in filter(None, args.tools.split(",")):
        tool, params = get_tool(name), PARAMS.get(name, {})
        tool(song, params)  # warm-up: imports, compiled kernels, caches
        wall, cpu = [], []
        for _ in range(args.runs):
            t, c = time.perf_counter(), time.process_time()
            tool(song, params)
            wall.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        goal = GOALS.get(name)
        print(
            f"{name:14} median {statistics.median(wall):.2f} s wall, {statistics.median(cpu):.2f} s CPU"
            f"{f' (goal <= {goal} s)' if goal else ''}; runs {' '.join(f'{x:.2f}' for x in wall)}"
        )
    if args.stages:
        print("genre_preset stages, one thread:")
        genre_preset_stages(song, args.runs)
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
