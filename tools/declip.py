"""declip: find hard-clipped runs and reconstruct the peaks.

Detection: per channel, samples within a hair (1e-4 relative) of the positive or the
negative extreme count as clipped when at least `MIN_CLIPPED` of them sit there (a
clean signal touches its peak once or twice, a clipped one hundreds of times).

Reconstruction: consistent iterative hard thresholding (Kitić et al. 2015) in an STFT
frame (2048-sample sqrt-Hann, hop 512). Each iteration keeps only the STFT coefficients
above a threshold that falls from the largest coefficient to −60 dB over the run
(sparsity grows), resynthesises, and projects back onto the signals consistent with
the observation: unclipped samples equal the input, clipped samples lie at or beyond
the clip level with the same sign. Only the stretches around clipped runs are processed.

`strength` blends the restored excess back in (0 = input, 1 = full reconstruction).
Restored peaks exceed the old clip level, so the output is scaled down (whole file, one
gain) when its true peak would exceed ``ceiling_dbtp``; the report gives the peak and the
gain.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from tools import dsp
from tools.audio import Audio
from tools.registry import Stage, ToolContext, ToolParams, ToolResult, ToolSpec

MIN_CLIPPED = 16
N_FFT = 2048
HOP = 512
FLOOR_DB = 60.0  # the sparsity threshold falls from the largest coefficient to this many dB below


class DeclipParams(ToolParams):
    strength: float = Field(0.8, ge=0.0, le=1.0, description="how much of the reconstructed peaks to restore")
    ceiling_dbtp: float = Field(
        0.0,
        ge=-12.0,
        le=12.0,
        description="true-peak ceiling of the output in dBTP; the whole file is turned down to fit under it",
    )
    iterations: int = Field(60, ge=5, le=400, description="reconstruction iterations (more = slower, finer)")


# ----------------------------------------------------------------------------- detection


def detect_clipping(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """For one channel: (mask_pos, mask_neg, level_pos, level_neg). Empty masks if not clipped."""
    hi, lo = float(x.max()), float(x.min())
    tol = 1e-4 * max(abs(hi), abs(lo), 1e-9)
    pos = x >= hi - tol
    neg = x <= lo + tol
    if pos.sum() < MIN_CLIPPED or hi <= 0:
        pos = np.zeros_like(pos)
    if neg.sum() < MIN_CLIPPED or lo >= 0:
        neg = np.zeros_like(neg)
    return pos, neg, hi, lo


# ----------------------------------------------------------------------------- STFT frame


def _win() -> np.ndarray:
    return np.asarray(
        dsp.sqrt_hann(N_FFT) / np.sqrt(N_FFT / HOP / 2)
    )  # tight frame: analysis·synthesis sums to 1 at hop N/4


def _reconstruct(
    seg: np.ndarray, pos: np.ndarray, neg: np.ndarray, hi: float, lo: float, iterations: int
) -> np.ndarray:
    """Consistent IHT on one padded segment."""
    pad = N_FFT
    n0 = seg.size
    y0 = dsp.stft_pad(seg, N_FFT, HOP)
    total = y0.size
    p = dsp.stft_pad(pos, N_FFT, HOP) > 0
    q = dsp.stft_pad(neg, N_FFT, HOP) > 0
    reliable = ~(p | q)
    w = _win()
    y = y0.copy()
    zmax = np.abs(dsp.tight_stft(y, N_FFT, HOP, w)).max() + 1e-12
    for i in range(iterations):
        z = dsp.tight_stft(y, N_FFT, HOP, w)
        lam = zmax * 10 ** (-(FLOOR_DB / 20.0) * (i + 1) / iterations)
        z[np.abs(z) < lam] = 0
        yh = dsp.tight_istft(z, N_FFT, HOP, total, w)
        y = np.where(reliable, y0, yh)
        y[p] = np.maximum(yh[p], hi)
        y[q] = np.minimum(yh[q], lo)
    return y[pad : pad + n0]


def declip_channel(x: np.ndarray, iterations: int = 60) -> tuple[np.ndarray, dict[str, Any]]:
    x = x.astype(np.float64)
    pos, neg, hi, lo = detect_clipping(x)
    mask = pos | neg
    n_clipped = int(mask.sum())
    info = {"clipped_samples": n_clipped, "clip_level_pos": hi, "clip_level_neg": lo, "regions": 0}
    if n_clipped == 0:
        return x, info
    # regions: clipped samples ± N_FFT, merged
    idx = np.flatnonzero(mask)
    gaps = np.flatnonzero(np.diff(idx) > 2 * N_FFT)
    starts = np.r_[idx[0], idx[gaps + 1]]
    ends = np.r_[idx[gaps], idx[-1]]
    out = x.copy()
    for s, e in zip(starts, ends):
        a, b = max(0, s - N_FFT), min(x.size, e + N_FFT + 1)
        out[a:b] = _reconstruct(x[a:b], pos[a:b], neg[a:b], hi, lo, iterations)
    info["regions"] = int(starts.size)
    runs = np.flatnonzero(np.diff(np.r_[0, mask.astype(np.int8), 0]) == 1).size
    info["clipped_runs"] = int(runs)
    return out, info


# ----------------------------------------------------------------------------- run


def _true_peak(samples: np.ndarray, sr: int) -> float:
    try:
        from tools.loudness import true_peak_linear

        return float(true_peak_linear(Audio(samples.astype(np.float32), sr)))
    except Exception:  # loudness module missing: 4x oversampled peak
        from scipy.signal import resample_poly

        return float(np.max(np.abs(resample_poly(samples, 4, 1, axis=-1))))


def run(audio: Audio, params: DeclipParams, ctx: ToolContext) -> ToolResult:
    x = audio.samples.astype(np.float64)
    out = x.copy()
    chans = []
    for c in range(audio.channels):
        y, info = declip_channel(x[c], params.iterations)
        out[c] = x[c] + params.strength * (y - x[c])
        info = {k: (round(v, 5) if isinstance(v, float) else v) for k, v in info.items()}
        chans.append(info)
        ctx.report_progress((c + 1) / audio.channels, "declipping")
    total = sum(ch["clipped_samples"] for ch in chans)
    report: dict[str, Any] = {
        "strength": params.strength,
        "clipped_samples": total,
        "clipped_percent": round(100.0 * total / max(x.size, 1), 3),
        "channels": chans,
    }
    warnings: list[str] = []
    if total == 0:
        report["note"] = "no hard clipping found; audio unchanged"
        return ToolResult(audio=audio, report=report)
    tp = _true_peak(out, audio.sample_rate)
    tp_db = 20 * np.log10(max(tp, 1e-12))
    report["true_peak_restored_dbtp"] = round(tp_db, 2)
    gain_db = min(0.0, params.ceiling_dbtp - tp_db)
    if gain_db < 0:
        out *= 10 ** (gain_db / 20)
        warnings.append(
            f"restored peaks reach {tp_db:+.1f} dBTP; turned the whole file down {-gain_db:.1f} dB to fit "
            f"under {params.ceiling_dbtp:+.1f} dBTP (raise loudness again at the master stage)"
        )
    report["gain_db"] = round(gain_db, 2)
    report["true_peak_dbtp"] = round(tp_db + gain_db, 2)
    return ToolResult(audio=audio.with_samples(out.astype(np.float32)), report=report, warnings=warnings)


SPEC = ToolSpec(
    name="declip",
    description="repair clipped peaks: find hard-clipped runs and reconstruct them (consistent sparse reconstruction)",
    params=DeclipParams,
    run=run,
    stage=Stage.REPAIR,
    applies_to=("mix", "speech", "vocals", "music", "drums", "bass", "other"),
    amount_key="strength",
    verb="repaired clipped peaks",
    repairs=("clipping",),
)
