"""sidechain: duck a music track under a voice track, broadband or only in the voice's band.

Main input = music; ``ctx.inputs["voice"]`` = the voice (resampled and length-matched to the
music here). Voice activity is detected every 10 ms from the voice's level (high-passed at
100 Hz): active when within 35 dB of its loud level (95th percentile) and above −60 dBFS,
held 150 ms across short gaps between syllables. While active the music is turned down by
``depth_db`` (a fixed depth, not a ratio, so the result is predictable), with attack/release
smoothing.

Modes: ``broadband`` multiplies the whole music signal; ``band`` cuts only the voice's
band (200 Hz–5 kHz by default, quarter-octave raised-cosine edges) in the STFT domain, so the
bass and the top end keep going while the voice sings.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from tools import dsp
from tools.audio import Audio
from tools.registry import Stage, ToolContext, ToolParams, ToolResult, ToolSpec


class SidechainParams(ToolParams):
    depth_db: float = Field(
        6.0, ge=0.0, le=24.0, description="how far the music goes down while the voice is active (dB)"
    )
    attack_ms: float = Field(
        dsp.DUCK_ATTACK_MS, ge=1.0, le=500.0, description="how fast the music goes down (ms)"
    )
    release_ms: float = Field(
        dsp.DUCK_RELEASE_MS,
        ge=10.0,
        le=3000.0,
        description="how fast it comes back after the voice stops (ms)",
    )
    mode: Literal["broadband", "band"] = Field(
        "band", description="duck everything, or only the voice's band"
    )
    band_low_hz: float = Field(
        dsp.DUCK_BAND_LOW_HZ, ge=50.0, le=2000.0, description="band mode: lower edge of the ducked band (Hz)"
    )
    band_high_hz: float = Field(
        dsp.DUCK_BAND_HIGH_HZ,
        ge=1000.0,
        le=16000.0,
        description="band mode: upper edge of the ducked band (Hz)",
    )


def align(voice: Audio, like: Audio) -> np.ndarray:
    """`voice` at `like`'s rate and channel count, zero-padded or cut to its length."""
    v = voice.resample(like.sample_rate).to_channels(like.channels).samples
    out = np.zeros((like.channels, like.frames), np.float32)
    n = min(like.frames, v.shape[1])
    out[:, :n] = v[:, :n]
    return out


def run(audio: Audio, params: SidechainParams, ctx: ToolContext) -> ToolResult:
    if "voice" not in ctx.inputs:
        raise ValueError("sidechain needs the voice track as ctx.inputs['voice']")
    warnings: list[str] = []
    voice = align(ctx.inputs["voice"], audio)
    if ctx.inputs["voice"].duration_s < audio.duration_s - 0.5:
        warnings.append("sidechain: the voice is shorter than the music; the rest is treated as silence")
    if params.depth_db <= 0:
        return ToolResult(audio=audio, report={"note": "depth_db is 0; audio unchanged"}, warnings=warnings)
    p = params
    y, info = dsp.duck(
        audio.samples,
        audio.sample_rate,
        voice,
        warnings,
        depth_db=p.depth_db,
        mode=p.mode,
        attack_ms=p.attack_ms,
        release_ms=p.release_ms,
        band_low_hz=p.band_low_hz,
        band_high_hz=p.band_high_hz,
    )
    return ToolResult(audio=audio.with_samples(y), report=info, warnings=warnings)


SPEC = ToolSpec(
    name="sidechain",
    description="duck music under a voice (broadband, or only the voice's band while the voice is active)",
    params=SidechainParams,
    run=run,
    stage=Stage.MIX,
    applies_to=("music", "mix"),
    needs_inputs=("voice",),
    verb="ducked the music under the voice",
    scales=(("depth_db", 0.0),),
    whole_mix=True,
)
