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

Transparency (skip with ``--no-transparency``): every music fixture (as it is, 44.1 kHz stereo) is
mastered by Matchering against the same reference; its output's integrated loudness (our meter) is
then the target of our `master` (ceiling −1 dBTP) in both modes, ``transparent`` and ``loud``. Each
output is scored by SI-SDR against the input (`tools.metrics.si_sdr_channels`: one gain for all
channels, so level differences are not errors; Matchering's EQ toward the reference counts as a
change, as it is one). Then the drum-and-bass loop at −9 LUFS in both modes (Matchering has no
loudness target to give it).
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
CAP_DB = (
    60.0  # a pure gain change scores ~150 dB (float rounding): capped so that one clip cannot carry a mean
)


def looped(path: Path, seconds: float = 180.0) -> Audio:
    a = load(path).resample(44100).to_channels(2)
    n = int(seconds * 44100)
    return a.with_samples(np.tile(a.samples, (1, -(-n // a.frames)))[:, :n])


SPLIT: dict[str, list[float]] = {"load": [], "master": [], "save": []}  # wall s of each part of `ours`


def ours(src: Path, dst: Path, target: float) -> None:
    t0 = time.perf_counter()
    a = load(src)
    t1 = time.perf_counter()
    r = get_tool("master")(a, {"target_lufs": target, "true_peak_dbtp": -1.0})
    t2 = time.perf_counter()
    save(r.audio, dst, bit_depth=24)
    for part, t in zip(SPLIT, (t1 - t0, t2 - t1, time.perf_counter() - t2)):
        SPLIT[part].append(t)


def theirs(src: Path, ref: Path, dst: Path) -> None:
    import matchering as mg

    mg.log(lambda *_: None)
    mg.process(target=str(src), reference=str(ref), results=[mg.pcm24(str(dst))])


def transparency(ref: Path, tmp: Path) -> None:
    """SI-SDR (dB) against the input at the loudness Matchering reaches, per music fixture and mean."""
    from tools.metrics import si_sdr_channels

    master = get_tool("master")
    rows = []
    print(f"\ntransparency: SI-SDR vs input (dB) at Matchering's loudness (reference {REFERENCE} looped)")
    print(f"{'fixture':44}{'LUFS':>8}{'matchering':>12}{'transparent':>13}{'loud':>8}")
    for path in sorted(MUSIC.glob("*.flac")):
        a = load(path).resample(44100).to_channels(2)
        src, out = tmp / "fixture.wav", tmp / "fixture_mg.wav"
        sf.write(src, a.samples.T, 44100, subtype="FLOAT")
        theirs(src, ref, out)
        mg = load(out)
        level = integrated_lufs(mg)
        row = [si_sdr_channels(mg.samples, a.samples)]
        for mode in ("transparent", "loud"):
            r = master(a, {"target_lufs": level, "true_peak_dbtp": -1.0, "mode": mode})
            row.append(si_sdr_channels(r.audio.samples, a.samples))
        rows.append(row)
        print(f"{path.stem[:43]:44}{level:8.2f}" + "".join(f"{v:{w}.2f}" for v, w in zip(row, (12, 13, 8))))
    for name, fn in (("mean", np.mean), ("median", np.median)):
        v = fn(np.minimum(np.array(rows), CAP_DB), axis=0)
        print(
            f"{name + f' (each capped at {CAP_DB:.0f} dB)':52}"
            + "".join(f"{x:{w}.2f}" for x, w in zip(v, (12, 13, 8)))
        )
    dnb = load(MUSIC / "admiralbob77_-_Choice_-_Drum-bass.flac")
    scores = [
        si_sdr_channels(
            master(dnb, {"target_lufs": -9.0, "true_peak_dbtp": -1.0, "mode": mode}).audio.samples,
            dnb.samples,
        )
        for mode in ("transparent", "loud")
    ]
    print(f"drum-and-bass loop at -9 LUFS: transparent {scores[0]:.2f} dB, loud {scores[1]:.2f} dB")


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
    ap.add_argument("--no-transparency", action="store_true", help="timings only")
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
        if not args.no_transparency:
            transparency(refp, tmp)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    print(
        f"{'':12}{'median s':>10}{'CPU s':>8}  {'runs s':>34}{'LUFS':>9}{'error LU':>10}{'TP dBTP':>9}{'peak MiB':>10}"
    )
    for name, t, c, runs, m, mem in (
        ("mixpilot", t_ours, c_ours, all_ours, m_ours, mem_ours),
        ("matchering", t_mg, c_mg, all_mg, m_mg, mem_mg),
    ):
        print(
            f"{name:12}{t:10.2f}{c:8.2f}  {' '.join(f'{x:.2f}' for x in runs):>34}{m.integrated_lufs:9.2f}"
            f"{m.integrated_lufs - target:+10.2f}{m.true_peak_dbtp:9.2f}{mem:10.0f}"
        )
    print(f"the master tool alone (no file I/O): {t_tool:.2f} s wall, {c_tool:.2f} s CPU (median)")
    print(
        "mixpilot file in -> out by part (median wall s): "
        + ", ".join(f"{k} {statistics.median(v[: args.runs]):.3f}" for k, v in SPLIT.items() if v)
    )
    print(f"time ratio mixpilot/matchering: {t_ours / t_mg:.2f} wall, {c_ours / c_mg:.2f} CPU (goal <= 0.15)")
    print(
        f"|loudness error|: mixpilot {abs(m_ours.integrated_lufs - target):.2f} LU, "
        f"matchering {abs(m_mg.integrated_lufs - target):.2f} LU (ffmpeg ebur128)"
    )


if __name__ == "__main__":
    main()
