"""Separation quality and speed for every engine installed here: the DSP fallback and each Demucs model.

    .venv/bin/python bench/separate.py [--seconds 30] [--device cpu]

For each MUSDB18 excerpt in ../shared/fixtures/stems (mixture + true vocals/drums/bass/other)
and each engine, prints per-stem SI-SDR (dB) of the estimate against the true stem, the
"mixture as the estimate" baseline for the vocals, and the real-time factor (wall seconds per
audio second; the model load is not counted). Demucs models that are not installed are named,
with the command that installs them (`mixpilot models pull NAME`); the weights are found
through the same settings the CLI uses (MIXPILOT_MODELS_DIR, MIXPILOT_DEMUCS_DIR, ...).

Published reference: HT-Demucs 9.0 dB average SDR on MUSDB-HQ test (museval SDR, full tracks;
not directly comparable with SI-SDR on two 30 s excerpts).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tools.audio import load  # noqa: E402

SHARED = Path(os.environ.get("MIXPILOT_SHARED_FIXTURES", REPO.parent / "shared" / "fixtures"))
STEMS = ("vocals", "drums", "bass", "other")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="excerpt length per track")
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--memory-probe",
        type=float,
        default=None,
        metavar="MINUTES",
        help="instead: peak memory and RTF of the tool's Demucs path on MINUTES of stereo 44.1 kHz noise, "
        "with an HTDemucs at the package's class defaults and random weights (cost only)",
    )
    args = ap.parse_args()
    if args.memory_probe is not None:
        return memory_probe(args.memory_probe, args.device)

    from app.settings import Settings
    from models.weights import current_sources, use_sources
    from tools.metrics import si_sdr
    from tools.registry import ToolContext, default_registry

    use_sources(Settings().weight_sources())
    src = current_sources()
    engines: list[tuple[str, str]] = [("dsp", "dsp")]
    print("engines:")
    print("  dsp: the REPET-SIM + HPSS fallback (always)")
    for state in src.list_models():
        if state.card is None or state.card.kind != "demucs":
            continue
        if state.installed:
            engines.append((state.name, "demucs"))
            print(f"  {state.name}: installed ({state.path})")
        else:
            print(
                f"  {state.name}: NOT INSTALLED: `mixpilot models pull {state.name}` ({state.card.size_mb:.0f} MB)"
            )
    tracks = sorted((SHARED / "stems").glob("*/mixture.flac")) if (SHARED / "stems").is_dir() else []
    if not tracks:
        print(f"no MUSDB excerpts under {SHARED / 'stems'}")
        return 1
    spec = default_registry()["separate"]
    ctx = ToolContext(device=args.device)
    print(
        f"\nSI-SDR (dB) per stem against the true stem; first {args.seconds:g} s of each track; device {args.device}"
    )
    print(
        f"  {'track':30s} {'engine':>12s} {'mix→voc':>8s} "
        + " ".join(f"{s:>7s}" for s in STEMS)
        + f" {'RTF':>6s}"
    )
    for mixf in tracks:
        mix = load(mixf)
        refs = {s: load(mixf.parent / f"{s}.flac") for s in STEMS}
        n = min([mix.frames, int(args.seconds * mix.sample_rate)] + [r.frames for r in refs.values()])
        mix = mix.with_samples(mix.samples[:, :n])
        base = si_sdr(mix.samples.mean(axis=0), refs["vocals"].samples[:, :n].mean(axis=0))
        for name, kind in engines:
            use_sources(dataclasses.replace(src, demucs_model=name) if kind == "demucs" else src)
            params = {"model": "dsp" if kind == "dsp" else "demucs"}
            spec(mix.with_samples(mix.samples[:, : mix.sample_rate]), params, ctx)  # warm-up: model load
            t0 = time.perf_counter()
            res = spec(mix, params, ctx)
            rtf = (time.perf_counter() - t0) / mix.duration_s
            got = {
                s: si_sdr(res.extra[s].samples.mean(axis=0), refs[s].samples[:, :n].mean(axis=0))
                for s in STEMS
            }
            print(
                f"  {mixf.parent.name:30s} {name:>12s} {base:8.2f} "
                + " ".join(f"{got[s]:7.2f}" for s in STEMS)
                + f" {rtf:6.2f}"
            )
    use_sources(src)
    return 0


def memory_probe(minutes: float, device: str) -> int:
    """Peak RSS (this process) and RTF of `tools.separate.separate_demucs` on ``minutes`` of audio: the
    chunked path (7.8 s segments, 25 % overlap) keeps the model's working memory flat; the stems
    themselves (4 × the input) grow with the length."""
    import resource

    import torch
    from demucs.apply import BagOfModels
    from demucs.htdemucs import HTDemucs

    from tools.separate import separate_demucs

    torch.manual_seed(0)
    model = BagOfModels([HTDemucs(sources=["drums", "bass", "other", "vocals"])])
    model.eval()
    params = sum(p.numel() for p in model.parameters()) / 1e6
    sr = 44100
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal((2, int(minutes * 60 * sr)))).astype(np.float32)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    stems = separate_demucs(x, sr, model, device)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out_mb = sum(v.nbytes for v in stems.values()) / 2**20
    print(
        f"HTDemucs class defaults ({params:.1f} M params, random weights), {minutes:g} min stereo 44.1 kHz on "
        f"{device}: peak RSS {peak:.0f} MB (before the call {before:.0f} MB; the stems alone {out_mb:.0f} MB), "
        f"RTF {wall / (minutes * 60):.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
