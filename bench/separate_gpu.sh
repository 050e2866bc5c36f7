#!/usr/bin/env bash
# GPU figure for `separate`: a full-size HTDemucs (the architecture and published config of `htdemucs`,
# randomly initialised: the cost does not depend on the weights) separates a 10-minute synthetic stereo
# 44.1 kHz signal on CUDA the way tools/separate.py runs it (segments of the model's 7.8 s, 25 % overlap,
# no shifts, the track and the stems in host memory, one segment at a time on the device), then 30 s on
# the CPU for comparison. Prints segments, real-time factor, peak GPU memory and peak host RSS.
#
# Run from the repo root, with any Python that has the pip packages `torch` (a CUDA build) and
# `demucs` (4.1 or newer; 4.0 works without the per-segment count); nothing is installed or downloaded:
#
#     bash bench/separate_gpu.sh                 # python3 on PATH
#     PYTHON=/path/to/python bash bench/separate_gpu.sh
#     MINUTES=10 CPU_SECONDS=30 bash bench/separate_gpu.sh
#
# Self-contained: it imports nothing from mixpilot (its settings are copied below: DEMUCS_OVERLAP and the
# normalisation of tools/separate.py, the published htdemucs kwargs as demucs's own training grid sets them).
set -euo pipefail
PY=${PYTHON:-python3}
exec "$PY" - "${MINUTES:-10}" "${CPU_SECONDS:-30}" <<'PYEOF'
import inspect
import resource
import sys
import time
from fractions import Fraction

import torch
from demucs.apply import apply_model
from demucs.htdemucs import HTDemucs

minutes, cpu_seconds = float(sys.argv[1]), float(sys.argv[2])
SR = 44100
OVERLAP = 0.25  # tools/separate.py DEMUCS_OVERLAP
# htdemucs (signature 955717e8) as demucs trains it (conf/config.yaml htdemucs section + grids/mmi.py):
# dconv_mode 3, depth 4, 5 cross-transformer layers, bottom_channels 512, segment 10 * 0.88 - 1 = 7.8 s
HTDEMUCS_KWARGS = dict(
    sources=["drums", "bass", "other", "vocals"],
    audio_channels=2,
    samplerate=SR,
    segment=Fraction(39, 5),
    channels=48,
    depth=4,
    dconv_mode=3,
    bottom_channels=512,
    t_layers=5,
)

if not torch.cuda.is_available():
    sys.exit("separate_gpu.sh: no CUDA device visible to torch (torch %s)" % torch.__version__)
has_callback = "callback" in inspect.signature(apply_model).parameters


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def signal(seconds: float, seed: int) -> torch.Tensor:
    """Stereo test signal on the host: pink-ish noise plus a few tones, partly correlated channels."""
    g = torch.Generator().manual_seed(seed)
    n = int(seconds * SR)
    mid = torch.randn(n, generator=g)
    side = torch.randn(n, generator=g)
    t = torch.arange(n, dtype=torch.float32) / SR
    tones = sum(torch.sin(2 * torch.pi * f * t) for f in (55.0, 220.0, 440.0, 1320.0)) * 0.05
    x = torch.stack([mid + 0.3 * side, mid - 0.3 * side]) * 0.05 + tones
    return x.float()


def separate(model, x: torch.Tensor, device: str) -> tuple[torch.Tensor, int, float]:
    """tools/separate.py's Demucs path: normalise, chunked apply_model, de-normalise. (stems, segments, s)"""
    segments = 0

    def on_segment(event: dict) -> None:
        nonlocal segments
        if event.get("state") == "end":
            segments += 1

    wav = x.clone()
    ref = wav.mean(0)
    mean, std = ref.mean(), ref.std().clamp(min=1e-8)
    wav.sub_(mean).div_(std)
    kw = dict(shifts=0, split=True, overlap=OVERLAP, device=device, progress=False, num_workers=0)
    if has_callback:
        kw["callback"] = on_segment
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = apply_model(model, wav[None], **kw)[0]
        out.mul_(std).add_(mean)
    if device == "cuda":
        torch.cuda.synchronize()
    return out, segments, time.perf_counter() - t0


torch.manual_seed(0)
# htdemucs.yaml names a bag of one model; tools/separate.py runs a bag's models one by one through
# apply_model (accumulating in place), so for one model it is apply_model on the model itself
model = HTDemucs(**HTDEMUCS_KWARGS).eval()
n_params = sum(p.numel() for p in model.parameters())
gpu = torch.cuda.get_device_name(0)
print(f"HTDemucs, htdemucs's published config, random weights: {n_params / 1e6:.2f} M parameters")
print(f"torch {torch.__version__}, demucs apply_model callback: {has_callback}; GPU: {gpu}")

# warm-up (CUDA context, kernels, cuDNN autotune) on 20 s, not counted
separate(model, signal(20.0, 1), "cuda")
torch.cuda.empty_cache()
torch.cuda.reset_peak_memory_stats()

x = signal(minutes * 60.0, 0)
out, segments, wall = separate(model, x, "cuda")
dur = x.shape[-1] / SR
if out.shape != (4, 2, x.shape[-1]) or not bool(torch.isfinite(out).all()):
    sys.exit(f"separate_gpu.sh: bad output {tuple(out.shape)}")
print(
    f"CUDA: {minutes:g} min stereo 44.1 kHz in {wall:.1f} s: RTF {wall / dur:.4f} ({dur / wall:.1f}x real time), "
    f"{segments if has_callback else 'n/a'} segments; "
    f"peak GPU memory allocated {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB "
    f"(reserved {torch.cuda.max_memory_reserved() / 2**30:.2f} GiB); "
    f"peak host RSS {peak_rss_mb() / 1024:.2f} GiB (input {x.numel() * 4 / 2**30:.2f} GiB, "
    f"stems {out.numel() * 4 / 2**30:.2f} GiB)"
)
del out, x

model.to("cpu")
xc = signal(cpu_seconds, 2)
separate(model, signal(8.0, 3), "cpu")  # warm-up
_, segments, wall = separate(model, xc, "cpu")
print(
    f"CPU ({torch.get_num_threads()} threads): {cpu_seconds:g} s in {wall:.1f} s: RTF {wall / cpu_seconds:.3f}, "
    f"{segments if has_callback else 'n/a'} segments"
)
PYEOF
