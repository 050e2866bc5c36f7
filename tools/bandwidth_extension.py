"""bandwidth_extension: detect a missing top band and synthesise it, blended under the original.

Detection: the long-term spectrum (median over frames, in dB) is smoothed; the cut-off
is the highest frequency whose level is still within 45 dB of the 1–4 kHz reference
level, provided the band above it sits at least 50 dB under that reference. No cut-off within 0.9·Nyquist
means nothing is missing.

Synthesis (spectral band replication with harmonic excitation): the band one octave
(or less) below the cut-off is squared-off through a soft half-wave rectifier (which
creates harmonics of what is there), high-passed at the cut-off, and its spectral
envelope is shaped frame by frame to continue the source band's level with a
−6 dB/octave tilt (plus the per-frame level of the top source octave, so transients
stay transients). The result is added only above the cut-off, scaled by ``amount``;
everything below the cut-off is the original, untouched.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from tools import dsp
from tools.audio import Audio
from tools.dsp import peak_warning
from tools.registry import Stage, ToolContext, ToolParams, ToolResult, ToolSpec


class BandwidthExtensionParams(ToolParams):
    amount: float = Field(
        0.5, ge=0.0, le=1.0, description="level of the synthesised top band (0 = none, 1 = full)"
    )
    cutoff_hz: float | None = Field(
        None, ge=1000.0, le=96000.0, description="where the original band stops; None = detect it"
    )


def detect_cutoff_hz(x: np.ndarray, sr: int) -> float | None:
    """Highest frequency with real content, or None if the spectrum reaches ~Nyquist."""
    m = x.mean(axis=0) if x.ndim == 2 else x
    n_fft = 4096 if sr > 24000 else 2048
    hop = n_fft // 2
    if m.size < n_fft:
        return None
    frames = np.lib.stride_tricks.sliding_window_view(m, n_fft)[::hop]
    p = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=-1)) ** 2
    e = p.sum(axis=1)
    if not e.any():  # digital silence: no band to measure
        return None
    p = p[e > np.percentile(e, 50)] if p.shape[0] > 4 else p  # louder half of the frames
    spec = 10 * np.log10(np.mean(p, axis=0) + 1e-20)
    f = np.fft.rfftfreq(n_fft, 1 / sr)
    k = 9
    smooth = np.convolve(spec, np.ones(k) / k, mode="same")
    ref = float(np.median(smooth[(f >= 1000) & (f <= 4000)]))
    alive = np.flatnonzero(smooth > ref - 45.0)
    if alive.size == 0:
        return None
    top = int(alive[-1])
    if f[top] >= 0.9 * sr / 2:
        return None
    above = smooth[top + 1 :]
    if above.size == 0 or ref - float(np.median(above)) < 50.0:  # no steep fall past the edge
        return None
    return float(f[top])


def extend_channel(x: np.ndarray, sr: int, cutoff: float, amount: float) -> np.ndarray:
    n_fft = 2048 if sr > 24000 else 1024
    hop = n_fft // 4
    pad = n_fft
    n = x.size
    xp = dsp.stft_pad(x, n_fft, hop)
    total = xp.size
    f = np.fft.rfftfreq(n_fft, 1 / sr)
    src_lo = max(cutoff / 2, cutoff - 4000.0, 200.0)
    # harmonic excitation: rectified source band creates energy at multiples of its content
    z = dsp.tight_stft(xp, n_fft, hop)
    band = (f >= src_lo) & (f < cutoff)
    zb = np.where(band[None, :], z, 0)
    src = dsp.tight_istft(zb, n_fft, hop, total)
    exc = np.abs(src) + 0.3 * src  # soft half-wave rectifier (asymmetric: even and odd harmonics)
    ze = dsp.tight_stft(exc, n_fft, hop)
    hi = f >= cutoff
    # per-frame target envelope: source-band level per bin near the edge, falling 6 dB/octave
    top = (f >= max(src_lo, cutoff * 0.75)) & (f < cutoff)
    edge_mag = np.sqrt(np.mean(np.abs(z[:, top]) ** 2, axis=1, keepdims=True) + 1e-30)  # (T, 1)
    tilt = (cutoff / np.maximum(f[hi], cutoff)) ** 1.0  # −6 dB/octave in magnitude
    target = edge_mag * tilt[None, :]
    e_mag = np.sqrt(np.mean(np.abs(ze[:, hi]) ** 2, axis=1, keepdims=True) + 1e-30)
    shaped = ze[:, hi] / e_mag * target
    # smooth fade-in over the first third of an octave above the cut-off
    fade = np.clip(np.log2(np.maximum(f[hi], cutoff) / cutoff) / (1 / 3), 0, 1) * 0.5 + 0.5
    znew = np.zeros_like(z)
    znew[:, hi] = amount * shaped * fade[None, :]
    add = dsp.tight_istft(znew, n_fft, hop, total)[pad : pad + n]
    return np.asarray(x + add)


def run(audio: Audio, params: BandwidthExtensionParams, ctx: ToolContext) -> ToolResult:
    x = audio.samples.astype(np.float64)
    sr = audio.sample_rate
    report: dict[str, Any] = {"amount": params.amount}
    cutoff: float | None
    if params.cutoff_hz is not None:
        cutoff, source = float(params.cutoff_hz), "given"
    else:
        cutoff, source = detect_cutoff_hz(x, sr), "detected"
    report["cutoff_source"] = source
    if cutoff is None or cutoff >= 0.95 * sr / 2:
        report.update(cutoff_hz=None, note="full bandwidth already; nothing to extend")
        return ToolResult(audio=audio, report=report)
    report["cutoff_hz"] = round(cutoff, 1)
    if params.amount == 0:
        report["note"] = "amount 0: unchanged"
        return ToolResult(audio=audio, report=report)
    out = np.stack([extend_channel(x[c], sr, cutoff, params.amount) for c in range(audio.channels)])
    added = out - x
    report["added_band_hz"] = [round(cutoff, 1), sr / 2]
    report["added_energy_db"] = round(
        float(10 * np.log10((np.sum(added**2) + 1e-20) / (np.sum(x**2) + 1e-20))), 2
    )
    warnings = peak_warning("bandwidth_extension", out)
    return ToolResult(audio=audio.with_samples(out.astype(np.float32)), report=report, warnings=warnings)


SPEC = ToolSpec(
    name="bandwidth_extension",
    description="restore missing high frequencies: detect the cut-off, synthesise the top band under the original",
    params=BandwidthExtensionParams,
    run=run,
    stage=Stage.REPAIR,
    applies_to=("mix", "speech", "vocals", "music"),
    amount_key="amount",
    verb="restored missing high frequencies",
    repairs=("bandlimited",),
)
