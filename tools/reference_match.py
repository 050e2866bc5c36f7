"""reference_match: move a track toward a reference recording's tonal balance, loudness and width.

``ctx.inputs["reference"]`` is the reference (resampled to the input's rate here).

* Tone: third-octave long-term spectra (40 Hz–16 kHz, capped at 0.45·fs) of both; the
  difference, with its mean over 100 Hz–10 kHz removed (tone, not level), smoothed over three
  bands, capped at ±9 dB and scaled by ``intensity``, becomes a linear-phase FIR.
* Width (``match_width``, stereo only): side/mid energy ratio above 120 Hz; the side gain
  ``sqrt(ratio_ref/ratio_in)^intensity`` is bounded to 0.5–1.5 (bass below 120 Hz kept).
* Loudness (``match_loudness``): ``intensity`` × the integrated-loudness difference (±20 dB at
  most); if that pushes the true peak above −1 dBTP, the master limiter (`tools.dsp`) holds it
  there and the report says how much it limited.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydantic import Field

from tools import dsp
from tools.audio import Audio
from tools.registry import Stage, ToolContext, ToolParams, ToolResult, ToolSpec

MAX_EQ_DB = 9.0


class ReferenceMatchParams(ToolParams):
    intensity: float = Field(0.7, ge=0.0, le=1.0, description="share of the way toward the reference")
    match_loudness: bool = Field(True, description="also match integrated loudness")
    match_width: bool = Field(True, description="also match stereo width (stereo input and reference)")


def _side_mid_ratio(x: np.ndarray, sr: int) -> float:
    hp = dsp.apply_sos(x[:2], dsp.biquad("highpass", 120.0, sr, 0.0, 0.707))
    mid, side = 0.5 * (hp[0] + hp[1]), 0.5 * (hp[0] - hp[1])
    return float(np.mean(side.astype(np.float64) ** 2) / max(np.mean(mid.astype(np.float64) ** 2), 1e-20))


def run(audio: Audio, params: ReferenceMatchParams, ctx: ToolContext) -> ToolResult:
    from tools.loudness import integrated_lufs, true_peak_dbtp

    if "reference" not in ctx.inputs:
        raise ValueError("reference_match needs the reference track as ctx.inputs['reference']")
    ref = ctx.inputs["reference"].resample(audio.sample_rate)
    sr, k = audio.sample_rate, params.intensity
    warnings: list[str] = []
    report: dict[str, Any] = {"intensity": k}
    if k <= 0:
        report["note"] = "intensity is 0; audio unchanged"
        return ToolResult(audio=audio, report=report)
    c, l_in = dsp.third_octave_levels(audio.samples, sr)
    c2, l_ref = dsp.third_octave_levels(ref.samples, sr)
    n = min(c.size, c2.size)
    c, diff = c[:n], l_ref[:n] - l_in[:n]
    mid = (c >= 100.0) & (c <= 10000.0)
    diff = diff - diff[mid].mean()
    diff = np.convolve(np.pad(diff, 1, mode="edge"), np.ones(3) / 3, mode="valid")
    curve = np.clip(diff, -MAX_EQ_DB, MAX_EQ_DB) * k
    y = dsp.apply_fir(audio.samples, dsp.fir_from_curve(c, curve, sr))
    report["eq_db"] = {str(int(round(f))): round(float(g), 2) for f, g in zip(c[::3], curve[::3])}
    if params.match_width and audio.channels >= 2 and ref.channels >= 2:
        r_in, r_ref = _side_mid_ratio(y, sr), _side_mid_ratio(ref.samples, sr)
        w = float(np.clip((math.sqrt(r_ref / r_in) if r_in > 1e-12 else 1.0) ** k, 0.5, 1.5))
        y, _ = dsp.stereo_width(y, sr, w, 120.0, warnings)
        report["width_factor"] = round(w, 3)
    if params.match_loudness:
        li, lr = integrated_lufs(audio.with_samples(y)), integrated_lufs(ref)
        if math.isfinite(li) and math.isfinite(lr):
            g = float(np.clip(k * (lr - li), -20.0, 20.0))
            y = y * np.float32(10.0 ** (g / 20.0))
            report["gain_db"] = round(g, 2)
            tp = true_peak_dbtp(audio.with_samples(y))
            if tp > -1.0:
                y, linfo = dsp.true_peak_limit(y, sr, -1.15)
                report["limiter_max_gr_db"] = round(linfo["max_gr_db"], 2)
    return ToolResult(audio=audio.with_samples(y), report=report, warnings=warnings)


SPEC = ToolSpec(
    name="reference_match",
    description="match a reference track's tonal balance, loudness and stereo width, bounded by intensity",
    params=ReferenceMatchParams,
    run=run,
    stage=Stage.GENRE,
    applies_to=("mix", "music"),
    needs_inputs=("reference",),
    amount_key="intensity",
    verb="matched the reference track's tone and loudness",
    whole_mix=True,
)
