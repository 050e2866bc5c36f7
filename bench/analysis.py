"""Benchmark: median time of `tools.analysis.analyze` on a 3-minute 44.1 kHz stereo signal.

    .venv/bin/python bench/analysis.py

Uses a real music clip from ../shared/fixtures/music looped to 3 minutes when present (else
synthetic noise with bursts). Also times the loudness pieces and compares the pruned true-peak
search with the exhaustive one. Goal: analyze() median under 0.5 s on the 2-core dev machine.
Timings on a shared machine are noisy: compare medians, not single runs.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tools.analysis import analyze  # noqa: E402
from tools.audio import Audio, load  # noqa: E402
from tools.loudness import k_weighted_blocks, loudness_from_blocks, true_peak_linear  # noqa: E402

GOAL_S = 0.5
SR = 44100
SECONDS = 180


def signal() -> tuple[Audio, str]:
    clip = REPO.parent / "shared" / "fixtures" / "music" / "Kevin_MacLeod_-_Vibe_Ace.flac"
    if clip.is_file():
        a = load(clip).resample(SR).to_channels(2)
        reps = -(-SR * SECONDS // a.frames)
        return Audio(np.tile(a.samples, (1, reps))[:, : SR * SECONDS], SR), f"{clip.name} looped"
    rng = np.random.default_rng(0)
    x = 0.1 * rng.standard_normal((2, SR * SECONDS)).astype(np.float32)
    x[:, :: SR // 2] *= 8.0
    return Audio(x, SR), "synthetic noise"


def timeit(fn, runs: int = 7) -> tuple[float, list[float]]:
    fn()  # warm-up: imports, filter design caches, page faults
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def main() -> None:
    audio, what = signal()
    print(f"signal: {what}, {audio.duration_s:.0f} s, {audio.sample_rate} Hz, {audio.channels} ch")
    med, times = timeit(lambda: analyze(audio))
    print(
        f"analyze: median {med:.3f} s over {len(times)} runs (min {min(times):.3f}, max {max(times):.3f}); "
        f"goal < {GOAL_S} s: {'MET' if med < GOAL_S else 'NOT MET'}"
    )
    kb, _ = timeit(lambda: loudness_from_blocks(k_weighted_blocks(audio)), 5)
    tp, _ = timeit(lambda: true_peak_linear(audio), 5)
    tpx, _ = timeit(lambda: true_peak_linear(audio, exhaustive=True), 3)
    same = true_peak_linear(audio) == true_peak_linear(audio, exhaustive=True)
    print(f"  loudness (K-filter, gating, M/S max, LRA): {kb:.3f} s")
    print(f"  true peak pruned: {tp:.3f} s, exhaustive: {tpx:.3f} s ({tpx / tp:.1f}x), identical: {same}")


if __name__ == "__main__":
    main()
