"""restore: blind restoration with the 1D Operational GAN (Self-ONN) generator.

The generator (``models/opgan.py``, trained by ``models/train_opgan.py``) works on mono
waveforms at its own rate (16 kHz for the shipped ``models/checkpoints/opgan_small.pt``;
see ``OPGAN_CARD.md`` beside it for what it was trained on and how well it does). Each
channel is resampled to the model rate, peak-normalised with one gain for the whole
signal, run in overlapping chunks (each chunk sees ``context`` extra samples on both
sides that are thrown away, and neighbouring chunks are cross-faded with complementary
sin² ramps, so there are no seams), scaled back and resampled to the input rate. Content
above the model's band (above 8 kHz for a 16 kHz model) is passed through from the input
unless ``keep_high_band`` is off, so a 44.1 kHz recording does not come back dull.

The checkpoint is loaded once per (path, device) and cached. ``MIXPILOT_OPGAN_WEIGHTS``
points at another generator file (same format, written by the trainer).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from tools.audio import Audio, resample
from tools.registry import Stage, ToolContext, ToolParams, ToolResult, ToolSpec

WEIGHTS_ENV = "MIXPILOT_OPGAN_WEIGHTS"
DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "models" / "checkpoints" / "opgan_small.pt"


class RestoreParams(ToolParams):
    strength: float = Field(1.0, ge=0.0, le=1.0, description="wet/dry mix of the restored signal (1 = fully restored)")
    chunk_s: float = Field(4.0, ge=0.5, le=30.0, description="length of each chunk the model sees, in seconds")
    overlap_s: float = Field(0.25, ge=0.02, le=2.0, description="cross-fade length between neighbouring chunks, in seconds")
    context_s: float = Field(0.1, ge=0.0, le=1.0, description="extra audio each chunk sees on both sides (discarded), in seconds")
    keep_high_band: bool = Field(True, description="pass through the input's content above the model's band (8 kHz)")


def weights_path() -> Path:
    env = os.environ.get(WEIGHTS_ENV)
    return Path(env).expanduser() if env else DEFAULT_WEIGHTS


_LOCK = threading.Lock()
_CACHE: dict[tuple[str, str], tuple[Any, dict[str, Any]]] = {}


def load_generator(path: Path | None = None, device: str = "cpu") -> tuple[Any, dict[str, Any]]:
    """The generator (float32, eval mode) and its meta, loaded once per (path, device)."""
    from models.weights import ModelLoadingError

    p = Path(path) if path is not None else weights_path()
    key = (str(p.resolve()), device)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        if not p.is_file():
            raise ModelLoadingError(f"Op-GAN generator not found at {p}; set {WEIGHTS_ENV} to a file written by "
                                    "python -m models.train_opgan (generator_fp16.pt)")
        import torch

        from models.opgan import generator_from_payload

        try:
            payload = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ModelLoadingError(f"Op-GAN checkpoint {p} could not be read ({type(exc).__name__}: {exc})") from None
        gen, meta = generator_from_payload(payload)
        gen.to(device)
        _CACHE[key] = (gen, meta)
        return gen, meta


def _ramp(n: int) -> np.ndarray:
    """Rising sin² ramp of n samples; ramp + ramp[::-1] == 1."""
    if n <= 0:
        return np.zeros(0, dtype=np.float64)
    t = (np.arange(n) + 0.5) / n
    return np.sin(0.5 * np.pi * t) ** 2


def apply_chunked(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, chunk: int, overlap: int,
                  context: int = 0, multiple: int = 1, batch: int = 8) -> np.ndarray:
    """Run ``fn`` on overlapping chunks of the 1-D signal ``x`` and cross-fade them together.

    ``fn`` maps a float32 array ``(n_chunks, length)`` to the same shape. Each chunk covers
    ``chunk`` output samples plus ``context`` samples either side (zero beyond the ends),
    padded up to a multiple of ``multiple``; neighbours overlap by ``overlap`` samples and
    are blended with complementary sin² ramps (weights sum to exactly 1).
    """
    n = x.size
    if chunk <= overlap:
        raise ValueError(f"chunk ({chunk}) must be longer than the overlap ({overlap})")
    if n <= chunk:
        starts = [0]
        chunk = n
    else:
        step = chunk - overlap
        starts = list(range(0, n - chunk, step)) + [n - chunk]
    win_len = chunk + 2 * context
    win_len += (-win_len) % max(1, multiple)
    xp = np.pad(x.astype(np.float32), (context, context + win_len))
    out = np.zeros(n, dtype=np.float64)
    wsum = np.zeros(n, dtype=np.float64)
    segs = np.stack([xp[s: s + win_len] for s in starts])
    ys = np.concatenate([fn(segs[i: i + batch]) for i in range(0, len(segs), batch)], axis=0)
    for k, s in enumerate(starts):
        y = ys[k, context: context + chunk].astype(np.float64)
        w = np.ones(chunk)
        if k > 0:  # fade in over the whole overlap with the previous chunk (the last one may overlap more)
            ov = starts[k - 1] + chunk - s
            w[:ov] *= _ramp(ov)
        if k < len(starts) - 1:  # fade out over the overlap with the next chunk: the complement of its fade-in
            ov = s + chunk - starts[k + 1]
            w[chunk - ov:] *= _ramp(ov)[::-1]
        out[s: s + chunk] += y * w
        wsum[s: s + chunk] += w
    return (out / np.maximum(wsum, 1e-9)).astype(np.float32)


def _model_fn(gen: Any, device: str) -> Callable[[np.ndarray], np.ndarray]:
    import torch

    def fn(segs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            t = torch.from_numpy(np.ascontiguousarray(segs, dtype=np.float32))[:, None].to(device)
            return gen(t)[:, 0].float().cpu().numpy()

    return fn


def restore_mono(x: np.ndarray, gen: Any, params: RestoreParams, device: str = "cpu",
                 progress: Callable[[float], None] | None = None) -> np.ndarray:
    """Restore one channel already at the model rate (global peak normalisation, chunked)."""
    sr = gen.cfg.sample_rate
    peak = float(np.max(np.abs(x)))
    if peak < 1e-7:
        return x.astype(np.float32).copy()
    s = 0.9 / peak
    chunk = int(params.chunk_s * sr)
    overlap = min(int(params.overlap_s * sr), chunk // 2)
    y = apply_chunked(_model_fn(gen, device), x * s, chunk, overlap, int(params.context_s * sr), gen.cfg.hop)
    return (y / s).astype(np.float32)


def run(audio: Audio, params: RestoreParams, ctx: ToolContext) -> ToolResult:
    import time

    device = ctx.device if ctx.device else "cpu"
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            device = "cpu"
    gen, meta = load_generator(device=device)
    msr = int(gen.cfg.sample_rate)
    sr = audio.sample_rate
    warnings: list[str] = []
    t0 = time.perf_counter()
    x = audio.samples.astype(np.float32)
    low = x if sr == msr else resample(x, sr, msr)
    restored = np.empty_like(low)
    for c in range(audio.channels):
        restored[c] = restore_mono(low[c], gen, params, device)
        ctx.report_progress((c + 1) / audio.channels, f"restored channel {c + 1}/{audio.channels}")
    if sr == msr:
        wet = restored
    else:
        wet = resample(restored, msr, sr)
        wet = _fit(wet, audio.frames)
        if params.keep_high_band and sr > msr:
            high = x - _fit(resample(low, msr, sr), audio.frames)  # what the model's band cannot hold
            wet = wet + high
        elif sr > msr:
            warnings.append(f"content above {msr // 2} Hz was dropped (keep_high_band is off)")
    out = params.strength * wet + (1.0 - params.strength) * x
    if not np.all(np.isfinite(out)):
        raise ValueError("restore produced non-finite samples; the checkpoint may be corrupt")
    peak = float(np.max(np.abs(out)))
    if peak > 1.0:
        warnings.append(f"restored peaks reach {20 * np.log10(peak):+.1f} dBFS (clipped input repaired above full scale)")
    elapsed = time.perf_counter() - t0
    from tools.metrics import si_sdr

    report = {
        "model": "opgan", "model_rate_hz": msr, "device": device, "strength": params.strength,
        "chunk_s": params.chunk_s, "overlap_s": params.overlap_s, "keep_high_band": params.keep_high_band,
        "checkpoint_step": int(meta.get("step", 0)), "seconds": round(elapsed, 3),
        "rtf": round(elapsed / max(audio.duration_s, 1e-9), 4),
        "change_db": round(-si_sdr(out, x), 2),  # how much was changed: −SI-SDR of output vs input
    }
    return ToolResult(audio=audio.with_samples(out.astype(np.float32)), report=report, warnings=warnings)


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    if y.shape[-1] >= n:
        return y[..., :n]
    return np.pad(y, [(0, 0)] * (y.ndim - 1) + [(0, n - y.shape[-1])])


def _available() -> tuple[bool, str]:
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return False, "needs the Python package 'torch' (pip install 'mixpilot[neural]')"
    p = weights_path()
    if not p.is_file():
        return False, f"Op-GAN generator not found at {p} (set {WEIGHTS_ENV})"
    return True, ""


SPEC = ToolSpec(
    name="restore",
    description="blind restoration of degraded audio (noise, clipping, band limits, codec artefacts, hum) "
                "with the 1D Operational GAN (Self-ONN) generator",
    params=RestoreParams,
    run=run,
    stage=Stage.REPAIR,
    applies_to=("mix", "vocals", "speech", "music"),
    check_available=_available,
    amount_key="strength",
    verb="restored the degraded recording",
)
