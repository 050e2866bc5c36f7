"""Benchmark the Op-GAN `restore` tool against the degraded input and the DSP-only chain.

    .venv/bin/python bench/restore.py [--seconds 4] [--per-set 0] [--families a,b] [--json out.json]

Evaluation clips (never trained on, see models/train_opgan.py EVAL_GLOBS): ``music/*``,
``speech/librispeech_*`` and the EBU SQAM ``instruments/a*.flac`` from ../shared/fixtures,
each cut to ``--seconds`` from its middle, mono, at the model rate (16 kHz), peak 0.5.
Each is degraded with every family of `models.degrade` at severity 0.5 (seeded; the
real_noise family uses recordings held out of training). Printed: mean SI-SDR (dB) of the
degraded input, of the DSP chain (denoise → declip → bandwidth_extension, default
params, through the registry) and of `restore`; the mean improvement; on how many
families restore beats the chain; speech and music means; inference RTF on this CPU
(mono 16 kHz, 10 s, median of 3). The machine is shared: timings are noisy.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from models.degrade import FAMILIES, NoiseBank, apply_family  # noqa: E402
from models.train_opgan import EVAL_NOISES  # noqa: E402
from tools.audio import Audio, load, resample  # noqa: E402
from tools.metrics import si_sdr  # noqa: E402
from tools.registry import get_tool  # noqa: E402

FIXTURES = REPO.parent / "shared" / "fixtures"
SR = 16000


def eval_clips(seconds: float, per_set: int) -> list[tuple[str, str, np.ndarray]]:
    sets = (("speech", "speech/librispeech_*"), ("music", "music/*.flac"), ("music", "instruments/a[0-9]*.flac"))
    out = []
    for kind, g in sets:
        paths = sorted(FIXTURES.glob(g))
        if per_set:
            paths = paths[:per_set]
        for p in paths:
            a = load(p).mono()
            x = a.samples[0] if a.sample_rate == SR else resample(a.samples, a.sample_rate, SR)[0]
            n = int(seconds * SR)
            i = max(0, x.size // 2 - n // 2)
            x = x[i: i + n]
            x = x / (np.max(np.abs(x)) + 1e-9) * 0.5
            out.append((kind, str(p.relative_to(FIXTURES)), x.astype(np.float32)))
    return out


def dsp_chain(x: np.ndarray) -> np.ndarray:
    a = Audio(x, SR)
    for name in ("denoise", "declip", "bandwidth_extension"):
        a = get_tool(name)(a, {}).audio
    return a.samples[0]


def rtf(seconds: float = 10.0, threads: int | None = None) -> float:
    import torch

    old = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        rng = np.random.default_rng(0)
        a = Audio((0.1 * rng.standard_normal(int(seconds * SR))).astype(np.float32), SR)
        tool = get_tool("restore")
        tool(a)  # load + warm up
        times = []
        for _ in range(3):
            t = time.perf_counter()
            tool(a)
            times.append(time.perf_counter() - t)
        return float(np.median(times)) / seconds
    finally:
        torch.set_num_threads(old)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=4.0, help="excerpt length per clip")
    ap.add_argument("--per-set", type=int, default=0, help="clips per set (0 = all)")
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--json", type=Path, default=None, help="write all rows here")
    args = ap.parse_args(argv)
    if not FIXTURES.is_dir():
        print(f"evaluation clips not found at {FIXTURES}; nothing to measure")
        return 0
    families = [f for f in args.families.split(",") if f]
    bank = NoiseBank([p for p in sorted((FIXTURES / "noise").glob("*")) if p.name in EVAL_NOISES], SR)
    restore = get_tool("restore")
    ok, why = restore.availability()
    if not ok:
        print(f"restore unavailable: {why}")
        return 1
    clips = eval_clips(args.seconds, args.per_set)
    print(f"{len(clips)} evaluation clips × {len(families)} families, {args.seconds:g} s each, mono {SR} Hz")
    rows = []
    for fi, fam in enumerate(families):
        for ci, (kind, name, x) in enumerate(clips):
            rng = np.random.default_rng(1000 * fi + ci)
            y = apply_family(x, SR, fam, rng, bank, severity=0.5)
            d = dsp_chain(y)
            r = restore(Audio(y, SR), {}).audio.samples[0]
            rows.append({"family": fam, "kind": kind, "clip": name, "degraded": si_sdr(y, x),
                         "dsp": si_sdr(d, x), "restore": si_sdr(r, x)})
        print(f"  {fam} done", file=sys.stderr, flush=True)

    def mean(sel, key):
        return float(np.mean([r[key] for r in sel]))

    print(f"\n{'family':<13}{'degraded':>10}{'dsp chain':>11}{'restore':>9}{'Δ restore':>11}{'Δ dsp':>8}  restore>dsp")
    beats = 0
    for fam in families:
        sel = [r for r in rows if r["family"] == fam]
        dg, ds, rs = mean(sel, "degraded"), mean(sel, "dsp"), mean(sel, "restore")
        beats += rs > ds
        print(f"{fam:<13}{dg:>10.2f}{ds:>11.2f}{rs:>9.2f}{rs - dg:>+11.2f}{ds - dg:>+8.2f}  {'yes' if rs > ds else 'no'}")
    gain = mean(rows, "restore") - mean(rows, "degraded")
    dsp_gain = mean(rows, "dsp") - mean(rows, "degraded")
    print(f"\nmean SI-SDR improvement: restore {gain:+.2f} dB, dsp chain {dsp_gain:+.2f} dB (goal: restore ≥ +3 dB)")
    print(f"restore beats the dsp chain on {beats}/{len(families)} families (goal: ≥ half)")
    for kind, goal in (("speech", 7.0), ("music", 5.0)):
        sel = [r for r in rows if r["kind"] == kind]
        if sel:
            print(f"  {kind}: restore {mean(sel, 'restore') - mean(sel, 'degraded'):+.2f} dB "
                  f"(research goal +{goal:g} dB), dsp {mean(sel, 'dsp') - mean(sel, 'degraded'):+.2f} dB")
    r1, rd = rtf(threads=1), rtf()
    print(f"inference RTF, mono 16 kHz, 10 s: {r1:.3f} (1 thread), {rd:.3f} (default threads) (goal ≤ 0.5)")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "gain_db": gain, "dsp_gain_db": dsp_gain, "beats": beats,
                                         "rtf_1thread": r1, "rtf": rd}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
