"""reverb: algorithmic room (pedalboard's Freeverb-style `Reverb`) with styles, pre-delay and wet.

The wet signal is rendered 100 % wet, delayed by ``pre_delay_ms``, optionally low-passed (the
"church" style is dark: 1.75 kHz, after Audealize's crowd data in VOCABULARY.md), matched to
the dry RMS and blended with an equal-power crossfade: ``cos(a·π/2)·dry + sin(a·π/2)·wet``
with ``a = amount`` (0.25 → dry −0.7 dB, wet −8.2 dB).

``decay_s`` (optional) picks ``room_size`` from Freeverb's comb feedback ``0.7 + 0.28·room``
and its ~30 ms mean comb delay: RT60 ≈ 3·0.03 s / −log10(feedback) — approximate (damping
shortens it). The output keeps the input's length (a tail past the end is cut; the report
says how long the tail would have been).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import Field

from tools import dsp
from tools.audio import Audio
from tools.dsp import peak_warning
from tools.registry import Stage, ToolContext, ToolParams, ToolResult, ToolSpec

STYLES = {  # room_size, damping, pre_delay_ms, wet low-pass Hz (0 = none)
    "small": (0.25, 0.6, 5.0, 0.0),
    "room": (0.5, 0.5, 10.0, 0.0),
    "hall": (0.82, 0.4, 25.0, 0.0),
    "plate": (0.65, 0.15, 0.0, 0.0),
    "church": (0.93, 0.6, 15.0, 1750.0),
}


class ReverbParams(ToolParams):
    amount: float = Field(0.25, ge=0.0, le=1.0, description="wet level (0 = dry, 1 = fully wet)")
    room_size: float = Field(0.5, ge=0.0, le=1.0, description="room size (style sets it unless given)")
    decay_s: float | None = Field(
        None, ge=0.2, le=10.0, description="approximate RT60 in seconds (sets room_size)"
    )
    pre_delay_ms: float | None = Field(
        None, ge=0.0, le=200.0, description="delay before the reverb starts (ms)"
    )
    damping: float | None = Field(
        None, ge=0.0, le=1.0, description="high-frequency damping (0 bright … 1 dark)"
    )
    style: Literal["room", "hall", "plate", "church", "small"] = Field("room", description="room character")


def room_for_decay(decay_s: float) -> float:
    fb = 10.0 ** (-3.0 * 0.03 / decay_s)
    return float(min(max((fb - 0.7) / 0.28, 0.0), 1.0))


def decay_for_room(room: float) -> float:
    fb = 0.7 + 0.28 * room
    return 3.0 * 0.03 / -math.log10(fb)


def run(audio: Audio, params: ReverbParams, ctx: ToolContext) -> ToolResult:
    import pedalboard

    set_ = params.model_fields_set
    room, damp, pre, lp = STYLES[params.style]
    if "room_size" in set_:
        room = params.room_size
    if params.decay_s is not None:
        room = room_for_decay(params.decay_s)
    damp = params.damping if params.damping is not None else damp
    pre = params.pre_delay_ms if params.pre_delay_ms is not None else pre
    report: dict[str, Any] = {
        "style": params.style,
        "room_size": round(room, 3),
        "damping": damp,
        "pre_delay_ms": pre,
        "approx_decay_s": round(decay_for_room(room), 2),
        "amount": params.amount,
    }
    if params.amount <= 0:
        report["note"] = "amount is 0; audio unchanged"
        return ToolResult(audio=audio, report=report)
    sr = audio.sample_rate
    rev = pedalboard.Reverb(room_size=room, damping=damp, wet_level=1.0, dry_level=0.0, width=1.0)
    wet = rev(audio.samples, sr)
    d = int(round(pre * 1e-3 * sr))
    if d:
        wet = np.concatenate([np.zeros((wet.shape[0], d), np.float32), wet[:, :-d]], axis=1)
    if lp:
        wet = dsp.apply_sos(
            wet, np.vstack([dsp.biquad("lowpass", dsp.clamp_freq(lp, sr), sr, 0.0, 0.707)] * 2)
        )
    rms_d = float(np.sqrt(np.mean(np.square(audio.samples, dtype=np.float64))))
    rms_w = float(np.sqrt(np.mean(np.square(wet, dtype=np.float64))))
    wet = wet * (rms_d / rms_w if rms_w > 0 else 0.0)
    a = params.amount * math.pi / 2
    y = math.cos(a) * audio.samples + math.sin(a) * wet
    report["dry_db"] = round(20 * math.log10(max(math.cos(a), 1e-6)), 1)
    report["wet_db"] = round(20 * math.log10(max(math.sin(a), 1e-6)), 1)
    warnings = peak_warning("reverb", y)
    return ToolResult(audio=audio.with_samples(y.astype(np.float32)), report=report, warnings=warnings)


SPEC = ToolSpec(
    name="reverb",
    description="add space: room, hall, plate, church or small-room reverb with size, decay, pre-delay and wet level",
    params=ReverbParams,
    run=run,
    stage=Stage.SPACE,
    applies_to=("vocals", "mix", "music", "speech", "other"),
    amount_key="amount",
    verb="added reverb",
)
