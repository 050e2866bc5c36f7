"""dereverb: CPU seconds per minute of 44.1 kHz stereo music, and quality on reverberant speech.

    .venv/bin/python bench/dereverb.py [--seconds 60] [--runs 2] [--nara]

Speed: the `dereverb` tool (default params) on a stereo music fixture tiled to ``--seconds``; the
CPU time of the best of ``--runs``, per minute of audio, with the load average (shared machine:
noisy). Quality: speech fixtures convolved with synthetic exponential-decay RIRs (RT60 0.6 s and
0.9 s, direct path + 50 ms kept as the target, as tests/test_dereverb.py does); per case the
SI-SDR against that early target and against the dry speech, and PESQ (wb) and STOI of channel 0
against the target, for the input and the output. ``--nara`` adds the same figures for nara_wpe's
``wpe`` on the same STFT (the reference estimator; its CPU time too).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import fftconvolve

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import LOCAL_FIXTURES, shared_fixtures_dir
from tools import dsp
from tools import metrics as M
from tools.audio import Audio, resample
from tools.registry import get_tool

MUSIC = "music/Kevin_MacLeod_-_Vibe_Ace.flac"


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def rir(sr: int, rt60: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(full, early) synthetic RIR: unit direct path, then exponentially decaying noise from 2 ms."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rt60 * sr)) / sr
    h = 0.05 * rng.standard_normal(t.size) * np.exp(-6.9 * t / rt60)
    h[: int(0.002 * sr)] = 0
    h[0] = 1.0
    early = h.copy()
    early[int(0.05 * sr) :] = 0
    return h, early


def reverberant_set() -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray, int]]:
    """(name, dry (C, N), early target (C, N), wet (C, N), sr): mono 16 kHz and stereo 44.1 kHz."""
    cases = []
    files = [(LOCAL_FIXTURES / "speech_female_16k.flac", 1)]
    speech = shared_fixtures_dir() / "speech"
    files += [(speech / f, 2) for f in ("speech-female.flac", "speech-male.flac")]
    for path, channels in files:
        if not path.is_file():
            continue
        x, sr = sf.read(path, dtype="float64")
        for rt60 in (0.6, 0.9):
            wet, target = [], []
            for ch in range(channels):
                h, early = rir(sr, rt60, seed=ch)
                wet.append(fftconvolve(x, h)[: x.size])
                target.append(fftconvolve(x, early)[: x.size])
            dry = np.tile(x, (channels, 1))
            name = f"{path.stem[:18]} {sr // 1000}k {channels}ch rt{rt60:g}"
            cases.append((name, dry, np.array(target), np.array(wet), sr))
    return cases


def quality(y: np.ndarray, dry: np.ndarray, target: np.ndarray, sr: int) -> tuple[float, float, float, float]:
    """(SI-SDR vs early target, SI-SDR vs dry: channel means; PESQ wb, STOI of channel 0 vs target)."""
    sdr_t = float(np.mean([M.si_sdr(y[c], target[c]) for c in range(y.shape[0])]))
    sdr_d = float(np.mean([M.si_sdr(y[c], dry[c]) for c in range(y.shape[0])]))
    y16 = resample(y[:1], sr, 16000)[0] if sr != 16000 else y[0]
    t16 = resample(target[:1], sr, 16000)[0] if sr != 16000 else target[0]
    return sdr_t, sdr_d, M.pesq_wb(y16, t16, 16000), M.stoi(y16, t16, 16000)


def nara(x: np.ndarray, sr: int, strength: float = 0.5, iterations: int = 4) -> np.ndarray:
    """nara_wpe's `wpe` on the tool's STFT, taps, delay and removal (the pre-rewrite tool)."""
    from nara_wpe.wpe import wpe

    n_fft = 1 << int(np.round(np.log2(0.064 * sr)))
    hop = n_fft // 4
    xp = dsp.stft_pad(x, n_fft, hop)
    y = dsp.tight_stft(xp, n_fft, hop).transpose(2, 0, 1)
    out = np.empty_like(y)
    for lo in range(0, y.shape[0], 64):
        block = np.ascontiguousarray(y[lo : lo + 64])
        d = wpe(block, taps=int(round(8 + 24 * strength)), delay=2, iterations=iterations)
        out[lo : lo + 64] = block - min(1.0, 2.0 * strength) * (block - d)
    res: np.ndarray = dsp.tight_istft(out.transpose(1, 2, 0), n_fft, hop, xp.shape[-1])
    return res[:, n_fft : n_fft + x.shape[-1]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--nara", action="store_true", help="also the nara_wpe reference")
    args = ap.parse_args()
    methods: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
        "ours": lambda x, sr: get_tool("dereverb")(Audio(x.astype(np.float32), sr)).audio.samples.astype(
            np.float64
        )
    }
    if args.nara:
        methods["nara_wpe"] = nara

    song, sr = sf.read(shared_fixtures_dir() / MUSIC, dtype="float64", always_2d=True)
    frames = int(args.seconds * sr)
    x = np.tile(song.T, (1, int(np.ceil(frames / song.shape[0]))))[:, :frames]
    print(f"load average {os.getloadavg()[0]:.2f}; {args.seconds:g} s stereo {sr} Hz, best of {args.runs}")
    for name, fn in methods.items():
        best = float("inf")
        for _ in range(max(1, args.runs)):
            t0 = _cpu()
            fn(x, sr)
            best = min(best, _cpu() - t0)
        print(f"{name:9} {best / (args.seconds / 60):7.1f} s CPU per minute of stereo")

    print(f"\n{'case':32} {'method':9} {'SI-SDR tgt':>10} {'SI-SDR dry':>10} {'PESQ':>6} {'STOI':>6}")
    rows: dict[str, list[tuple[float, float, float, float]]] = {}
    for name, dry, target, wet, sr in reverberant_set():
        outs = {"input": wet, **{m: fn(wet, sr) for m, fn in methods.items()}}
        for m, y in outs.items():
            q = quality(y, dry, target, sr)
            rows.setdefault(m, []).append(q)
            print(f"{name:32} {m:9} {q[0]:10.2f} {q[1]:10.2f} {q[2]:6.3f} {q[3]:6.3f}")
    for m, qs in rows.items():
        mean = np.mean(qs, axis=0)
        print(f"{'mean':32} {m:9} {mean[0]:10.2f} {mean[1]:10.2f} {mean[2]:6.3f} {mean[3]:6.3f}")


if __name__ == "__main__":
    main()
