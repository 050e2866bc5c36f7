"""Seconds of CPU each tool spends per minute of 44.1 kHz stereo audio, on this machine.

The figures behind `agents.progress.STEP_COST` (what a step weighs in a turn's progress bar):
each available tool runs with its default params on a minute of a real music fixture, the CPU
time of the best of `--runs` is printed, per minute of audio, next to the table's value.

    python bench/step_costs.py [--runs 2] [--seconds 60]
"""

from __future__ import annotations

import argparse
import os
import resource
from pathlib import Path

import numpy as np

from agents.progress import STEP_COST
from tools.audio import Audio, load
from tools.registry import ToolContext, default_registry

FIXTURE = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "fixtures"
    / "music"
    / "Kevin_MacLeod_-_Vibe_Ace.flac"
)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args()
    song = load(FIXTURE)
    frames = int(args.seconds * song.sample_rate)
    reps = int(np.ceil(frames / song.frames))
    x = np.tile(song.samples, (1, reps))[:, :frames]
    if x.shape[0] == 1:
        x = np.vstack([x, x])
    audio = Audio(np.ascontiguousarray(x, dtype=np.float32), song.sample_rate)
    minutes = audio.frames / audio.sample_rate / 60.0
    ctx_inputs = {"voice": audio, "reference": audio, "music": audio}
    print(f"load average {os.getloadavg()[0]:.2f}; {args.seconds:g} s stereo, best of {args.runs}")
    print(f"{'tool':18} {'cpu s/min':>10} {'table':>8}")
    for name, spec in sorted(default_registry().items()):
        ok, why = spec.availability()
        if not ok:
            print(f"{name:18} {'unavailable':>10} {STEP_COST.get(name, float('nan')):8.2f}  ({why})")
            continue
        best = float("inf")
        for _ in range(max(1, args.runs)):
            t0 = _cpu()
            try:
                spec(audio, {}, ToolContext(inputs=ctx_inputs))
            except Exception as exc:  # a bench reports and goes on
                print(f"{name:18} failed: {exc}")
                break
            best = min(best, _cpu() - t0)
        if best < float("inf"):
            print(f"{name:18} {best / minutes:10.2f} {STEP_COST.get(name, float('nan')):8.2f}", flush=True)


if __name__ == "__main__":
    main()
