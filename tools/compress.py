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
from tools.dynamic_eq import band_gain
from tools.registry import Stage, ToolContext, ToolParams, ToolResult, ToolSpec

STEP_S = 0.001


class CompressParams(ToolParams):
    amount: float = Field(0.5, ge=0.0, le=1.0, description="how much compression (sets unspecified settings)")
    threshold_db: float | None = Field(None, ge=-60.0, le=0.0, description="threshold in dBFS RMS (None = from amount)")
    ratio: float | None = Field(None, ge=1.0, le=20.0, description="compression ratio (None = from amount)")
    attack_ms: float | None = Field(None, ge=0.5, le=300.0, description="attack in ms (None = from amount)")
    release_ms: float | None = Field(None, ge=5.0, le=3000.0, description="release in ms (None = from amount)")
    knee_db: float | None = Field(None, ge=0.0, le=24.0, description="soft-knee width in dB (None = 6)")
    makeup_db: float | None = Field(None, ge=-12.0, le=18.0, description="makeup gain in dB (None = automatic)")
    mix: float = Field(1.0, ge=0.0, le=1.0, description="parallel (New York) mix: 1 = fully compressed")
    lookahead_ms: float | None = Field(None, ge=0.0, le=20.0,
                                       description="detector look-ahead in ms (None = the attack time, at most 20 ms)")


def compress_array(x: np.ndarray, sr: int, p: CompressParams) -> tuple[np.ndarray, dict]:
    a = p.amount
    step = max(1, int(round(STEP_S * sr)))
    level = dsp.frame_rms_db(x, step)
    active = level > max(level.max() - 50.0, -70.0)
    l95 = float(np.percentile(level[active], 95)) if active.any() else -20.0
    thr = p.threshold_db if p.threshold_db is not None else l95 - (2.0 + 16.0 * a)
    ratio = p.ratio if p.ratio is not None else 1.0 + 5.0 * a
    attack = p.attack_ms if p.attack_ms is not None else 20.0 - 18.0 * a
    release = p.release_ms if p.release_ms is not None else 250.0 - 150.0 * a
    knee = p.knee_db if p.knee_db is not None else 6.0
    gr = band_gain(level, thr, max(ratio, 1.0), knee, 60.0) if ratio > 1.0 else np.zeros_like(level)
    gr = dsp.smooth_gain_db(gr, step / sr, attack, release)
    look = p.lookahead_ms if p.lookahead_ms is not None else min(attack, 20.0)
    la = int(round(look * 1e-3 / STEP_S))
    if la > 0 and gr.size > la:  # offline look-ahead: the gain is in place when the transient arrives
        gr = np.concatenate([gr[la:], np.repeat(gr[-1], la)])
    makeup = p.makeup_db if p.makeup_db is not None else (float(np.median(gr[active])) if active.any() else 0.0)
    g = 10.0 ** ((makeup - dsp.frames_to_samples(gr, step, x.shape[-1])) / 20.0)
    wet = x * g[None, :]
    y = (1.0 - p.mix) * x + p.mix * wet if p.mix < 1.0 else wet
    info = {
        "threshold_db": round(thr, 2), "ratio": round(ratio, 2), "attack_ms": round(attack, 1),
        "release_ms": round(release, 1), "lookahead_ms": round(look, 1), "knee_db": knee, "makeup_db": round(makeup, 2), "mix": p.mix,
        "gain_reduction_db": {"max": round(float(gr.max()), 2),
                              "mean": round(float(gr[active].mean()) if active.any() else 0.0, 2),
                              "p95": round(float(np.percentile(gr, 95)), 2)},
    }
    return y.astype(np.float32), info


def crest_db(x: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return 20 * np.log10(max(float(np.abs(x).max()), 1e-12) / max(rms, 1e-12))


def run(audio: Audio, params: CompressParams, ctx: ToolContext) -> ToolResult:
    y, info = compress_array(audio.samples, audio.sample_rate, params)
    warnings = []
    peak = float(np.abs(y).max())
    if peak > 1.0:
        warnings.append(f"compress: makeup pushed the sample peak to {20 * np.log10(peak):+.1f} dBFS; "
                        "master (or lower makeup_db) before export")
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
)
