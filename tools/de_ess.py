"""de_ess: split-band de-esser on the sibilance band (default 5–10 kHz).

Works in the STFT domain (Hann, ~23 ms frames, 75 % overlap, exact overlap-add): a frame is
sibilant when the sibilance band holds more than ``0.45 − 0.3·amount`` of the frame's energy
(0.30 at the default) and the frame is within 45 dB of the loudest one. In those frames only
the band (raised-cosine edges a quarter-octave wide) is turned down, by enough to bring the
band's share back to that threshold, at most ``3 + 9·amount`` dB (7.5 dB at the default);
other frames and other frequencies pass untouched. The gain is smoothed over frames
(attack 1 ms, release 30 ms), linked across channels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from tools import dsp
from tools.audio import Audio
from tools.registry import Stage, ToolContext, ToolParams, ToolResult, ToolSpec


class DeEssParams(ToolParams):
    amount: float = Field(0.5, ge=0.0, le=1.0, description="sensitivity and depth (0 = off)")
    low_hz: float = Field(5000.0, ge=1000.0, le=16000.0, description="lower edge of the sibilance band in Hz")
    high_hz: float = Field(
        10000.0, ge=2000.0, le=20000.0, description="upper edge of the sibilance band in Hz"
    )


def run(audio: Audio, params: DeEssParams, ctx: ToolContext) -> ToolResult:
    warnings: list[str] = []
    sr = audio.sample_rate
    hi = dsp.clamp_freq(params.high_hz, sr, warnings, "de_ess upper edge")
    lo = min(params.low_hz, hi / 1.5)
    if lo < params.low_hz:
        warnings.append(f"de_ess: band moved to {lo:.0f}–{hi:.0f} Hz to fit under 0.45·{sr} Hz")
    report: dict[str, Any] = {"band_hz": [round(lo), round(hi)]}
    if params.amount <= 0:
        report["note"] = "amount is 0; audio unchanged"
        return ToolResult(audio=audio, report=report, warnings=warnings)
    n_fft = dsp.stft_size(sr, 0.023)
    hop = n_fft // 4
    z, _ = dsp.stft(audio.samples, n_fft, hop)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    power = (z.real**2 + z.imag**2).sum(axis=0)  # (T, F) linked over channels
    inband = (freqs >= lo) & (freqs <= hi)
    e_band = power[:, inband].sum(axis=1)
    e_tot = power.sum(axis=1) + 1e-20
    del power
    share = e_band / e_tot
    level = 10 * np.log10(e_tot)
    thr_share = 0.45 - 0.3 * params.amount
    max_cut = 3.0 + 9.0 * params.amount
    sibilant = (share > thr_share) & (level > level.max() - 45.0)
    # cut so that band/(band+rest) comes back to thr_share: band' = thr/(1-thr)·rest
    rest = e_tot - e_band
    want = thr_share / (1.0 - thr_share) * rest
    cut = np.where(sibilant, 10 * np.log10(np.maximum(e_band, 1e-20) / np.maximum(want, 1e-20)), 0.0)
    cut = np.clip(cut, 0.0, max_cut)
    cut = dsp.smooth_gain_db(cut, hop / sr, 1.0, 30.0)
    g = 10.0 ** (-cut / 20.0)
    mask = dsp.band_mask(freqs, lo, hi, 0.25)
    y = _with_band_cut(audio.samples, z, 1.0 - g, mask, n_fft, hop)
    # the frame times of the stft (with its n_fft padding) → seconds
    report.update(
        {
            "sibilant_fraction": round(float(sibilant.mean()), 3),
            "max_cut_db": round(float(cut.max()), 2),
            "mean_cut_in_sibilant_db": round(float(cut[sibilant].mean()), 2) if sibilant.any() else 0.0,
            "share_threshold": round(thr_share, 3),
        }
    )
    return ToolResult(audio=audio.with_samples(y), report=report, warnings=warnings)


#: frames whose band is turned down by less than this (a share of the band) pass untouched: the
#: change would be ~1e-9 of the band, far under float32's resolution
_NO_CUT = 1e-9


def _with_band_cut(
    x: np.ndarray, z: np.ndarray, depth: np.ndarray, mask: np.ndarray, n_fft: int, hop: int
) -> np.ndarray:
    """`dsp.istft` of ``z · (1 − depth[t]·mask[f])`` (``z = dsp.stft(x)``), as ``x`` plus the inverse
    of the part taken out: the transform is linear and reproduces ``x`` from unmodified frames, so
    only the frames with a cut are resynthesised (weighted overlap-add over the summed squared
    windows, which every sample of ``x`` has whole: four frames at 75 % overlap)."""
    c, n = x.shape
    y = np.array(x, dtype=np.float32, copy=True)
    frames = np.flatnonzero(depth >= _NO_CUT)
    if frames.size == 0:
        return y
    win = np.hanning(n_fft + 1)[:-1]
    r = n_fft // hop
    # istft's norm at a sample: its frames' squared windows added in frame order (the last-placed first)
    norm = np.zeros(hop)
    for j in reversed(range(r)):
        norm += win[j * hop : (j + 1) * hop] ** 2
    # runs of frames close enough (fewer than r frames apart) that their samples overlap are done as one
    split = np.flatnonzero(np.diff(frames) > r)
    for a, b in zip(np.r_[frames[0], frames[split + 1]], np.r_[frames[split], frames[-1]] + 1, strict=True):
        taken = np.fft.irfft(z[:, a:b] * (depth[a:b, None] * mask[None, :]), n=n_fft, axis=-1) * win
        seg = np.zeros((c, (b - a - 1) * hop + n_fft))
        for k in range(b - a):
            seg[:, k * hop : k * hop + n_fft] += taken[:, k]
        s0 = a * hop - n_fft  # the run's first sample in x (stft pads n_fft zeros in front)
        lo, hi = max(s0, 0), min(s0 + seg.shape[1], n)
        if hi > lo:
            part = seg[:, lo - s0 : hi - s0] / norm[(np.arange(lo, hi) + n_fft) % hop]
            y[:, lo:hi] = x[:, lo:hi] - part
    return y


SPEC = ToolSpec(
    name="de_ess",
    description="reduce sibilance: turn down the 5–10 kHz band only in sibilant (s, sh) moments",
    params=DeEssParams,
    run=run,
    stage=Stage.TONE,
    applies_to=("vocals", "speech", "mix"),
    amount_key="amount",
    verb="softened harsh 's' sounds (de-esser)",
    voice=True,
)
