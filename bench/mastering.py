"""Mastering speed and accuracy: our `master` vs Matchering 2 on the same 3-minute track.

    .venv/bin/pip install 'mixpilot[bench]'     # matchering
    .venv/bin/python bench/mastering.py [--runs 5]

Track: a real clip from ../shared/fixtures/music looped to 3:00, 44.1 kHz stereo. Matchering
needs a reference: another real clip looped to 3:00; its target loudness is therefore the
reference's integrated loudness, and ours is given the same target (ceiling −1 dBTP), so both
do the same job. Each run is file in → file out (load, process, 24-bit save) for both.
Loudness errors are measured with ffmpeg's ebur128 (tests/ffmeter.py). Prints the median of
N runs, the ratio, loudness errors, true peaks and peak memory (tracemalloc, Python-side
allocations incl. numpy) of one run each.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.ffmeter import ebur128  # noqa: E402
from tools.audio import Audio, load, save  # noqa: E402
from tools.loudness import integrated_lufs  # noqa: E402
from tools.registry import get_tool  # noqa: E402

MUSIC = ROOT.parent / "shared" / "fixtures" / "music"
TRACK = "Kevin_MacLeod_-_Vibe_Ace.flac"
REFERENCE = "Karissa_Hobbs_-_Lets_Go_Fishin.flac"


def looped(path: Path, seconds: float = 180.0) -> Audio:
    a = load(path).resample(44100).to_channels(2)
    n = int(seconds * 44100)
    return a.with_samples(np.tile(a.samples, (1, -(-n // a.frames)))[:, :n])


def ours(src: Path, dst: Path, target: float) -> None:
    a = load(src)
    r = get_tool("master")(a, {"target_lufs": target, "true_peak_dbtp": -1.0})
    save(r.audio, dst, bit_depth=24)


def theirs(src: Path, ref: Path, dst: Path) -> None:
    import matchering as mg

    mg.log(lambda *_: None)
    mg.process(target=str(src), reference=str(ref), results=[mg.pcm24(str(dst))])


def timed(fn, runs: int) -> tuple[float, list[float], float]:
    """(median wall s, every run's wall s, median CPU s: this process, all threads; the fair figure
    when the machine is busy)."""
    times, cpu = [], []
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(times), times, statistics.median(cpu)


def peak_mem_mb(fn) -> float:
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    if not MUSIC.is_dir():
        sys.exit(f"needs the real recordings in {MUSIC}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        track, ref = looped(MUSIC / TRACK), looped(MUSIC / REFERENCE)
        src, refp = tmp / "track.wav", tmp / "reference.wav"
        sf.write(src, track.samples.T, 44100, subtype="PCM_24")
        sf.write(refp, ref.samples.T, 44100, subtype="PCM_24")
        target = integrated_lufs(load(refp))
        out_ours, out_mg = tmp / "ours.wav", tmp / "matchering.wav"
        print(
            f"track: {TRACK} looped to 3:00 (44.1 kHz stereo); reference: {REFERENCE} looped, {target:.2f} LUFS"
        )
        t_ours, all_ours, c_ours = timed(lambda: ours(src, out_ours, target), args.runs)
        t_mg, all_mg, c_mg = timed(lambda: theirs(src, refp, out_mg), args.runs)
        a = load(src)
        t_tool, _, c_tool = timed(
            lambda: get_tool("master")(a, {"target_lufs": target, "true_peak_dbtp": -1.0}), args.runs
        )
        m_ours, m_mg = ebur128(out_ours), ebur128(out_mg)
        mem_ours = peak_mem_mb(lambda: ours(src, out_ours, target))
        mem_mg = peak_mem_mb(lambda: theirs(src, refp, out_mg))
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    print(
        f"{'':12}{'median s':>10}{'CPU s':>8}{'runs s':>34}{'LUFS':>9}{'error LU':>10}{'TP dBTP':>9}{'peak MiB':>10}"
    )
    for name, t, c, runs, m, mem in (
        ("mixpilot", t_ours, c_ours, all_ours, m_ours, mem_ours),
        ("matchering", t_mg, c_mg, all_mg, m_mg, mem_mg),
    ):
        print(
            f"{name:12}{t:10.2f}{c:8.2f}{' '.join(f'{x:.2f}' for x in runs):>34}{m.integrated_lufs:9.2f}"
            f"{m.integrated_lufs - target:+10.2f}{m.true_peak_dbtp:9.2f}{mem:10.0f}"
        )
    print(f"the master tool alone (no file I/O): {t_tool:.2f} s wall, {c_tool:.2f} s CPU (median)")
    print(f"time ratio mixpilot/matchering: {t_ours / t_mg:.2f} wall, {c_ours / c_mg:.2f} CPU (goal <= 0.15)")
    print(
        f"|loudness error|: mixpilot {abs(m_ours.integrated_lufs - target):.2f} LU, "
        f"matchering {abs(m_mg.integrated_lufs - target):.2f} LU (ffmpeg ebur128)"
    )


if __name__ == "__main__":
    main()
