"""dynamic_eq: a band that cuts only while its level is above a threshold (harshness, mud, boom,
a resonance, or a custom frequency).

How: the band is isolated with an RBJ band-pass (0 dB peak), and ``x − (1 − g(t))·bp(x)`` is
returned. Because the RBJ notch equals ``1 − bandpass`` exactly, this is a peaking cut whose
depth at the centre is exactly ``g(t)`` (minimum-phase) and which is transparent when
``g = 1``. ``g(t)`` comes from the band's level (5 ms RMS, linked across channels) through a
soft-knee downward compressor (ratio ``1.5 + 4.5·amount``), limited to ``max_cut_db`` and
smoothed with attack/release.

Threshold: given in dBFS (band level), or automatic: the ``95 − 50·amount`` percentile of the
band's own level over non-silent frames, so only the loudest moments of that band are cut.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import Field

from tools import dsp
from tools.audio import Audio
from tools.registry import Stage, ToolContext, ToolParams, ToolResult, ToolSpec

TARGETS = {"harsh": (3500.0, 1.0), "mud": (300.0, 1.2), "boom": (120.0, 1.2)}
STEP_S = 0.005


class DynamicEqParams(ToolParams):
    target: Literal["harsh", "mud", "boom", "resonance", "custom"] = Field(
        "harsh",
        description="harsh 2–5 kHz, mud 200–500 Hz, boom 80–200 Hz, resonance (found), custom (freq_hz)",
    )
    freq_hz: float | None = Field(
        None, ge=20.0, le=20000.0, description="centre frequency in Hz (custom; overrides the target's)"
    )
    q: float | None = Field(None, ge=0.3, le=12.0, description="band Q (default per target; 6 for resonance)")
    threshold_db: float | None = Field(
        None, ge=-80.0, le=0.0, description="band level in dBFS above which it cuts (None = automatic)"
    )
    max_cut_db: float = Field(6.0, ge=0.0, le=12.0, description="largest cut in dB")
    amount: float = Field(0.5, ge=0.0, le=1.0, description="how hard it works: ratio and automatic threshold")
    attack_ms: float = Field(5.0, ge=0.5, le=200.0, description="attack time in ms")
    release_ms: float = Field(80.0, ge=5.0, le=2000.0, description="release time in ms")


def find_resonance(x: np.ndarray, sr: int, lo: float = 150.0, hi: float = 8000.0) -> float:
    """Frequency of the narrow peak that stands highest above the smoothed long-term spectrum."""
    from scipy.ndimage import uniform_filter1d

    f, p = dsp.average_spectrum(x, sr)
    lev = 10 * np.log10(np.maximum(p, 1e-30))
    width = max(3, int(round(len(f) * 200.0 / (sr / 2))))  # ~200 Hz wide smoothing
    smooth = uniform_filter1d(lev, width, mode="nearest")
    sel = (f >= lo) & (f <= min(hi, 0.45 * sr))
    k = np.flatnonzero(sel)[np.argmax((lev - smooth)[sel])]
    return float(f[k])


def run(audio: Audio, params: DynamicEqParams, ctx: ToolContext) -> ToolResult:
    warnings: list[str] = []
    sr = audio.sample_rate
    x = audio.samples
    if params.target == "custom" and params.freq_hz is None:
        raise ValueError("dynamic_eq: target 'custom' needs freq_hz")
    if params.freq_hz is not None:
        freq, q = params.freq_hz, params.q or 2.0
    elif params.target == "resonance":
        freq, q = find_resonance(x, sr), params.q or 6.0
    else:
        freq, q = TARGETS[params.target]
        q = params.q or q
    freq = dsp.clamp_freq(freq, sr, warnings, "dynamic_eq band")
    report: dict[str, Any] = {"target": params.target, "freq_hz": round(freq, 1), "q": q}
    if params.amount <= 0 or params.max_cut_db <= 0:
        report["note"] = "amount or max_cut_db is 0; audio unchanged"
        return ToolResult(audio=audio, report=report, warnings=warnings)

    bp = dsp.apply_sos(x, dsp.biquad("bandpass", freq, sr, 0.0, q))
    step = max(1, int(round(STEP_S * sr)))
    level = dsp.frame_rms_db(bp, step)
    if params.threshold_db is not None:
        thr = params.threshold_db
    else:
        active = level[level > level.max() - 60.0]
        thr = float(np.percentile(active, 95.0 - 50.0 * params.amount)) if active.size else 0.0
    ratio = 1.5 + 4.5 * params.amount
    gr = dsp.soft_knee_gain_reduction_db(level, thr, ratio, 6.0, params.max_cut_db)
    gr = dsp.smooth_gain_db(gr, step / sr, params.attack_ms, params.release_ms)
    # the cut's depth 1 − 10^(−gr/20) on samples, in float32 (the gain curve as `dsp.compress` makes it)
    depth = dsp.frames_to_samples_f32(gr, step, audio.frames)
    depth *= np.float32(-math.log(10.0) / 20.0)
    np.exp(depth, out=depth)
    np.subtract(np.float32(1.0), depth, out=depth)
    bp *= depth[None, :]
    y = x - bp
    del bp, depth
    report.update(
        {
            "threshold_db": round(thr, 2),
            "ratio": round(ratio, 2),
            "max_cut_db": round(float(gr.max()), 2),
            "mean_cut_db": round(float(gr.mean()), 2),
            "active_fraction": round(float((gr > 0.5).mean()), 3),
        }
    )
    return ToolResult(audio=audio.with_samples(y), report=report, warnings=warnings)


SPEC = ToolSpec(
    name="dynamic_eq",
    description="frequency-dependent compression: cut harshness, mud, boom or a resonance only when it gets loud",
    params=DynamicEqParams,
    run=run,
    stage=Stage.TONE,
    applies_to=("mix", "vocals", "speech", "music", "drums", "bass", "other"),
    amount_key="amount",
    verb="tamed problem frequencies only when they jump out (dynamic EQ)",
)
