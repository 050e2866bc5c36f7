"""mix: combine a vocal and a music track — aligned, levelled by loudness, optionally ducked,
with headroom left for mastering.

Main input = music; ``ctx.inputs["voice"]`` = the vocal. The vocal is resampled to the
music's rate and channel count; the shorter track is padded with silence to the longer.
Levels are set by integrated loudness (BS.1770-4): the vocal is placed ``vocal_offset_db``
above the music (gain limited to ±24 dB). With ``duck_db`` > 0 the music is ducked in the
voice's band while the voice is active (`tools.dsp.duck`, as `sidechain` in band mode). Finally the sum is turned
down, if needed, so its sample peak sits at ``−headroom_db`` dBFS (never turned up).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydantic import Field

from tools import dsp
from tools.audio import Audio
from tools.registry import Stage, ToolContext, ToolParams, ToolResult, ToolSpec


class MixParams(ToolParams):
    vocal_offset_db: float = Field(
        2.0, ge=-12.0, le=12.0, description="vocal loudness relative to the music (LU)"
    )
    duck_db: float = Field(
        3.0, ge=0.0, le=12.0, description="duck the music's voice band under the vocal (0 = off)"
    )
    headroom_db: float = Field(
        6.0, ge=0.0, le=12.0, description="peak headroom left for mastering (dB below full scale)"
    )


def run(audio: Audio, params: MixParams, ctx: ToolContext) -> ToolResult:
    from tools.loudness import integrated_lufs

    voice_in = ctx.inputs.get("voice") or ctx.inputs.get("vocals")
    if voice_in is None:
        raise ValueError("mix needs the vocal track as ctx.inputs['voice']")
    warnings: list[str] = []
    music = audio
    voice = voice_in.resample(music.sample_rate).to_channels(music.channels)
    n = max(music.frames, voice.frames)
    m = np.zeros((music.channels, n), np.float32)
    m[:, : music.frames] = music.samples
    v = np.zeros((music.channels, n), np.float32)
    v[:, : voice.frames] = voice.samples
    report: dict[str, Any] = {
        "length_s": round(n / music.sample_rate, 3),
        "padded": "music" if music.frames < n else ("voice" if voice.frames < n else "none"),
    }
    l_m = integrated_lufs(Audio(m, music.sample_rate))
    l_v = integrated_lufs(Audio(v, music.sample_rate))
    if not math.isfinite(l_v):
        warnings.append("mix: the vocal is silent; it was added without level change")
        g_v = 0.0
    elif not math.isfinite(l_m):
        warnings.append("mix: the music is silent; the vocal keeps its level")
        g_v = 0.0
    else:
        g_v = (l_m + params.vocal_offset_db) - l_v
        if abs(g_v) > 24.0:
            warnings.append(f"mix: the vocal needed {g_v:+.1f} dB; limited to ±24 dB")
            g_v = float(np.clip(g_v, -24.0, 24.0))
    report.update(
        {
            "music_lufs": round(l_m, 2) if math.isfinite(l_m) else None,
            "vocal_lufs": round(l_v, 2) if math.isfinite(l_v) else None,
            "vocal_gain_db": round(g_v, 2),
        }
    )
    v = v * np.float32(10.0 ** (g_v / 20.0))
    if params.duck_db > 0:
        m, dinfo = dsp.duck(m, music.sample_rate, v, warnings, depth_db=params.duck_db, mode="band")
        report["ducking"] = dinfo
    out = m + v
    peak = float(np.abs(out).max())
    limit = 10.0 ** (-params.headroom_db / 20.0)
    g_out = min(1.0, limit / peak) if peak > 0 else 1.0
    out = out * np.float32(g_out)
    report["output_gain_db"] = round(20 * math.log10(g_out), 2)
    report["output_peak_dbfs"] = round(20 * math.log10(max(peak * g_out, 1e-12)), 2)
    return ToolResult(audio=audio.with_samples(out.astype(np.float32)), report=report, warnings=warnings)


SPEC = ToolSpec(
    name="mix",
    description="combine a vocal and a music track: align, set levels by loudness, duck the music, leave headroom",
    params=MixParams,
    run=run,
    stage=Stage.MIX,
    applies_to=("music", "mix"),
    needs_inputs=("voice",),
    verb="balanced the vocal against the music",
    whole_mix=True,
)
