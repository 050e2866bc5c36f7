"""Tool speed on a 3-minute 44.1 kHz stereo song: `genre_preset` (goal <= 1 s), `master`, and the
other steps of "clean and master this in a pop style" (`denoise`, strength 0.5 as that plan asks).

    .venv/bin/python bench/tools_speed.py [--runs 5] [--tools genre_preset,master,denoise]

The song: Kevin MacLeod's "Vibe Ace" (../shared/fixtures/music) looped to 3:00. Each tool runs as
`mixpilot apply SONG --tool NAME` runs it (the registry's callable on loaded audio, default params;
genre_preset with genre=pop, master with platform=spotify, denoise with strength=0.5), once to warm
up, then ``--runs`` times. Prints the median wall and CPU seconds (this process, all threads: the
fair figure when the machine is busy), every run, and the load average before and after (the
machine is shared: rerun when it is high).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.mastering import MUSIC, TRACK, looped  # noqa: E402
from tools.registry import get_tool  # noqa: E402

PARAMS = {"genre_preset": {"genre": "pop"}, "master": {"platform": "spotify"}, "denoise": {"strength": 0.5}}
GOALS = {"genre_preset": 1.0, "master": 0.5}


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" ({os.cpu_count()} CPUs)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tools", default="genre_preset,master,denoise")
    args = ap.parse_args()
    if not MUSIC.is_dir():
        sys.exit(f"needs the real recordings in {MUSIC}")
    song = looped(MUSIC / TRACK)
    print(f"song: {TRACK} looped to 3:00, 44.1 kHz stereo; load average before: {load_average()}")
    for name in args.tools.split(","):
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
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
