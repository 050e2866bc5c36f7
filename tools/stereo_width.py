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

from pydantic import Field

from tools import dsp
from tools.audio import Audio
from tools.registry import Stage, ToolContext, ToolParams, ToolResult, ToolSpec


class StereoWidthParams(ToolParams):
    width: float = Field(1.0, ge=0.0, le=2.0, description="0 = mono, 1 = unchanged, 2 = twice as wide")
    bass_mono_hz: float = Field(
        120.0, ge=0.0, le=300.0, description="side content below this is removed (0 = off)"
    )


def run(audio: Audio, params: StereoWidthParams, ctx: ToolContext) -> ToolResult:
    warnings: list[str] = []
    if audio.channels < 2:
        warnings.append("stereo_width: the input is mono; width has no effect")
        return ToolResult(
            audio=audio,
            report={"note": "mono input, unchanged", "stereo_correlation": 1.0},
            warnings=warnings,
        )
    y, report = dsp.stereo_width(
        audio.samples, audio.sample_rate, params.width, params.bass_mono_hz, warnings
    )
    return ToolResult(audio=audio.with_samples(y), report=report, warnings=warnings)


SPEC = ToolSpec(
    name="stereo_width",
    description="mid/side stereo width (narrower … wider), bass kept mono, mono compatibility reported",
    params=StereoWidthParams,
    run=run,
    stage=Stage.SPACE,
    applies_to=("mix", "music", "other"),
    verb="changed the stereo width",
    scales=(("width", 1.0),),
    whole_mix=True,
)
