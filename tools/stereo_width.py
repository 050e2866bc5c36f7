"""stereo_width: mid/side width (0 = mono … 1 unchanged … 2 = twice the side), bass kept mono.

``M = (L+R)/2, S = (L−R)/2``; the side signal is split with a zero-phase 4th-order
(Butterworth, run forwards and backwards) low-pass at ``bass_mono_hz``: below it the side is
removed (mono bass), above it the side is multiplied by ``width``. Only the first two channels
are processed; mono input is returned unchanged with a warning.

Mono compatibility is always checked and reported: the L/R correlation after processing and
the level lost when the result is folded to mono. A negative correlation or a fold-down loss
of more than 3 dB produces a warning, never silence.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from tools import dsp
from tools.audio import Audio
from tools.dsp import peak_warning
from tools.registry import Stage, ToolContext, ToolParams, ToolResult, ToolSpec


class StereoWidthParams(ToolParams):
    width: float = Field(1.0, ge=0.0, le=2.0, description="0 = mono, 1 = unchanged, 2 = twice as wide")
    bass_mono_hz: float = Field(120.0, ge=0.0, le=300.0, description="side content below this is removed (0 = off)")


def mono_loss_db(x: np.ndarray) -> float:
    """Level lost (dB) when L/R are folded to (L+R)/2, relative to the mean channel power."""
    lr = x[:2].astype(np.float64)
    p_st = float(np.mean(lr * lr))
    m = lr.mean(axis=0)
    p_mono = float(np.mean(m * m))
    return 10 * np.log10(max(p_st, 1e-20) / max(p_mono, 1e-20)) if p_st > 0 else 0.0


def run(audio: Audio, params: StereoWidthParams, ctx: ToolContext) -> ToolResult:
    warnings: list[str] = []
    if audio.channels < 2:
        warnings.append("stereo_width: the input is mono; width has no effect")
        return ToolResult(audio=audio, report={"note": "mono input, unchanged", "stereo_correlation": 1.0},
                          warnings=warnings)
    x = audio.samples.astype(np.float64)
    mid = 0.5 * (x[0] + x[1])
    side = 0.5 * (x[0] - x[1])
    report: dict = {"width": params.width, "correlation_before": round(dsp.stereo_correlation(audio.samples), 3)}
    if params.bass_mono_hz > 0:
        f = dsp.clamp_freq(params.bass_mono_hz, audio.sample_rate, warnings, "bass mono crossover")
        low = dsp.apply_sos(side[None, :], dsp.biquad("lowpass", f, audio.sample_rate, 0.0, 0.707), zero_phase=True)[0]
        side_hi = side - low
        report["bass_mono_hz"] = round(f, 1)
    else:
        side_hi = side
    new_side = params.width * side_hi
    y = audio.samples.copy()
    y[0] = mid + new_side
    y[1] = mid - new_side
    corr = dsp.stereo_correlation(y)
    loss = mono_loss_db(y)
    report.update({"correlation_after": round(corr, 3), "mono_fold_loss_db": round(loss, 2),
                   "side_gain_db": round(20 * np.log10(max(params.width, 1e-6)), 1)})
    if corr < 0.0 or loss > 3.0:
        warnings.append(f"stereo_width: mono compatibility is poor after processing (correlation {corr:+.2f}, "
                        f"{loss:.1f} dB lost when folded to mono); use a smaller width")
    warnings += peak_warning("stereo_width", y)
    return ToolResult(audio=audio.with_samples(y), report=report, warnings=warnings)


SPEC = ToolSpec(
    name="stereo_width",
    description="mid/side stereo width (narrower … wider), bass kept mono, mono compatibility reported",
    params=StereoWidthParams,
    run=run,
    stage=Stage.SPACE,
    applies_to=("mix", "music", "other"),
)
