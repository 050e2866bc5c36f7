"""compress: feed-forward RMS compressor with soft knee, attack/release, makeup and parallel mix.

Detector: 1 ms RMS, linked across channels (stereo image stays put). Gain computer: the
standard soft-knee curve (Giannoulis, Massberg & Reiss, "Digital dynamic range compressor
design — a tutorial and analysis", JAES 2012). Smoothing: one-pole attack/release on the
gain reduction in dB (the "smooth decoupled" detector of that paper), at 1 ms steps, linearly
interpolated to samples. Offline, so the detector looks ahead (by the attack time, at most
20 ms, unless ``lookahead_ms`` says otherwise): the gain reduction is in place when a
transient arrives, which is what lowers the crest factor.

``amount`` (0–1) sets whatever is not given explicitly:
ratio ``1 + 5·amount`` (0.5 → 3.5:1), threshold ``L95 − (2 + 16·amount)`` dB where L95 is the
95th percentile of the 1 ms RMS level over non-silent moments, attack ``20 − 18·amount`` ms,
release ``250 − 150·amount`` ms, knee 6 dB, and automatic makeup equal to the median gain
reduction over non-silent moments (so the result is about as loud, just less dynamic).
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from tools import dsp
from tools.audio import Audio
from tools.registry import Stage, ToolContext, ToolParams, ToolResult, ToolSpec


class CompressParams(ToolParams):
    amount: float = Field(0.5, ge=0.0, le=1.0, description="how much compression (sets unspecified settings)")
    threshold_db: float | None = Field(
        None, ge=-60.0, le=0.0, description="threshold in dBFS RMS (None = from amount)"
    )
    ratio: float | None = Field(None, ge=1.0, le=20.0, description="compression ratio (None = from amount)")
    attack_ms: float | None = Field(None, ge=0.5, le=300.0, description="attack in ms (None = from amount)")
    release_ms: float | None = Field(
        None, ge=5.0, le=3000.0, description="release in ms (None = from amount)"
    )
    knee_db: float | None = Field(None, ge=0.0, le=24.0, description="soft-knee width in dB (None = 6)")
    makeup_db: float | None = Field(
        None, ge=-12.0, le=18.0, description="makeup gain in dB (None = automatic)"
    )
    mix: float = Field(1.0, ge=0.0, le=1.0, description="parallel (New York) mix: 1 = fully compressed")
    lookahead_ms: float | None = Field(
        None, ge=0.0, le=20.0, description="detector look-ahead in ms (None = the attack time, at most 20 ms)"
    )


def crest_db(x: np.ndarray) -> float:
    """Peak over RMS in dB (the sum of squares in float64 a slice at a time, the peak from max and min:
    no full-length temporaries)."""
    if x.size == 0:
        return 0.0
    energy = 0.0
    for a in range(0, x.shape[-1], 1 << 16):
        b = x[..., a : a + (1 << 16)].astype(np.float64)
        energy += float(np.vdot(b, b))
    rms = float(np.sqrt(energy / x.size))
    peak = max(float(x.max()), -float(x.min()))
    return float(20 * np.log10(max(peak, 1e-12) / max(rms, 1e-12)))


def run(audio: Audio, params: CompressParams, ctx: ToolContext) -> ToolResult:
    p = params
    y, info = dsp.compress(
        audio.samples,
        audio.sample_rate,
        p.amount,
        threshold_db=p.threshold_db,
        ratio=p.ratio,
        attack_ms=p.attack_ms,
        release_ms=p.release_ms,
        knee_db=p.knee_db,
        makeup_db=p.makeup_db,
        mix=p.mix,
        lookahead_ms=p.lookahead_ms,
    )
    warnings = []
    peak = float(np.abs(y).max())
    if peak > 1.0:
        warnings.append(
            f"compress: makeup pushed the sample peak to {20 * np.log10(peak):+.1f} dBFS; "
            "master (or lower makeup_db) before export"
        )
    info["crest_db_before"] = round(crest_db(audio.samples), 2)
    info["crest_db_after"] = round(crest_db(y), 2)
    return ToolResult(audio=audio.with_samples(y), report=info, warnings=warnings)


SPEC = ToolSpec(
    name="compress",
    description="dynamics compression: threshold, ratio, attack, release, knee, makeup, parallel mix; amount sets the rest",
    params=CompressParams,
    run=run,
    stage=Stage.DYNAMICS,
    applies_to=("mix", "vocals", "speech", "music", "drums", "bass", "other"),
    amount_key="amount",
    verb="evened out the dynamics (compression)",
)
