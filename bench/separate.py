"""Separation quality and speed for every engine installed here: the DSP fallback and each Demucs model.

    .venv/bin/python bench/separate.py [--seconds 30] [--device cpu]
    .venv/bin/python bench/separate.py --memory-probe 1,10 --tiny --threads 1   # memory vs length

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
from fractions import Fraction
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
        default=None,
        metavar="MINUTES[,MINUTES...]",
        help="instead: peak memory and RTF of the tool's Demucs path on each length of stereo 44.1 kHz noise "
        "(a fresh process each), with an HTDemucs in htdemucs's published config and random weights (cost only)",
    )
    ap.add_argument("--tiny", action="store_true", help="--memory-probe with the tests' tiny HTDemucs")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--probe-one", type=float, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.probe_one is not None:
        return probe_one(args.probe_one, args.device, args.tiny)
    if args.memory_probe is not None:
        return memory_probe(args.memory_probe, args.device, args.tiny, args.threads)

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


#: what the Demucs path holds for the whole length at its peak (inside `apply_model`), in units of the
#: (stereo float32) input: the normalised copy it feeds Demucs (1), the model's 4-stem output (4; vocals,
#: drums and bass are returned as views of it) and the overlap-add weight sum (1/2: one float per frame).
#: The residual "other" (1) is made after the copy and the weights are freed.
FULL_LENGTH_BUFFERS = 5.5
#: htdemucs (signature 955717e8) as demucs's training grid builds it (conf/config.yaml's htdemucs section,
#: grids/mmi.py: dconv_mode 3, bottom_channels 512, 5 transformer layers, segment 10 * 0.88 - 1 = 7.8 s):
#: 41.98 M parameters, 80.1 MiB in half precision as published
HTDEMUCS_KWARGS: dict = dict(
    sources=["drums", "bass", "other", "vocals"],
    dconv_mode=3,
    bottom_channels=512,
    t_layers=5,
    segment=Fraction(39, 5),
)


def memory_probe(spec_arg: str, device: str, tiny: bool, threads: int | None = None) -> int:
    """Peak RSS and RTF of the `separate` tool's Demucs path for each length in ``spec_arg`` (minutes,
    comma-separated), each in a fresh process (peak RSS is a process's high-water mark).

    ``before`` is the RSS with the model and the input loaded; ``buffers`` what must be held for the
    whole length (`FULL_LENGTH_BUFFERS` × the input); ``working`` = peak − before − buffers: the model's
    per-segment working memory, which chunking keeps the same whatever the length (all in MB)."""
    import subprocess

    lengths = [float(m) for m in spec_arg.split(",") if m.strip()]
    model = "tiny HTDemucs (tests/modelmirror.py)" if tiny else "HTDemucs in htdemucs's published config"
    print(f"separate (Demucs path), {model}, random weights, stereo 44.1 kHz noise, device {device}")
    print(
        f"  {'minutes':>7s} {'segments':>8s} {'peak RSS':>9s} {'before':>7s} {'input':>6s} {'buffers':>8s} "
        f"{'working':>8s} {'RTF':>6s}"
    )
    for minutes in lengths:
        cmd = [sys.executable, __file__, "--probe-one", str(minutes), "--device", device]
        cmd += ["--threads", str(threads)] if threads else []
        p = subprocess.run(cmd + (["--tiny"] if tiny else []), capture_output=True, text=True, cwd=REPO)
        if p.returncode != 0:
            print(f"  {minutes:7g} failed: {p.stderr.strip().splitlines()[-1:]}")
            continue
        print(p.stdout.rstrip())
    return 0


def _rss_mb() -> float:
    """This process's resident memory now (Linux), MB."""
    import resource

    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def probe_one(minutes: float, device: str, tiny: bool) -> int:
    import resource
    import tempfile

    import torch
    from demucs.htdemucs import HTDemucs
    from demucs.states import save_with_checksum

    from models.weights import WeightSources, use_sources
    from tools.audio import Audio
    from tools.registry import ToolContext, default_registry
    from tools.separate import _demucs_model, demucs_chunks

    sr = 44100
    with tempfile.TemporaryDirectory() as tmp:
        if tiny:
            from tests.modelmirror import TINY_HTDEMUCS_KWARGS as kwargs
            from tests.modelmirror import tiny_htdemucs

            net = tiny_htdemucs()
        else:
            kwargs = HTDEMUCS_KWARGS
            torch.manual_seed(0)
            net = HTDemucs(**kwargs)
        pkg = {"klass": HTDemucs, "args": (), "kwargs": kwargs, "state": net.state_dict()}
        save_with_checksum(pkg, Path(tmp) / "probe0000.th")
        del net, pkg
        (Path(tmp) / "probe.yaml").write_text("models: ['probe0000']\n")
        use_sources(WeightSources(demucs_dir=Path(tmp), demucs_model="probe"))
        spec = default_registry()["separate"]
        ctx = ToolContext(device=device)
        rng = np.random.default_rng(0)
        warm = Audio(0.1 * rng.standard_normal((2, sr), dtype=np.float32), sr)
        spec(warm, {"model": "demucs"}, ctx)  # loads the model
        audio = Audio(0.1 * rng.standard_normal((2, int(minutes * 60 * sr)), dtype=np.float32), sr)
        segments = demucs_chunks(_demucs_model()[0], audio.frames)
        before = _rss_mb()  # now, with the model and the input in memory
        t0 = time.perf_counter()
        res = spec(audio, {"model": "demucs"}, ctx)
        wall = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if res.report["engine"] != "demucs":
        raise SystemExit(f"the probe ran {res.report['engine']}, not Demucs")
    mb = 2**20
    inp = audio.samples.nbytes / mb
    buffers = FULL_LENGTH_BUFFERS * inp
    print(
        f"  {minutes:7g} {segments:8d} {peak:9.0f} {before:7.0f} {inp:6.0f} {buffers:8.0f} "
        f"{peak - before - buffers:8.0f} {wall / audio.duration_s:6.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
