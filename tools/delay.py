"""delay: tempo-free echo in milliseconds: slapback, feedback echo, ping-pong.

Echo k (k = 1, 2, …) is the input delayed by ``k·time_ms``, scaled by ``feedback^(k−1)`` and
low-passed k times at 6 kHz (each trip round the loop gets a little darker, like tape or an
analogue delay); echoes stop once they are 60 dB down (at most 40). ``slapback`` is a single
echo (default 110 ms, within the 80–150 ms of VOCABULARY.md; no feedback). ``ping_pong``
alternates echoes between left and right (mono input becomes stereo). The wet signal is
blended with an equal-power crossfade ``cos(a·π/2)·dry + sin(a·π/2)·wet`` (a = ``amount``).
The output keeps the input's length.
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

MAX_ECHOES = 40


class DelayParams(ToolParams):
    time_ms: float = Field(
        350.0, ge=1.0, le=2000.0, description="time between echoes in ms (slapback default 110)"
    )
    feedback: float = Field(
        0.3, ge=0.0, le=0.9, description="level of each echo relative to the previous one"
    )
    amount: float = Field(0.25, ge=0.0, le=1.0, description="wet level (0 = dry, 1 = only echoes)")
    style: Literal["slapback", "echo", "ping_pong"] = Field(
        "echo", description="slapback (one echo), echo, ping_pong"
    )


def run(audio: Audio, params: DelayParams, ctx: ToolContext) -> ToolResult:
    set_ = params.model_fields_set
    time_ms = params.time_ms if ("time_ms" in set_ or params.style != "slapback") else 110.0
    n_echo = 1 if params.style == "slapback" else MAX_ECHOES
    fb = params.feedback
    if fb > 0 and n_echo > 1:
        n_echo = min(MAX_ECHOES, 1 + int(math.ceil(math.log(1e-3) / math.log(fb))))
    elif n_echo > 1:
        n_echo = 1
    report: dict[str, Any] = {
        "style": params.style,
        "time_ms": time_ms,
        "feedback": fb,
        "echoes": n_echo,
        "amount": params.amount,
    }
    if params.amount <= 0:
        report["note"] = "amount is 0; audio unchanged"
        return ToolResult(audio=audio, report=report)
    sr = audio.sample_rate
    x = audio.samples
    if params.style == "ping_pong" and audio.channels == 1:
        x = np.repeat(x, 2, axis=0)
        report["note"] = "ping_pong made the mono input stereo"
    c, n = x.shape
    d = int(round(time_ms * 1e-3 * sr))
    lp = dsp.biquad("lowpass", dsp.clamp_freq(6000.0, sr), sr, 0.0, 0.707)
    wet = np.zeros((c, n), np.float64)
    src = x.mean(axis=0, keepdims=True) if params.style == "ping_pong" else x
    echo = src.astype(np.float64)
    for k in range(1, n_echo + 1):
        if k * d >= n:
            break
        echo = dsp.apply_sos(echo, lp).astype(np.float64)
        gain = fb ** (k - 1)
        seg = gain * echo[:, : n - k * d]
        if params.style == "ping_pong":
            wet[(k - 1) % 2, k * d :] += seg[0]
        else:
            wet[:, k * d :] += seg
    a = params.amount * math.pi / 2
    y = math.cos(a) * x + math.sin(a) * wet
    warnings = peak_warning("delay", y)
    return ToolResult(audio=audio.with_samples(y.astype(np.float32)), report=report, warnings=warnings)


SPEC = ToolSpec(
    name="delay",
    description="add echo: slapback, feedback echo or ping-pong, time in ms",
    params=DelayParams,
    run=run,
    stage=Stage.SPACE,
    applies_to=("vocals", "mix", "music", "other"),
    amount_key="amount",
    verb="added delay",
)
