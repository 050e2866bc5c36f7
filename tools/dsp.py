"""Shared DSP pieces for the mixing and mastering tools: biquads, linear-phase FIRs from a
gain curve, STFT with exact overlap-add, frame levels, gain smoothing, band energies, and
a look-ahead true-peak limiter.

Conventions: audio arrays are float ``(channels, frames)``; gains in dB unless named
``*_lin``; frequencies in Hz. Filters here are minimum-phase IIR (RBJ "Audio EQ Cookbook"
biquads, applied causally with ``sosfilt``) unless the function says linear/zero phase.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

#: no filter corner may sit above this fraction of the sample rate (Nyquist is 0.5)
MAX_FREQ_FRACTION = 0.45


# ----------------------------------------------------------------------------- helpers


def db_to_lin(db: float | np.ndarray) -> float | np.ndarray:
    return 10.0 ** (np.asarray(db) / 20.0) if isinstance(db, np.ndarray) else 10.0 ** (db / 20.0)


def lin_to_db(x: float | np.ndarray, floor: float = 1e-12) -> float | np.ndarray:
    return 20.0 * np.log10(np.maximum(x, floor))


def peak_warning(tool: str, samples: np.ndarray) -> list[str]:
    """[warning] when `samples` peak over full scale (the later `master` step brings it down), else []."""
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    if peak <= 1.0:
        return []
    return [f"{tool}: sample peak {20 * math.log10(peak):+.1f} dBFS; a later gain stage (master) must bring it down"]


def clamp_freq(freq_hz: float, sample_rate: int, warnings: list[str] | None = None, what: str = "filter") -> float:
    """Clamp a corner frequency into [10 Hz, 0.45·fs]; append a warning when it had to move."""
    hi = MAX_FREQ_FRACTION * sample_rate
    f = float(freq_hz)
    if f > hi:
        if warnings is not None:
            warnings.append(f"{what} at {f:.0f} Hz is above 0.45×{sample_rate} Hz; moved to {hi:.0f} Hz")
        return hi
    if f < 10.0:
        if warnings is not None:
            warnings.append(f"{what} at {f:.1f} Hz is below 10 Hz; moved to 10 Hz")
        return 10.0
    return f


# ----------------------------------------------------------------------------- biquads (RBJ cookbook)


def biquad(kind: str, freq_hz: float, sample_rate: int, gain_db: float = 0.0, q: float = 0.707) -> np.ndarray:
    """One RBJ cookbook biquad as a (1, 6) SOS array.

    kind: "peak", "low_shelf", "high_shelf", "highpass", "lowpass", "bandpass" (0 dB peak gain),
    "notch". Shelves use ``q`` as the shelf Q (0.707 = Butterworth-like, no overshoot).
    """
    w0 = 2.0 * math.pi * freq_hz / sample_rate
    cw, sw = math.cos(w0), math.sin(w0)
    alpha = sw / (2.0 * max(q, 1e-3))
    a = 10.0 ** (gain_db / 40.0)
    if kind == "peak":
        b = [1 + alpha * a, -2 * cw, 1 - alpha * a]
        den = [1 + alpha / a, -2 * cw, 1 - alpha / a]
    elif kind in ("low_shelf", "high_shelf"):
        sa = 2.0 * math.sqrt(a) * alpha
        if kind == "low_shelf":
            b = [a * ((a + 1) - (a - 1) * cw + sa), 2 * a * ((a - 1) - (a + 1) * cw), a * ((a + 1) - (a - 1) * cw - sa)]
            den = [(a + 1) + (a - 1) * cw + sa, -2 * ((a - 1) + (a + 1) * cw), (a + 1) + (a - 1) * cw - sa]
        else:
            b = [a * ((a + 1) + (a - 1) * cw + sa), -2 * a * ((a - 1) + (a + 1) * cw), a * ((a + 1) + (a - 1) * cw - sa)]
            den = [(a + 1) - (a - 1) * cw + sa, 2 * ((a - 1) - (a + 1) * cw), (a + 1) - (a - 1) * cw - sa]
    elif kind == "highpass":
        b = [(1 + cw) / 2, -(1 + cw), (1 + cw) / 2]
        den = [1 + alpha, -2 * cw, 1 - alpha]
    elif kind == "lowpass":
        b = [(1 - cw) / 2, 1 - cw, (1 - cw) / 2]
        den = [1 + alpha, -2 * cw, 1 - alpha]
    elif kind == "bandpass":
        b = [alpha, 0.0, -alpha]
        den = [1 + alpha, -2 * cw, 1 - alpha]
    elif kind == "notch":
        b = [1.0, -2 * cw, 1.0]
        den = [1 + alpha, -2 * cw, 1 - alpha]
    else:
        raise ValueError(f"unknown biquad kind '{kind}'")
    sos = np.array([b + den], dtype=np.float64)
    return sos / sos[0, 3]


def sos_response_db(sos: np.ndarray, freqs_hz: np.ndarray, sample_rate: int) -> np.ndarray:
    """Magnitude response (dB) of an SOS cascade at `freqs_hz`."""
    from scipy.signal import sosfreqz

    _, h = sosfreqz(sos, worN=np.asarray(freqs_hz, dtype=np.float64), fs=sample_rate)
    return 20.0 * np.log10(np.maximum(np.abs(h), 1e-12))


def apply_sos(x: np.ndarray, sos: np.ndarray, zero_phase: bool = False) -> np.ndarray:
    """Filter (channels, frames) along time; float64 maths, float32 out."""
    from scipy.signal import sosfilt, sosfiltfilt

    if sos.size == 0:
        return np.asarray(x, dtype=np.float32).copy()
    if zero_phase:
        padlen = min(x.shape[-1] - 1, 3 * 2 * sos.shape[0] * 50)
        y = sosfiltfilt(sos, x.astype(np.float64), axis=-1, padlen=max(padlen, 0))
    else:
        y = sosfilt(sos, x.astype(np.float64), axis=-1)
    return y.astype(np.float32)


# ----------------------------------------------------------------------------- linear-phase FIR


def fir_from_curve(freqs_hz: np.ndarray, gains_db: np.ndarray, sample_rate: int, n_taps: int | None = None) -> np.ndarray:
    """Linear-phase FIR whose magnitude follows the gain curve (interpolated on log frequency).

    Outside the curve's range the end values are held. Odd length (integer delay n_taps//2).
    """
    if n_taps is None:
        n_taps = int(2 ** math.ceil(math.log2(sample_rate * 0.04))) + 1  # ~40 ms: ~25 Hz resolution
    n_fft = 1 << int(math.ceil(math.log2(n_taps * 2)))
    f = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    lf = np.log2(np.maximum(f, 1.0))
    g = np.interp(lf, np.log2(np.asarray(freqs_hz, dtype=np.float64)), np.asarray(gains_db, dtype=np.float64))
    mag = 10.0 ** (g / 20.0)
    h = np.fft.irfft(mag, n=n_fft)
    h = np.roll(h, n_taps // 2)[:n_taps] * np.hanning(n_taps + 2)[1:-1]
    return h


def apply_fir(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Convolve (channels, frames) with a linear-phase FIR and remove its delay (same length)."""
    from scipy.signal import oaconvolve

    d = h.size // 2
    y = oaconvolve(x.astype(np.float64), h[None, :], mode="full", axes=-1)
    return y[:, d : d + x.shape[-1]].astype(np.float32)


# ----------------------------------------------------------------------------- STFT


def stft(x: np.ndarray, n_fft: int, hop: int) -> tuple[np.ndarray, int]:
    """(C, N) → complex (C, T, F) with a periodic Hann window; returns (spec, padded length)."""
    c, n = x.shape
    pad = n_fft
    total = n + 2 * pad
    total += (-(total - n_fft)) % hop
    xp = np.zeros((c, total), dtype=np.float64)
    xp[:, pad : pad + n] = x
    win = np.hanning(n_fft + 1)[:-1]
    frames = np.lib.stride_tricks.sliding_window_view(xp, n_fft, axis=-1)[:, ::hop]
    return np.fft.rfft(frames * win, axis=-1), total


def istft(z: np.ndarray, n_fft: int, hop: int, total: int, n: int) -> np.ndarray:
    """Inverse of `stft` (Hann analysis and synthesis, weighted overlap-add, exact for unmodified spectra)."""
    win = np.hanning(n_fft + 1)[:-1]
    frames = np.fft.irfft(z, n=n_fft, axis=-1) * win
    c, t, _ = frames.shape
    out = np.zeros((c, total))
    norm = np.zeros(total)
    for k in range(t):
        out[:, k * hop : k * hop + n_fft] += frames[:, k]
        norm[k * hop : k * hop + n_fft] += win * win
    pad = n_fft
    return (out[:, pad : pad + n] / np.maximum(norm[pad : pad + n], 1e-9)).astype(np.float32)


def stft_size(sample_rate: int, seconds: float = 0.046) -> int:
    return 1 << max(8, int(round(math.log2(seconds * sample_rate))))


# ----------------------------------------------------------------------------- levels and spectra


def frame_rms_db(x: np.ndarray, frame: int) -> np.ndarray:
    """RMS level (dBFS, channel-averaged power) of consecutive frames of `frame` samples (last one padded)."""
    c, n = x.shape
    m = -(-n // frame)
    p = np.zeros((c, m * frame), dtype=np.float64)
    p[:, :n] = x
    power = (p * p).reshape(c, m, frame).mean(axis=(0, 2))
    return 10.0 * np.log10(np.maximum(power, 1e-14))


def frames_to_samples(values: np.ndarray, frame: int, n: int) -> np.ndarray:
    """Linear interpolation of per-frame values (frame centres) onto `n` samples."""
    centres = (np.arange(values.size) + 0.5) * frame
    return np.interp(np.arange(n), centres, values)


def smooth_gain_db(gr_db: np.ndarray, step_s: float, attack_ms: float, release_ms: float) -> np.ndarray:
    """One-pole attack/release smoothing of a gain-reduction curve (dB ≥ 0 = more reduction).

    Runs at frame rate (a Python loop over frames, cheap at ~1 ms steps); attack applies when
    the reduction grows, release when it shrinks.
    """
    a_att = math.exp(-step_s / max(attack_ms * 1e-3, 1e-6))
    a_rel = math.exp(-step_s / max(release_ms * 1e-3, 1e-6))
    out = np.empty_like(gr_db, dtype=np.float64)
    y = 0.0
    for i, g in enumerate(gr_db.tolist()):
        a = a_att if g > y else a_rel
        y = a * y + (1.0 - a) * g
        out[i] = y
    return out


def average_spectrum(x: np.ndarray, sample_rate: int, n_fft: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Long-term average power spectrum (Welch, channel-averaged): (freqs Hz, power density)."""
    from scipy.signal import welch

    n_fft = n_fft or stft_size(sample_rate, 0.093)
    n_fft = min(n_fft, x.shape[-1])
    f, p = welch(x.astype(np.float64), fs=sample_rate, nperseg=n_fft, axis=-1)
    return f, np.atleast_2d(p).mean(axis=0)


def fractional_octave_levels(freqs: np.ndarray, power: np.ndarray, per_octave: int = 3, lo: float = 40.0,
                             hi: float = 16000.0) -> tuple[np.ndarray, np.ndarray]:
    """(centres Hz, mean power density dB) in fractional-octave bands between lo and hi."""
    n_bands = int(math.floor(per_octave * math.log2(hi / lo)))
    edges = lo * 2.0 ** (np.arange(n_bands + 1) / per_octave)
    centres, levels = [], []
    for i in range(n_bands):
        sel = (freqs >= edges[i]) & (freqs < edges[i + 1])
        if sel.any():
            centres.append(math.sqrt(edges[i] * edges[i + 1]))
            levels.append(10.0 * math.log10(max(float(power[sel].mean()), 1e-30)))
    return np.array(centres), np.array(levels)


def spectral_tilt_db_per_octave(x: np.ndarray, sample_rate: int, lo: float = 50.0, hi: float = 16000.0) -> float:
    """Slope (dB/octave) of a line fitted to third-octave power density, lo..min(hi, 0.45 fs)."""
    f, p = average_spectrum(x, sample_rate)
    c, lev = fractional_octave_levels(f, p, 3, lo, min(hi, MAX_FREQ_FRACTION * sample_rate))
    ok = lev > lev.max() - 90.0
    if ok.sum() < 3:
        return 0.0
    return float(np.polyfit(np.log2(c[ok]), lev[ok], 1)[0])


def spectral_centroid_hz(x: np.ndarray, sample_rate: int) -> float:
    """Magnitude-weighted mean frequency of the long-term spectrum."""
    f, p = average_spectrum(x, sample_rate)
    mag = np.sqrt(p)
    return float((f * mag).sum() / max(mag.sum(), 1e-30))


def band_energy_db(x: np.ndarray, sample_rate: int, lo: float, hi: float) -> float:
    """Energy (dB, mean power) of `x` between lo and hi Hz from the long-term spectrum."""
    f, p = average_spectrum(x, sample_rate)
    sel = (f >= lo) & (f < hi)
    return 10.0 * math.log10(max(float(p[sel].sum() * (f[1] - f[0])), 1e-30))


def band_mask(freqs: np.ndarray, lo: float, hi: float, edge_octaves: float = 0.25) -> np.ndarray:
    """0..1 weights: 1 inside [lo, hi], raised-cosine roll-off over `edge_octaves` outside."""
    lf = np.log2(np.maximum(freqs, 1e-3))
    a, b = math.log2(max(lo, 1e-3)), math.log2(max(hi, 1e-3))
    m = np.ones_like(lf)
    below = lf < a
    above = lf > b
    m[below] = 0.5 + 0.5 * np.cos(np.pi * np.clip((a - lf[below]) / edge_octaves, 0, 1))
    m[above] = 0.5 + 0.5 * np.cos(np.pi * np.clip((lf[above] - b) / edge_octaves, 0, 1))
    return m


def stereo_correlation(x: np.ndarray) -> float:
    """Pearson correlation of the first two channels at lag 0 (1.0 for mono)."""
    if x.shape[0] < 2:
        return 1.0
    left, right = x[0].astype(np.float64), x[1].astype(np.float64)
    d = math.sqrt(float(left @ left) * float(right @ right))
    return float(left @ right / d) if d > 0 else 1.0


# ----------------------------------------------------------------------------- true-peak limiter

#: 2x interpolator for the limiter's detector: windowed-sinc half-band taps for the midpoint
#: between x[n] and x[n+1] (pairs x[n-k], x[n+1+k], k = 0..3)
_MID_TAPS = None


def _mid_taps() -> np.ndarray:
    global _MID_TAPS
    if _MID_TAPS is None:
        k = np.arange(4)
        t = k + 0.5
        h = np.sinc(t) * (0.5 + 0.5 * np.cos(np.pi * t / 4.5))  # Hann-windowed sinc, 8 taps
        _MID_TAPS = (h / (2.0 * h.sum())).astype(np.float32)  # unit DC gain
    return _MID_TAPS


def block_peak(x: np.ndarray, block: int = 16) -> np.ndarray:
    """Per-block peak (max over channels) of |x| and of its 2x-interpolated midpoints.

    The detector of `true_peak_limit`: sample peaks plus the half-sample points of an 8-tap
    windowed-sinc interpolator. It catches most inter-sample overshoot; the residual (a few
    tenths of a dB at worst for content near Nyquist) is caught by `master`'s verification with
    the 4x true-peak meter of `tools.loudness` and its corrective pass.
    """
    x = np.asarray(x, dtype=np.float32)
    c, n = x.shape
    nb = -(-n // block)
    h = _mid_taps()
    pad = np.zeros((c, nb * block + 8), np.float32)
    pad[:, 4 : 4 + n] = x
    peak = np.zeros(nb, np.float32)
    for ch in range(c):
        xp = pad[ch]
        mid = np.zeros(nb * block, np.float32)
        for k in range(4):  # midpoint between x[n] and x[n+1] at index n
            mid += h[k] * (xp[4 - k : 4 - k + nb * block] + xp[5 + k : 5 + k + nb * block])
        a = np.maximum(np.abs(xp[4 : 4 + nb * block]), np.abs(mid))
        np.maximum(peak, a.reshape(nb, block).max(axis=1), out=peak)
    return peak


def limiter_gain(peak: np.ndarray, ceiling_lin: float, step_s: float, lookahead_ms: float = 2.0,
                 release_ms: float = 80.0) -> np.ndarray:
    """Gain per step (linear, ≤ 1) with gain·peak ≤ ceiling everywhere, smooth attack and release.

    Look-ahead attack: a minimum filter over ±W steps followed by a ±W moving average never
    exceeds the required gain (each average covers minima that each include the step itself).
    Release: constant dB/s recovery (6 dB per ``release_ms``), computed as a running maximum of
    the attenuation minus a linear ramp; then the attack smoothing once more.
    """
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    req = np.minimum(1.0, ceiling_lin / np.maximum(peak.astype(np.float64), 1e-12))
    if req.min() >= 1.0:
        return np.ones_like(req)
    w = max(1, int(round(lookahead_ms * 1e-3 / step_s)))
    size = 2 * w + 1

    def attack(g: np.ndarray) -> np.ndarray:
        m = minimum_filter1d(g, size=size, mode="nearest")
        return np.minimum(uniform_filter1d(m, size=size, mode="nearest"), g)

    g = attack(req)
    att = -20.0 * np.log10(g)  # ≥ 0 dB
    rate = 6.0 * step_s / max(release_ms * 1e-3, 1e-6)  # dB per step
    ramp = np.arange(att.size, dtype=np.float64) * rate
    att = np.maximum.accumulate(att + ramp) - ramp
    return attack(10.0 ** (-att / 20.0))


def block_gain_to_samples(gain: np.ndarray, block: int, n: int) -> np.ndarray:
    """Interpolate per-block gains onto samples without exceeding any block's own gain.

    Each block first takes the minimum of itself and its neighbours, so the straight line between
    two block centres never rises above the gain of the block a sample lies in.
    """
    g = gain.copy()
    g[1:] = np.minimum(g[1:], gain[:-1])
    g[:-1] = np.minimum(g[:-1], gain[1:])
    centres = (np.arange(g.size) + 0.5) * block - 0.5
    return np.interp(np.arange(n, dtype=np.float32), centres.astype(np.float32), g.astype(np.float32)).astype(np.float32)


def true_peak_limit(x: np.ndarray, sample_rate: int, ceiling_dbtp: float, lookahead_ms: float = 2.0,
                    release_ms: float = 80.0, peak: np.ndarray | None = None, pre_gain_lin: float = 1.0,
                    block: int = 16) -> tuple[np.ndarray, dict]:
    """Look-ahead peak limiter with oversampled (2x) detection, linked across channels.

    Offline and non-causal (the look-ahead needs no delay line). ``peak`` (from `block_peak` of
    the un-gained input with the same ``block``) and ``pre_gain_lin`` let a caller try several
    input gains without re-running the detector: detection is linear, so the peak of ``x·G`` is
    ``G·peak``. Returns (output float32, {"max_gr_db", "mean_gr_db", "limited_fraction"}).
    """
    if peak is None:
        peak = block_peak(x, block)
    g = limiter_gain(peak * pre_gain_lin, 10.0 ** (ceiling_dbtp / 20.0), block / sample_rate, lookahead_ms, release_ms)
    gs = block_gain_to_samples(g, block, x.shape[-1])
    y = x * (gs * np.float32(pre_gain_lin))[None, :]
    gr = -20.0 * np.log10(np.maximum(g, 1e-9))
    return y.astype(np.float32, copy=False), {
        "max_gr_db": float(gr.max()),
        "mean_gr_db": float(gr.mean()),
        "limited_fraction": float((gr > 0.1).mean()),
    }


def to_sos(sections: Sequence[np.ndarray]) -> np.ndarray:
    """Stack biquads (each (1, 6)) into one SOS array (empty (0, 6) when none)."""
    return np.vstack(sections) if sections else np.zeros((0, 6))
