"""Real-time factor of the neural tools, plus the quality figures behind them.

    .venv/bin/python bench/neural.py [--repeats 3] [--quick]

Prints, per tool, the median wall time over ``--repeats`` warm runs (after one warm-up run
that loads the model) divided by the clip's duration (RTF < 1 = faster than real time),
on the device named in the header (CPU unless ``--device cuda``):

- pitch_correct on a sung vocal (tests/fixtures/singing-female-3s5.flac and, when
  ../shared/fixtures is present, vocadito_10), with intonation before/after measured by
  torchcrepe ``full`` (independent of the tool's ``tiny`` path);
- separate (DSP fallback unless Demucs weights are installed) on the MUSDB excerpts, with
  vocal SI-SDR vs the "mixture as estimate" baseline (all stems and every installed Demucs
  model: bench/separate.py);
- vocoder_enhance with the installed Vocos (`mixpilot models pull vocos`), or, when it is not
  installed, a Vocos built from the published config with *random* weights (timing only; same
  architecture, so the same cost);
- denoise through the registry (``tools.registry.get_tool("denoise")``) when it is built.

Timings on a shared 2-core machine are noisy; compare medians from the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tools.audio import Audio, load  # noqa: E402
from tools.registry import ToolContext, get_tool  # noqa: E402

SHARED = Path(os.environ.get("MIXPILOT_SHARED_FIXTURES", REPO.parent / "shared" / "fixtures"))


CPU_RTF: list[str] = []


def rtf(spec, audio: Audio, params: dict, ctx: ToolContext, repeats: int):
    """Median wall-clock RTF; the CPU seconds per audio second (all threads) go to CPU_RTF,
    a figure the other load on a shared machine does not inflate."""
    spec(audio, params, ctx)  # warm-up: model load, allocator
    times, cpu = [], []
    res = None
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        res = spec(audio, params, ctx)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    CPU_RTF.append(
        f"{spec.name}: {statistics.median(cpu) / audio.duration_s:.2f} CPU-s per audio-s "
        f"(wall RTF {statistics.median(times) / audio.duration_s:.2f}, {audio.duration_s:.1f} s clip)"
    )
    return statistics.median(times) / audio.duration_s, res


def mad(samples, sr, frames: int) -> float:
    from tools.intonation import deviation_cents, measure_pitch

    f, _ = measure_pitch(samples, sr, model="full", max_frames=frames)
    return float(np.median(np.abs(deviation_cents(f)))) if f.size else float("nan")


def bench_pitch(ctx, repeats, quick):
    from tools.intonation import detune_by_resampling

    spec = get_tool("pitch_correct")
    ok, why = spec.availability()
    if not ok:
        print(f"pitch_correct: unavailable ({why})")
        return
    clips = [("singing-female 3.5 s", REPO / "tests" / "fixtures" / "singing-female-3s5.flac", 0.0, 3.5)]
    if (SHARED / "vocals" / "vocadito_10.flac").is_file():
        clips.append(("vocadito_10 0–6 s", SHARED / "vocals" / "vocadito_10.flac", 0.0, 6.0))
    frames = 30 if quick else 80
    print(
        f"\npitch_correct (strength 1.0, retune 20 ms; intonation = median |cents from nearest note|, CREPE full, "
        f"{frames} frames)"
    )
    print(f"  {'clip':24s} {'detune':>14s} {'before':>7s} {'after':>7s} {'after@0.8':>9s} {'RTF':>6s}")
    rng = np.random.default_rng(7)
    offs = rng.uniform(20, 45, 64) * rng.choice([-1.0, 1.0], 64)
    for name, path, start, dur in clips:
        a = load(path).mono()
        sr = a.sample_rate
        x = a.samples[0, int(start * sr) : int((start + dur) * sr)]
        for label, cents in [("+35 c", 35.0), ("±20–45 c/note", lambda t: offs[(t / 0.3).astype(int)])]:
            y = detune_by_resampling(x, sr, cents)
            audio = Audio(y, sr)
            r, res = rtf(spec, audio, {"strength": 1.0, "retune_ms": 20}, ctx, repeats)
            soft = spec(audio, {}, ctx)
            print(
                f"  {name:24s} {label:>14s} {mad(y, sr, frames):7.1f} {mad(res.audio.samples, sr, frames):7.1f} "
                f"{mad(soft.audio.samples, sr, frames):9.1f} {r:6.2f}"
            )


def bench_separate(ctx, repeats):
    from tools.metrics import si_sdr

    spec = get_tool("separate")
    print("\nseparate (vocals SI-SDR vs true vocals; baseline = the mixture as the estimate)")
    print(f"  {'track':30s} {'engine':>8s} {'baseline':>9s} {'vocals':>7s} {'gain':>6s} {'RTF':>6s}")
    tracks = sorted((SHARED / "stems").glob("*/mixture.flac")) if (SHARED / "stems").is_dir() else []
    if not tracks:
        print("  (../shared/fixtures/stems not found)")
    for mixf in tracks:
        mix, voc = load(mixf), load(mixf.parent / "vocals.flac")
        n = min(mix.frames, voc.frames)
        mix = mix.with_samples(mix.samples[:, :n])
        r, res = rtf(spec, mix, {}, ctx, repeats)
        ref = voc.samples[:, :n].mean(axis=0)
        base = si_sdr(mix.samples.mean(axis=0), ref)
        got = si_sdr(res.extra["vocals"].samples.mean(axis=0), ref)
        print(
            f"  {mixf.parent.name:30s} {res.report['engine']:>8s} {base:9.2f} {got:7.2f} {got - base:+6.2f} {r:6.2f}"
        )


def bench_vocoder(ctx, repeats):
    """The installed Vocos (`mixpilot models pull vocos`) when there is one: RTF and how far the
    re-synthesis is from the input (log-mel distance); else the same architecture with random weights,
    for timing only."""
    import dataclasses

    import torch
    import yaml

    from models.vocos import Vocos
    from models.weights import current_sources, use_sources

    a = load(REPO / "tests" / "fixtures" / "singing-female-3s5.flac")
    src = current_sources()
    if src.has_model("vocos"):
        spec = get_tool("vocoder_enhance")
        r, res = rtf(spec, a, {}, ctx, repeats)
        print(
            f"\nvocoder_enhance (Vocos mel 24 kHz, installed: {src.locate('vocos')}) on a 3.5 s 44.1 kHz vocal: "
            f"RTF {r:.3f}; log-mel distance to the input {_mel_distance(a, res.audio):.3f} (0 = identical)"
        )
        return
    print(
        "\nvocoder_enhance: Vocos NOT INSTALLED (`mixpilot models pull vocos`); timing the same architecture with "
        "random weights"
    )
    sys.path.insert(0, str(REPO / "tests"))
    from test_vocoder_enhance import PUBLISHED_CONFIG

    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "config.yaml").write_text(PUBLISHED_CONFIG)
        torch.manual_seed(0)
        torch.save(
            Vocos.from_config(yaml.safe_load(PUBLISHED_CONFIG)).state_dict(), Path(d) / "pytorch_model.bin"
        )
        use_sources(dataclasses.replace(src, vocos_dir=Path(d)))
        try:
            spec = get_tool("vocoder_enhance")
            r, _ = rtf(spec, a, {}, ctx, repeats)
            print(f"  RANDOM weights (timing only) on a 3.5 s 44.1 kHz vocal: RTF {r:.3f}")
        finally:
            use_sources(src)


def _mel_distance(x: Audio, y: Audio) -> float:
    """Mean absolute log-mel difference (natural log) between two versions of the same clip, mono."""
    import torch

    from models.vocos import MelSpectrogramFeatures
    from tools.audio import resample

    mel = MelSpectrogramFeatures()
    a = torch.from_numpy(resample(x.samples.mean(axis=0, keepdims=True), x.sample_rate, 24000))
    b = torch.from_numpy(resample(y.samples.mean(axis=0, keepdims=True), y.sample_rate, 24000))
    return float((mel(a) - mel(b)).abs().mean())


def bench_denoise(ctx, repeats):
    spec = get_tool("denoise")
    ok, why = spec.availability()
    if not ok:
        print(f"\ndenoise: unavailable ({why})")
        return
    clips = (
        sorted((SHARED / "speech_pairs" / "vbdemand" / "noisy").glob("*.wav"))[:2] if SHARED.is_dir() else []
    )
    if not clips:
        clips = [REPO / "tests" / "fixtures" / "speech_female_16k.flac"]
    print("\ndenoise (through the registry, method auto)")
    for f in clips:
        a = load(f)
        r, res = rtf(spec, a, {}, ctx, repeats)
        print(
            f"  {f.name:40s} {a.duration_s:5.1f} s  method {res.report.get('method', '?'):>14s}  RTF {r:.3f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--quick", action="store_true", help="fewer CREPE-full frames for the intonation figures")
    args = ap.parse_args()
    import torch

    dev = (
        torch.cuda.get_device_name(0)
        if args.device == "cuda"
        else f"CPU ({os.cpu_count()} cores, torch threads {torch.get_num_threads()})"
    )
    print(
        f"bench/neural.py — device: {dev}; load average {os.getloadavg()[0]:.1f} (timings are noisy on a shared machine)"
    )
    from app.settings import Settings
    from models.weights import use_sources

    use_sources(Settings().weight_sources())  # the models installed here, as the CLI finds them
    ctx = ToolContext(device=args.device)
    bench_pitch(ctx, args.repeats, args.quick)
    bench_separate(ctx, args.repeats)
    bench_vocoder(ctx, args.repeats)
    bench_denoise(ctx, args.repeats)
    print("\nCPU time per audio second (independent of other load; ≤ 2 × wall RTF on an idle 2-core box):")
    for line in CPU_RTF:
        print("  " + line)


if __name__ == "__main__":
    main()
