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

STEP_S = 0.01


class SidechainParams(ToolParams):
    depth_db: float = Field(6.0, ge=0.0, le=24.0, description="how far the music goes down while the voice is active (dB)")
    attack_ms: float = Field(30.0, ge=1.0, le=500.0, description="how fast the music goes down (ms)")
    release_ms: float = Field(300.0, ge=10.0, le=3000.0, description="how fast it comes back after the voice stops (ms)")
    mode: Literal["broadband", "band"] = Field("band", description="duck everything, or only the voice's band")
    band_low_hz: float = Field(200.0, ge=50.0, le=2000.0, description="band mode: lower edge of the ducked band (Hz)")
    band_high_hz: float = Field(5000.0, ge=1000.0, le=16000.0, description="band mode: upper edge of the ducked band (Hz)")


def align(voice: Audio, like: Audio) -> np.ndarray:
    """`voice` at `like`'s rate and channel count, zero-padded or cut to its length."""
    v = voice.resample(like.sample_rate).to_channels(like.channels).samples
    out = np.zeros((like.channels, like.frames), np.float32)
    n = min(like.frames, v.shape[1])
    out[:, :n] = v[:, :n]
    return out


def voice_activity(voice: np.ndarray, sr: int, step: int) -> np.ndarray:
    """0/1 activity per `step` samples of a (channels, frames) voice."""
    from scipy.ndimage import maximum_filter1d

    v = dsp.apply_sos(voice, dsp.biquad("highpass", 100.0, sr, 0.0, 0.707))
    level = dsp.frame_rms_db(v, step)
    loud = float(np.percentile(level, 95))
    active = (level > max(loud - 35.0, -60.0)).astype(np.float64)
    hold = max(1, int(round(0.15 / (step / sr))))
    return maximum_filter1d(active, size=hold, origin=-(hold // 2) if hold > 1 else 0, mode="constant")


def duck(music: Audio, voice: np.ndarray, p: SidechainParams, warnings: list[str]) -> tuple[np.ndarray, dict]:
    sr = music.sample_rate
    step = max(1, int(round(STEP_S * sr)))
    act = voice_activity(voice, sr, step)
    gr = dsp.smooth_gain_db(act * p.depth_db, step / sr, p.attack_ms, p.release_ms)
    gr_s = dsp.frames_to_samples(gr, step, music.frames)
    info: dict = {"mode": p.mode, "depth_db": p.depth_db, "voice_active_fraction": round(float(act.mean()), 3),
                  "mean_reduction_when_active_db": round(float(gr[act > 0].mean()), 2) if act.any() else 0.0}
    if p.mode == "broadband":
        y = music.samples * (10.0 ** (-gr_s / 20.0))[None, :]
        return y.astype(np.float32), info
    hi = dsp.clamp_freq(p.band_high_hz, sr, warnings, "sidechain band")
    lo = min(p.band_low_hz, hi / 2)
    n_fft = dsp.stft_size(sr, 0.046)
    hop = n_fft // 4
    z, total = dsp.stft(music.samples, n_fft, hop)
    # gain at each frame centre (frames start at -n_fft padding)
    centres = np.arange(z.shape[1]) * hop + n_fft // 2 - n_fft
    g = 10.0 ** (-np.interp(centres, np.arange(music.frames), gr_s) / 20.0)
    mask = dsp.band_mask(np.fft.rfftfreq(n_fft, 1.0 / sr), lo, hi, 0.25)
    gains = 1.0 - (1.0 - g)[:, None] * mask[None, :]
    info["band_hz"] = [round(lo), round(hi)]
    return dsp.istft(z * gains[None], n_fft, hop, total, music.frames), info


def run(audio: Audio, params: SidechainParams, ctx: ToolContext) -> ToolResult:
    if "voice" not in ctx.inputs:
        raise ValueError("sidechain needs the voice track as ctx.inputs['voice']")
    warnings: list[str] = []
    voice = align(ctx.inputs["voice"], audio)
    if ctx.inputs["voice"].duration_s < audio.duration_s - 0.5:
        warnings.append("sidechain: the voice is shorter than the music; the rest is treated as silence")
    if params.depth_db <= 0:
        return ToolResult(audio=audio, report={"note": "depth_db is 0; audio unchanged"}, warnings=warnings)
    y, info = duck(audio, voice, params, warnings)
    return ToolResult(audio=audio.with_samples(y), report=info, warnings=warnings)


SPEC = ToolSpec(
    name="sidechain",
    description="duck music under a voice (broadband, or only the voice's band while the voice is active)",
    params=SidechainParams,
    run=run,
    stage=Stage.MIX,
    applies_to=("music", "mix"),
    needs_inputs=("voice",),
)
