"""Shared DSP pieces for the tools: biquads, linear-phase FIRs from a gain curve, STFTs (exact
weighted overlap-add, sqrt-Hann tight frame, scipy's), frame levels, gain smoothing, band
energies, a look-ahead true-peak limiter, the compressor, mid/side width and voice ducking.

Tools share code through this module (and `tools.loudness`, `tools.metrics`), never by
importing another tool's module.

Conventions: audio arrays are float ``(channels, frames)``; gains in dB unless named
``*_lin``; frequencies in Hz. Filters here are minimum-phase IIR (RBJ "Audio EQ Cookbook"
biquads, applied causally with ``sosfilt``) unless the function says linear/zero phase.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

#: no filter corner may sit above this fraction of the sample rate (Nyquist is 0.5)
MAX_FREQ_FRACTION = 0.45


# ----------------------------------------------------------------------------- helpers


def db_to_lin(db: float | np.ndarray) -> float | np.ndarray:
    return 10.0 ** (np.asarray(db) / 20.0) if isinstance(db, np.ndarray) else 10.0 ** (db / 20.0)


def lin_to_db(x: float | np.ndarray, floor: float = 1e-12) -> float | np.ndarray:
    return 20.0 * np.log10(np.maximum(x, floor))


def loudness_match_db(reference_lufs: float | None, lufs: float | None) -> float:
    """Gain (dB) that plays audio measured at `lufs` (integrated) at `reference_lufs`: the one rule for
    fair listening (the UI's players, the preview's ``match_gain_db``); 0 when either is not finite."""
    if reference_lufs is None or lufs is None:
        return 0.0
    if not (math.isfinite(reference_lufs) and math.isfinite(lufs)):
        return 0.0
    return float(reference_lufs) - float(lufs)


def peak_warning(tool: str, samples: np.ndarray) -> list[str]:
    """[warning] when `samples` peak over full scale (the later `master` step brings it down), else []."""
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    if peak <= 1.0:
        return []
    return [
        f"{tool}: sample peak {20 * math.log10(peak):+.1f} dBFS; a later gain stage (master) must bring it down"
    ]


def clamp_freq(
    freq_hz: float, sample_rate: int, warnings: list[str] | None = None, what: str = "filter"
) -> float:
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
            b = [
                a * ((a + 1) - (a - 1) * cw + sa),
                2 * a * ((a - 1) - (a + 1) * cw),
                a * ((a + 1) - (a - 1) * cw - sa),
            ]
            den = [(a + 1) + (a - 1) * cw + sa, -2 * ((a - 1) + (a + 1) * cw), (a + 1) + (a - 1) * cw - sa]
        else:
            b = [
                a * ((a + 1) + (a - 1) * cw + sa),
                -2 * a * ((a - 1) + (a + 1) * cw),
                a * ((a + 1) + (a - 1) * cw - sa),
            ]
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
    return np.asarray(sos / sos[0, 3])


def sos_response_db(sos: np.ndarray, freqs_hz: np.ndarray, sample_rate: int) -> np.ndarray:
    """Magnitude response (dB) of an SOS cascade at `freqs_hz`."""
    from scipy.signal import sosfreqz

    h: np.ndarray
    _, h = sosfreqz(sos, worN=np.asarray(freqs_hz, dtype=np.float64), fs=sample_rate)
    return np.asarray(20.0 * np.log10(np.maximum(np.abs(h), 1e-12)))


def apply_sos(x: np.ndarray, sos: np.ndarray, zero_phase: bool = False) -> np.ndarray:
    """Filter (channels, frames) along time; float64 maths, float32 out."""
    from scipy.signal import sosfilt, sosfiltfilt

    if sos.size == 0:
        return np.asarray(x, dtype=np.float32).copy()
    y: np.ndarray
    if zero_phase:
        padlen = min(x.shape[-1] - 1, 3 * 2 * sos.shape[0] * 50)
        y = sosfiltfilt(sos, x.astype(np.float64), axis=-1, padlen=max(padlen, 0))
    else:
        y = sosfilt(sos, x.astype(np.float64), axis=-1)
    return y.astype(np.float32)


# ----------------------------------------------------------------------------- linear-phase FIR


def fir_from_curve(
    freqs_hz: np.ndarray, gains_db: np.ndarray, sample_rate: int, n_taps: int | None = None
) -> np.ndarray:
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
    from scipy.fft import irfft, next_fast_len, rfft

    # overlap-save in float32 (the FFT's rounding, ~1e-7 of full scale, is ~100 dB under a 24-bit LSB's
    # worth of audibility and 2.5x faster than float64 here), FFTs of 4-8x the filter's length in batches
    x = np.asarray(x, dtype=np.float32)
    n, taps, d = x.shape[-1], h.size, h.size // 2
    n_fft = min(1 << int(math.ceil(math.log2(4 * taps))), next_fast_len(n + taps - 1, real=True))
    step = n_fft - taps + 1
    n_blocks = -(-n // step)
    spec_h = rfft(np.asarray(h, dtype=np.float32), n=n_fft)
    out = np.empty(x.shape, dtype=np.float32)
    rows = out.reshape(-1, n)
    batch = max(1, (1 << 20) // n_fft)
    for row, src in zip(rows, x.reshape(-1, n), strict=True):
        # the output's sample t is the full convolution's t + d: block j reads xp[j*step : j*step + n_fft]
        xp = np.zeros((n_blocks - 1) * step + n_fft, dtype=np.float32)
        xp[taps - 1 - d : taps - 1 - d + n] = src
        frames = np.lib.stride_tricks.sliding_window_view(xp, n_fft)[::step]
        for s in range(0, n_blocks, batch):
            z = rfft(frames[s : s + batch], axis=1)
            z *= spec_h
            blocks = irfft(z, n=n_fft, axis=1, overwrite_x=True)[:, taps - 1 :]
            a, b = s * step, blocks.shape[0]
            if a + b * step <= n:
                row[a : a + b * step].reshape(b, step)[...] = blocks  # no contiguous copy of the blocks
            else:
                row[a:] = blocks.reshape(-1)[: n - a]
    return out


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


def fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """`x` cut or zero-padded along its last axis to `n` samples."""
    if x.shape[-1] >= n:
        return x[..., :n]
    return np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, n - x.shape[-1])])


def stft_size(sample_rate: int, seconds: float = 0.046) -> int:
    return 1 << max(8, int(round(math.log2(seconds * sample_rate))))


def stft_pad(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """`x` (float64) zero-padded by `n_fft` on both sides of its last axis, and on the right up to
    a length that whole hops tile (the padding `stft` uses; the signal starts at index `n_fft`)."""
    n = x.shape[-1]
    total = n + 2 * n_fft
    total += (-(total - n_fft)) % hop
    xp = np.zeros(x.shape[:-1] + (total,), dtype=np.float64)
    xp[..., n_fft : n_fft + n] = x
    return xp


def sqrt_hann(n_fft: int) -> np.ndarray:
    """Square root of the periodic Hann window (analysis and synthesis of a tight frame)."""
    return np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft))


def tight_stft(x: np.ndarray, n_fft: int, hop: int, window: np.ndarray | None = None) -> np.ndarray:
    """(..., N) → complex (..., T, F) frames of `x` as given (no padding: see `stft_pad`).

    Default window: `sqrt_hann`; with `tight_istft` at hop ``n_fft/4`` this is a tight frame
    (analysis·synthesis windows sum to 1), so masks and thresholds act on an orthogonal-like
    representation. Frames past the last whole hop are dropped.
    """
    w = sqrt_hann(n_fft) if window is None else window
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft, axis=-1)[..., ::hop, :]
    return np.fft.rfft(frames * w, axis=-1)


def tight_istft(z: np.ndarray, n_fft: int, hop: int, n: int, window: np.ndarray | None = None) -> np.ndarray:
    """Overlap-add inverse of `tight_stft` onto `n` samples (float64, (..., n)).

    Default synthesis window: ``sqrt_hann / (n_fft / hop / 2)``; frames k, k+r, k+2r… (r =
    n_fft/hop) tile without overlap, so each such set is added as one strip.
    """
    w = sqrt_hann(n_fft) / (n_fft / hop / 2) if window is None else window
    frames = np.fft.irfft(z, n=n_fft, axis=-1) * w
    lead: tuple[int, ...] = z.shape[:-2]
    out: np.ndarray = np.zeros(lead + (n,))
    r = n_fft // hop
    for k in range(r):
        strip = frames[..., k::r, :].reshape(lead + (-1,))
        if strip.shape[-1]:
            out[..., k * hop : k * hop + strip.shape[-1]] += strip
    return out


def stft_scipy(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """`scipy.signal.stft` with a Hann window, even-extended ends, padded: (..., N) → (..., F, T)."""
    from scipy.signal import stft as _stft

    z: np.ndarray = _stft(
        x, nperseg=n_fft, noverlap=n_fft - hop, window="hann", boundary="even", padded=True
    )[2]
    return z


def istft_scipy(z: np.ndarray, n_fft: int, hop: int, n: int) -> np.ndarray:
    """Inverse of `stft_scipy`, cut or zero-padded to `n` samples, float32."""
    from scipy.signal import istft as _istft

    y: np.ndarray = _istft(z, nperseg=n_fft, noverlap=n_fft - hop, window="hann", boundary=True)[1]
    return fit_length(y, n).astype(np.float32)


# ----------------------------------------------------------------------------- levels and spectra


def frame_rms_db(x: np.ndarray, frame: int) -> np.ndarray:
    """RMS level (dBFS, channel-averaged power) of consecutive frames of `frame` samples (last one padded)."""
    c, n = x.shape
    m = -(-n // frame)
    power = np.zeros(m, dtype=np.float64)
    step = max(1, (1 << 18) // frame) * frame  # float64 a slice at a time, not a padded copy of the whole
    for s in range(0, m * frame, step):
        e = min(s + step, m * frame)
        p = np.zeros((c, e - s), dtype=np.float64)
        p[:, : max(0, min(e, n) - s)] = x[:, s : min(e, n)]
        np.square(p, out=p)
        power[s // frame : e // frame] = p.reshape(c, -1, frame).sum(axis=(0, 2))
    power /= c * frame
    return np.asarray(10.0 * np.log10(np.maximum(power, 1e-14)))


def frames_to_samples(values: np.ndarray, frame: int, n: int) -> np.ndarray:
    """Linear interpolation of per-frame values (frame centres) onto `n` samples."""
    centres = (np.arange(values.size) + 0.5) * frame
    return np.asarray(np.interp(np.arange(n), centres, values))


def frames_to_samples_f32(values: np.ndarray, frame: int, n: int) -> np.ndarray:
    """`frames_to_samples` in float32, built frame by frame (no float64 sample-rate arrays): linear
    between frame centres ``(i + 0.5)·frame``, flat before the first and after the last."""
    v = np.asarray(values, dtype=np.float64)
    out = np.empty(n, np.float32)
    if v.size == 0 or n == 0:
        out[:] = 0.0
        return out
    s0 = min(n, -(-frame // 2))  # the first sample at or after the first centre (frame / 2)
    out[:s0] = v[0]
    end = min(n, s0 + frame * (v.size - 1))
    if end > s0:
        k = -(-(end - s0) // frame)  # frames with samples in [s0, end)
        f = ((np.arange(frame) + s0 - frame / 2.0) / frame).astype(np.float32)
        v32 = v.astype(np.float32)
        ramp = np.diff(v32[: k + 1])[:, None] * f[None, :] + v32[:k, None]
        out[s0:end] = ramp.reshape(-1)[: end - s0]
    out[max(end, s0) :] = v[-1]
    return out


def smooth_gain_db(gr_db: np.ndarray, step_s: float, attack_ms: float, release_ms: float) -> np.ndarray:
    """One-pole attack/release smoothing of a gain-reduction curve (dB ≥ 0 = more reduction).

    Runs at frame rate (a Python loop over frames, cheap at ~1 ms steps); attack applies when
    the reduction grows, release when it shrinks.
    """
    a_att = math.exp(-step_s / max(attack_ms * 1e-3, 1e-6))
    a_rel = math.exp(-step_s / max(release_ms * 1e-3, 1e-6))
    out = np.empty(np.shape(gr_db), dtype=np.float64)
    gr = np.ascontiguousarray(gr_db, dtype=np.float64)
    (_jit("_smooth_kernel") or _smooth_kernel)(gr, a_att, a_rel, out)
    return out


def _smooth_kernel(gr: np.ndarray, a_att: float, a_rel: float, out: np.ndarray) -> None:
    """`smooth_gain_db`'s recursion (plain Python, or compiled by `_jit`: the same float64 maths)."""
    y = 0.0
    for i in range(gr.shape[0]):
        g = gr[i]
        a = a_att if g > y else a_rel
        y = a * y + (1.0 - a) * g
        out[i] = y


def soft_knee_gain_reduction_db(
    level_db: np.ndarray, threshold_db: float, ratio: float, knee_db: float, max_db: float
) -> np.ndarray:
    """Soft-knee downward gain reduction (dB ≥ 0) for levels above threshold, capped at `max_db`
    (Giannoulis, Massberg & Reiss, JAES 2012)."""
    over = level_db - threshold_db
    slope = 1.0 - 1.0 / ratio
    gr = np.where(
        over <= -knee_db / 2,
        0.0,
        np.where(
            over >= knee_db / 2, slope * over, slope * (over + knee_db / 2) ** 2 / (2 * max(knee_db, 1e-9))
        ),
    )
    return np.minimum(gr, max_db)


_WELCH_BATCH = 256  # segments per FFT batch in `average_spectrum`


def average_spectrum(
    x: np.ndarray, sample_rate: int, n_fft: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Long-term average power spectrum (Welch, channel-averaged): (freqs Hz, power density)."""
    from scipy.fft import rfft
    from scipy.signal import get_window

    n_fft = n_fft or stft_size(sample_rate, 0.093)
    n_fft = min(n_fft, x.shape[-1])
    # Welch as scipy.signal.welch computes it (periodic Hann, 50 % overlap, constant detrend per segment,
    # one-sided density, mean over segments), without its per-segment Python overhead and float64 copy
    # of the whole signal: segments go through the FFT in batches. float32 FFTs (2x faster; the density's
    # rounding is ~1e-6 dB), float64 sums. With numba, the detrend and window (`_welch_segments_kernel`)
    # and the power sums (`_power_sum_kernel`) are one pass each, the same values as numpy's
    w = get_window("hann", n_fft)
    w32 = w.astype(np.float32)
    hop = n_fft - n_fft // 2
    rows = np.atleast_2d(x)
    n_seg = (rows.shape[-1] - n_fft) // hop + 1
    total = np.zeros(n_fft // 2 + 1)
    segment_kernel, power_kernel = _jit("_welch_segments_kernel"), _jit("_power_sum_kernel")
    if segment_kernel is not None and power_kernel is not None and rows.dtype == np.float32:
        buf = np.empty((min(_WELCH_BATCH, n_seg), n_fft), dtype=np.float32)
        for row in rows:
            row = np.ascontiguousarray(row)
            for s in range(0, n_seg, _WELCH_BATCH):
                seg = buf[: min(_WELCH_BATCH, n_seg - s)]
                segment_kernel(row, s, hop, w32, seg)
                power_kernel(rfft(seg, axis=1), total)
    else:
        for row in rows:
            segs = np.lib.stride_tricks.sliding_window_view(row, n_fft)[::hop][:n_seg]
            for s in range(0, n_seg, _WELCH_BATCH):
                seg = segs[s : s + _WELCH_BATCH].astype(np.float32)
                seg -= seg.mean(axis=1, keepdims=True, dtype=np.float64).astype(np.float32)
                seg *= w32
                spec = rfft(seg, axis=1)
                total += (spec.real**2 + spec.imag**2).sum(axis=0, dtype=np.float64)
    p = total / (n_seg * rows.shape[0] * sample_rate * float((w * w).sum()))
    p[1 : None if n_fft % 2 else -1] *= 2.0
    return np.fft.rfftfreq(n_fft, 1.0 / sample_rate), p


def _welch_segments_kernel(  # pragma: no cover - compiled by numba
    row: np.ndarray, first: int, hop: int, window: np.ndarray, out: np.ndarray
) -> None:
    """`average_spectrum`'s segments `first`, `first` + 1, … (as many as `out` has rows) of `row`, each less
    its mean (float64 sum, float32 subtraction) and windowed, into `out`: numpy's float32 operations.
    With 50 % overlap (even length) a segment's sum is its two halves', each half summed once."""
    n_fft = window.shape[0]
    half = n_fft == 2 * hop
    prev = 0.0
    for s in range(-1 if half else 0, out.shape[0]):
        a = (first + s) * hop
        length = hop if half else n_fft
        part = row[a + n_fft - length : a + n_fft]  # the half (or segment) that ends segment s
        p0 = p1 = p2 = p3 = 0.0  # four running sums: no one chain of dependent additions
        for i in range(0, length - length % 4, 4):
            p0 += np.float64(part[i])
            p1 += np.float64(part[i + 1])
            p2 += np.float64(part[i + 2])
            p3 += np.float64(part[i + 3])
        for i in range(length - length % 4, length):
            p0 += np.float64(part[i])
        total = (p0 + p1) + (p2 + p3)
        if s >= 0:
            mean = np.float32(((prev + total) if half else total) / n_fft)
            seg = row[a : a + n_fft]
            o = out[s]
            for i in range(n_fft):
                o[i] = (seg[i] - mean) * window[i]
        prev = total


def _power_sum_kernel(spec: np.ndarray, total: np.ndarray) -> None:  # pragma: no cover - compiled by numba
    """Adds Σ over the rows of |spec|² (float32 squares, float64 sums) to `total`."""
    acc = np.zeros(total.shape[0])
    for s in range(spec.shape[0]):
        for k in range(spec.shape[1]):
            v = spec[s, k]
            acc[k] += np.float64(v.real * v.real + v.imag * v.imag)
    for k in range(total.shape[0]):
        total[k] += acc[k]


def fractional_octave_levels(
    freqs: np.ndarray, power: np.ndarray, per_octave: int = 3, lo: float = 40.0, hi: float = 16000.0
) -> tuple[np.ndarray, np.ndarray]:
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


def third_octave_levels(
    x: np.ndarray, sample_rate: int, lo: float = 40.0, hi: float = 16000.0
) -> tuple[np.ndarray, np.ndarray]:
    """(centres Hz, power density dB) of the long-term spectrum in third octaves, lo..min(hi, 0.45 fs)."""
    f, p = average_spectrum(x, sample_rate)
    return fractional_octave_levels(f, p, 3, lo, min(hi, MAX_FREQ_FRACTION * sample_rate))


def spectral_tilt_db_per_octave(
    x: np.ndarray, sample_rate: int, lo: float = 50.0, hi: float = 16000.0
) -> float:
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
    m: np.ndarray = np.ones_like(lf)
    below = lf < a
    above = lf > b
    m[below] = 0.5 + 0.5 * np.cos(np.pi * np.clip((a - lf[below]) / edge_octaves, 0, 1))
    m[above] = 0.5 + 0.5 * np.cos(np.pi * np.clip((lf[above] - b) / edge_octaves, 0, 1))
    return m


def stereo_correlation(x: np.ndarray) -> float:
    """Pearson correlation of the first two channels at lag 0 (1.0 for mono)."""
    if x.shape[0] < 2:
        return 1.0
    ll, rr, lr = _lr_dots(x)
    d = math.sqrt(ll * rr)
    return float(lr / d) if d > 0 else 1.0


def _lr_dots(x: np.ndarray) -> tuple[float, float, float]:
    """(L·L, R·R, L·R) of the first two channels in float64, a slice at a time (no float64 copy of the whole)."""
    ll = rr = lr = 0.0
    step = 1 << 16
    for s in range(0, x.shape[-1], step):
        b = x[:2, s : s + step].astype(np.float64)
        g = b @ b.T  # the 2x2 Gram matrix of the slice
        ll, rr, lr = ll + float(g[0, 0]), rr + float(g[1, 1]), lr + float(g[0, 1])
    return ll, rr, lr


# ----------------------------------------------------------------------------- true-peak limiter

#: 2x interpolator for the limiter's detector: windowed-sinc half-band taps for the midpoint
#: between x[n] and x[n+1] (pairs x[n-k], x[n+1+k], k = 0..3)
_MID_TAPS: np.ndarray | None = None


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
    kernel = np.concatenate([h[::-1], h])  # taps on x[n-3] … x[n+4]: symmetric, so a convolution
    peak = np.empty(nb, np.float32)
    step = max(1, (1 << 18) // block) * block  # samples per slice: no full-length temporaries
    for s in range(0, nb * block, step):
        e = min(s + step, nb * block)
        seg = np.zeros((c, e - s + 8), np.float32)  # x[s-4 … e+4), zeros outside the signal
        lo, hi = max(s - 4, 0), min(e + 4, n)
        if hi > lo:
            seg[:, lo - s + 4 : hi - s + 4] = x[:, lo:hi]
        most = np.zeros(e - s, np.float32)  # per sample: max over channels of |x| and |midpoint|
        for ch in range(c):
            mid = np.convolve(seg[ch, 1:], kernel, mode="valid")  # midpoint between x[n] and x[n+1] at n
            np.abs(mid, out=mid)
            np.maximum(most, mid, out=most)
            np.maximum(most, np.abs(seg[ch, 4 : 4 + e - s]), out=most)
        peak[s // block : e // block] = np.maximum.reduceat(most, np.arange(0, e - s, block))
    return peak


def limiter_gain(
    peak: np.ndarray, ceiling_lin: float, step_s: float, lookahead_ms: float = 2.0, release_ms: float = 80.0
) -> np.ndarray:
    """Gain per step (linear, ≤ 1) with gain·peak ≤ ceiling everywhere, smooth attack and release.

    Look-ahead attack: a minimum filter over ±W steps followed by a ±W moving average never
    exceeds the required gain (each average covers minima that each include the step itself).
    Release: constant dB/s recovery (6 dB per ``release_ms``), computed as a running maximum of
    the attenuation minus a linear ramp; then the attack smoothing once more.
    """
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    # in place where it can be (the same values): at most three arrays of the blocks' length at once
    req = peak.astype(np.float64)
    np.maximum(req, 1e-12, out=req)
    np.divide(ceiling_lin, req, out=req)
    np.minimum(req, 1.0, out=req)
    if req.min() >= 1.0:
        return np.ones_like(req)
    w = max(1, int(round(lookahead_ms * 1e-3 / step_s)))
    size = 2 * w + 1

    def attack(g: np.ndarray) -> np.ndarray:
        m: np.ndarray = minimum_filter1d(g, size=size, mode="nearest")
        u: np.ndarray = uniform_filter1d(m, size=size, mode="nearest")
        del m
        np.minimum(u, g, out=u)
        return u

    att = attack(req)
    del req
    np.log10(att, out=att)
    att *= -20.0  # ≥ 0 dB
    rate = 6.0 * step_s / max(release_ms * 1e-3, 1e-6)  # dB per step
    ramp = np.arange(att.size, dtype=np.float64)
    ramp *= rate
    att += ramp
    np.maximum.accumulate(att, out=att)
    att -= ramp
    del ramp
    np.negative(att, out=att)
    att /= 20.0
    np.power(10.0, att, out=att)
    return attack(att)


def block_gain_to_samples(gain: np.ndarray, block: int, n: int) -> np.ndarray:
    """Interpolate per-block gains onto samples without exceeding any block's own gain.

    Each block first takes the minimum of itself and its neighbours, so the straight line between
    two block centres never rises above the gain of the block a sample lies in.
    """
    g = gain.copy()
    g[1:] = np.minimum(g[1:], gain[:-1])
    g[:-1] = np.minimum(g[:-1], gain[1:])
    g = g.astype(np.float32)
    # linear between block centres c_i = i·block + (block − 1)/2, flat beyond the first and last:
    # the samples from c_i up to c_{i+1} are block//2 + i·block + j, j < block, at fraction f_j
    s0 = block // 2
    out = np.empty(max(n, s0 + block * max(g.size - 1, 0)), np.float32)
    out[:s0] = g[0]
    if g.size > 1:
        f = ((np.arange(block) + s0 - (block - 1) / 2.0) / block).astype(np.float32)
        ramp = out[s0 : s0 + block * (g.size - 1)].reshape(g.size - 1, block)
        np.multiply(np.diff(g)[:, None], f[None, :], out=ramp)
        ramp += g[:-1, None]
    out[s0 + block * max(g.size - 1, 0) :] = g[-1]
    return out[:n]


def _apply_block_gain(x: np.ndarray, gain: np.ndarray, block: int, scale: np.float32) -> np.ndarray:
    """``x · block_gain_to_samples(gain, block, n) · scale`` (the same float32 values) in slices of
    ~256k samples: the output is the only full-length array."""
    n = x.shape[-1]
    gm = gain.copy()
    gm[1:] = np.minimum(gm[1:], gain[:-1])
    gm[:-1] = np.minimum(gm[:-1], gain[1:])
    gm = gm.astype(np.float32)
    d = np.diff(gm)
    s0 = block // 2
    f = ((np.arange(block) + s0 - (block - 1) / 2.0) / block).astype(np.float32)
    y = np.empty(x.shape, np.float32)
    head = min(s0, n)
    np.multiply(x[:, :head], gm[0] * scale, out=y[:, :head])
    per = max(1, (1 << 18) // block)
    for i0 in range(0, gm.size - 1, per):
        i1 = min(i0 + per, gm.size - 1)
        a, b = s0 + i0 * block, min(s0 + i1 * block, n)
        if a >= n:
            break
        ramp = (d[i0:i1, None] * f[None, :] + gm[i0:i1, None]).reshape(-1)[: b - a]
        ramp *= scale
        np.multiply(x[:, a:b], ramp[None, :], out=y[:, a:b])
    tail = s0 + block * max(gm.size - 1, 0)
    if tail < n:
        np.multiply(x[:, tail:], gm[-1] * scale, out=y[:, tail:])
    return y


def _gain_k_power_kernel(
    x: np.ndarray,
    gm: np.ndarray,
    f: np.ndarray,
    block: int,
    scale: np.float32,
    sos: np.ndarray,
    chunk: int,
    y: np.ndarray,
    power: np.ndarray,
) -> None:  # pragma: no cover - compiled by numba (`_jit`); its results are tested against numpy's
    """One channel: ``y = x · gain · scale`` with the per-sample gain of `_apply_block_gain` (the same
    float32 operations, so the same values) and, in the same pass, the power of ``K(y)`` per chunk, K a
    2-section direct-form-II-transposed filter in float32 (what scipy's ``sosfilt`` computes). No
    full-length buffer besides ``y``: the gain is made sample by sample."""
    n = x.shape[0]
    nb = gm.shape[0]
    s0 = block // 2
    head = min(s0, n)
    ramp_end = max(head, min(s0 + block * (nb - 1), n))  # the ramps between block centres end here
    b00, b01, b02, a01, a02 = sos[0, 0], sos[0, 1], sos[0, 2], sos[0, 4], sos[0, 5]
    b10, b11, b12, a11, a12 = sos[1, 0], sos[1, 1], sos[1, 2], sos[1, 4], sos[1, 5]
    z00 = z01 = z10 = z11 = sos[0, 0] - sos[0, 0]  # float32 zeros
    first, last = gm[0] * scale, gm[nb - 1] * scale
    b = 0
    j = 0
    d = gm[1] - gm[0] if nb > 1 else gm[0] - gm[0]
    chunks = power.shape[0]
    k = 0
    count = 0
    acc = 0.0
    for i in range(n):
        if i < head:
            g = first
        elif i < ramp_end:
            g = (d * f[j] + gm[b]) * scale
            j += 1
            if j == block:
                j = 0
                b += 1
                if b + 1 < nb:
                    d = gm[b + 1] - gm[b]
        else:
            g = last
        v = x[i] * g
        y[i] = v
        if k < chunks:
            o = b00 * v + z00
            z00 = b01 * v - a01 * o + z01
            z01 = b02 * v - a02 * o
            o2 = b10 * o + z10
            z10 = b11 * o - a11 * o2 + z11
            z11 = b12 * o - a12 * o2
            acc += float(o2 * o2)
            count += 1
            if count == chunk:
                power[k] = acc
                k += 1
                count = 0
                acc = 0.0


def _k_power_peak_kernel(
    x: np.ndarray, sos: np.ndarray, chunk: int, h: np.ndarray, block: int, power: np.ndarray, peak: np.ndarray
) -> None:  # pragma: no cover - compiled by numba (`_jit`); its results are tested against numpy's
    """Channels ``x`` (channels, frames), one pass: the power of ``K(x)`` per channel and chunk (as
    `_gain_k_power_kernel`) and the detector peak per channel and block of `block_peak` (max of |x| and
    of the 8-tap midpoints ``h``; none when ``peak`` has no columns). Channels are filtered two at a
    time: their recursions are independent, so the CPU overlaps them (~1.5x the samples per second of
    one at a time); each channel's operations are the one-channel loop's, so the same values."""
    c, n = x.shape
    b00, b01, b02, a01, a02 = sos[0, 0], sos[0, 1], sos[0, 2], sos[0, 4], sos[0, 5]
    b10, b11, b12, a11, a12 = sos[1, 0], sos[1, 1], sos[1, 2], sos[1, 4], sos[1, 5]
    for ch in range(0, c - 1, 2):  # two channels side by side: x0 (state z..) and x1 (state w..)
        x0, x1, p0, p1 = x[ch], x[ch + 1], power[ch], power[ch + 1]
        z00 = z01 = z10 = z11 = sos[0, 0] - sos[0, 0]  # float32 zeros
        w00 = w01 = w10 = w11 = z00
        for k in range(power.shape[1]):
            acc = 0.0
            bcc = 0.0
            for i in range(k * chunk, (k + 1) * chunk):
                v = x0[i]
                o = b00 * v + z00
                z00 = b01 * v - a01 * o + z01
                z01 = b02 * v - a02 * o
                o2 = b10 * o + z10
                z10 = b11 * o - a11 * o2 + z11
                z11 = b12 * o - a12 * o2
                acc += float(o2 * o2)
                u = x1[i]
                q = b00 * u + w00
                w00 = b01 * u - a01 * q + w01
                w01 = b02 * u - a02 * q
                q2 = b10 * q + w10
                w10 = b11 * q - a11 * q2 + w11
                w11 = b12 * q - a12 * q2
                bcc += float(q2 * q2)
            p0[k] = acc
            p1[k] = bcc
    if c % 2:  # the last channel alone
        x0, p0 = x[c - 1], power[c - 1]
        z00 = z01 = z10 = z11 = sos[0, 0] - sos[0, 0]
        for k in range(power.shape[1]):
            acc = 0.0
            for i in range(k * chunk, (k + 1) * chunk):
                v = x0[i]
                o = b00 * v + z00
                z00 = b01 * v - a01 * o + z01
                z01 = b02 * v - a02 * o
                o2 = b10 * o + z10
                z10 = b11 * o - a11 * o2 + z11
                z11 = b12 * o - a12 * o2
                acc += float(o2 * o2)
            p0[k] = acc
    for ch in range(c):
        xc, pc = x[ch], peak[ch]
        zero = xc[0] - xc[0] if n else sos[0, 0] - sos[0, 0]
        h0, h1, h2, h3 = h[0], h[1], h[2], h[3]
        for b in range(pc.shape[0]):
            best = zero
            for i in range(b * block, (b + 1) * block):
                if i >= 3 and i + 4 < n:  # inside: no bounds to check
                    mid = h0 * (xc[i] + xc[i + 1]) + h1 * (xc[i - 1] + xc[i + 2])
                    mid += h2 * (xc[i - 2] + xc[i + 3]) + h3 * (xc[i - 3] + xc[i + 4])
                else:  # near the ends: zeros outside the signal
                    mid = zero
                    for k in range(4):
                        lo = i - k
                        hi = i + 1 + k
                        pair = (xc[lo] if 0 <= lo < n else zero) + (xc[hi] if hi < n else zero)
                        mid += h[k] * pair
                a = abs(xc[i]) if i < n else zero
                m = abs(mid)
                if a > best:
                    best = a
                if m > best:
                    best = m
            pc[b] = best


def _pcm_kernel(
    x: np.ndarray, start: int, raw: np.ndarray, scale: float, width: int, dither: bool, out: np.ndarray
) -> None:  # pragma: no cover - compiled by numba (`_jit`); its results are tested against numpy's
    """Interleaved little-endian PCM bytes of the planar float frames ``x[:, start:start + len(out) //
    (width·channels)]`` (``x`` whole and C-contiguous: one compiled specialisation for every block): sample
    ``k`` (interleaved order) is ``clip(rint(x·scale + (a − b)·2^-16))`` in float64, ``a`` and ``b`` the
    low and high 16 bits of the 32-bit half ``k % 2`` of ``raw[k // 2]`` (TPDF dither, when ``dither``),
    ``width`` bytes of it into ``out`` (the arithmetic of `tools.audio`'s numpy path: the same
    integers)."""
    c = x.shape[0]
    n = out.shape[0] // (width * c)
    top = scale - 1.0
    inv = 2.0**-16
    q = np.empty(c * n, np.int32)
    for ch in range(c):
        for i in range(n):
            k = i * c + ch
            v = np.float64(x[ch, start + i]) * scale
            if dither:
                word = np.int64((raw[k >> 1] >> np.uint64(32 * (k & 1))) & np.uint64(0xFFFFFFFF))
                v += np.float64((word & 0xFFFF) - (word >> 16)) * inv
            q[k] = np.int32(min(max(np.rint(v), -scale), top))
    for k in range(c * n):
        o = k * width
        w = q[k]
        out[o] = w & 0xFF
        out[o + 1] = (w >> 8) & 0xFF
        if width >= 3:
            out[o + 2] = (w >> 16) & 0xFF
        if width == 4:
            out[o + 3] = (w >> 24) & 0xFF


def _pcm_decode_kernel(data: np.ndarray, width: int, out: np.ndarray, start: int) -> None:  # pragma: no cover
    """Interleaved little-endian 16/24-bit PCM bytes into planar float32 ``out[:, start:]`` (``out``
    whole: one compiled specialisation): each integer times 2^-(bits-1), exact in float32, so the values
    libsndfile reads (compiled by numba, `_jit`)."""
    c = out.shape[0]
    m = data.shape[0] // (width * c)
    scale = np.float32(2.0 ** (1 - 8 * width))
    top = np.int32(1) << (8 * width - 1)
    k = 0
    for i in range(m):
        for ch in range(c):
            o = k * width
            v = np.int32(data[o]) | (np.int32(data[o + 1]) << 8)
            if width == 3:
                v |= np.int32(data[o + 2]) << 16
            if v >= top:
                v -= top << 1
            out[ch, start + i] = np.float32(v) * scale
            k += 1


def _interp_peak_kernel(
    x: np.ndarray,
    matrix: np.ndarray,
    neigh: np.ndarray,
    first: np.ndarray,
    bound: float,
    best: float,
    blk: int,
) -> float:  # pragma: no cover - compiled by numba (`_jit`); its results are tested against numpy's
    """Largest of ``best`` and |interpolated value| over the blocks of `tools.loudness.true_peak_linear`:
    block ``b`` of channel ``c`` gives the ``blk`` windows of ``taps`` samples ending at each of its
    samples (zeros outside the signal), each times ``matrix`` (taps, factor). Visited: the blocks at the
    flat indices ``first``, then every block; one whose neighbourhood peak ``neigh[c, b]`` is zero, or
    times ``bound`` under the best so far, is skipped (the bound makes that exact). Float32 sums over
    the taps in order, the windows side by side (SIMD)."""
    taps, factor = matrix.shape
    channels, nb = neigh.shape
    n = x.shape[1]
    seg = np.zeros(blk + taps - 1, np.float32)
    acc = np.zeros(blk, np.float32)
    for jj in range(first.shape[0] + channels * nb):
        j = first[jj] if jj < first.shape[0] else jj - first.shape[0]
        c = j // nb
        b = j - c * nb
        v = neigh[c, b]
        if v == 0 or v * bound < best:
            continue
        lo = b * blk - (taps - 1)
        for i in range(seg.shape[0]):  # the block and its context, zeros outside the signal
            seg[i] = x[c, lo + i] if 0 <= lo + i < n else np.float32(0.0)
        for p in range(factor):
            acc[:] = 0.0
            for k in range(taps):
                coef = matrix[k, p]
                for w in range(blk):
                    acc[w] += coef * seg[k + w]
            for w in range(blk):
                a = abs(acc[w])
                if a > best:
                    best = a
    return best


def _block_abs_peak_kernel(bits: np.ndarray, blk: int, out: np.ndarray) -> None:  # pragma: no cover
    """Per channel and block of ``blk`` samples, the largest |x| (compiled by numba, `_jit`), from the
    float32 samples' bit patterns ``bits`` (uint32): without the sign bit, their order is the values'
    (finite samples), and an integer maximum vectorises where a float one would not."""
    c, n = bits.shape
    nb = out.shape[1]
    for ch in range(c):
        for b in range(nb):
            m = np.uint32(0)
            for i in range(b * blk, min(b * blk + blk, n)):
                v = bits[ch, i] & np.uint32(0x7FFFFFFF)
                if v > m:
                    m = v
            out[ch, b] = m


_JIT: dict[str, Any] = {}
_WARM_LOCK = threading.Lock()


def _jit(name: str) -> Any:
    """The numba-compiled (``nogil``, cached on disk) kernel `name` of this module, or None when numba
    is not installed (callers then take their numpy path)."""
    if name not in _JIT:
        try:
            import numba
        except ImportError:
            _JIT[name] = None
        else:
            _JIT[name] = numba.njit(nogil=True, cache=True)(globals()[name])
    return _JIT[name]


_WARMING: list[Any] = []
_READY: set[str] = set()  # kernels already run in this process (loaded or compiled: no wait to call them)


def _jit_ready(name: str, *, load: bool = True) -> Any:
    """The kernel `name` (see `_jit`) when calling it costs no wait for numba: it has run in this process
    already; or, with `load`, no background warm-up (`warm_compiled`) is under way, so it is loaded here
    (the first call compiles or reads it from the disk cache). None otherwise: the caller takes its numpy
    path, which gives the same values. For the edges and meters that run before and beside the warm-up
    (a CLI's first load must not wait ~0.5 s for numba to save 0.05 s)."""
    if name in _READY:
        return _JIT[name]
    if not load or (_WARMING and _WARMING[0].is_alive()):
        return None
    # this caller's call loads it; a thread that asks meanwhile loads it too (numba compiles under a lock)
    kernel = _jit(name)
    _READY.add(name)
    return kernel


def warm_compiled() -> None:
    """Load (or compile) the numba kernels in a background thread, once per process: the first
    `master` then does not wait ~0.5 s for numba. Returns at once; a no-op without numba."""
    import threading

    with _WARM_LOCK:
        if _WARMING:
            return

        def work() -> None:
            try:
                x = np.zeros((1, 64), np.float32)
                x.flags.writeable = False  # as `Audio` samples are: numba compiles read-only arrays apart
                sos = np.array([[1.0, 0.0, 0.0, 1.0, 0.0, 0.0]] * 2)
                k_power_and_block_peak(x, sos, 8, 16)  # also `k_chunk_power`'s kernel (the same types)
                _READY.add("_k_power_peak_kernel")
                apply_block_gain_k_power(x, np.ones(4), 16, 1.0, sos, 8)
                smooth_gain_db(np.zeros(4), 0.001, 10.0, 100.0)
                # `stereo_width` and `average_spectrum` through their own wrappers, on frozen samples (an
                # `Audio`'s) and on a tool's fresh output: numba compiles read-only arrays apart
                x2 = np.zeros((2, 256), np.float32)
                x2.flags.writeable = False
                for row in (x2, x2.copy()):
                    stereo_width(row, 44100, 1.2, 120.0, [])
                    stereo_width(row, 44100, 1.2, 0.0, [])
                    average_spectrum(row, 44100, 64)
                one, u8 = np.zeros(1, np.int64), np.zeros(6, np.uint8)
                for name, args in (  # the types of the real calls: one specialisation each
                    (
                        "_pcm_kernel",
                        (x, 0, np.zeros(32, np.uint64), 2.0**23, 3, True, np.empty(192, np.uint8)),
                    ),
                    ("_pcm_decode_kernel", (u8, 3, np.zeros((1, 2), np.float32), 0)),
                    ("_block_abs_peak_kernel", (x.view(np.uint32), 64, np.empty((1, 1), np.uint32))),
                    (
                        "_interp_peak_kernel",
                        (x, np.ones((16, 4), np.float32), np.ones((1, 1), np.float32), one, 1.0, 0.0, 64),
                    ),
                ):
                    _jit(name)(*args)
                    _READY.add(name)
            except Exception:  # warming is an optimisation: the first real call compiles instead
                pass

        thread = threading.Thread(target=work, name="mixpilot-warm-kernels", daemon=True)
        _WARMING.append(thread)
        thread.start()


def apply_block_gain_k_power(
    x: np.ndarray, gain: np.ndarray, block: int, scale: float, sos: np.ndarray, chunk: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(y, power)``: the limiter's output ``x · block_gain_to_samples(gain) · scale`` (the values of
    `_apply_block_gain`) and, measured in the same pass, the power of the K-weighted ``y`` per channel
    and ``chunk`` (the sums `tools.loudness.k_weighted_blocks` makes; ``sos`` its 2-section filter,
    float32), shape ``(channels, frames // chunk)``. None without numba (see `_jit`): then apply and
    measure separately.
    """
    kernel = _jit("_gain_k_power_kernel")
    if kernel is None or sos.shape != (2, 6):
        return None
    x = np.asarray(x, dtype=np.float32)
    c, n = x.shape
    gm = gain.copy()
    gm[1:] = np.minimum(gm[1:], gain[:-1])
    gm[:-1] = np.minimum(gm[:-1], gain[1:])
    gm = np.ascontiguousarray(gm, dtype=np.float32)
    s0 = block // 2
    f = ((np.arange(block) + s0 - (block - 1) / 2.0) / block).astype(np.float32)
    sos32 = np.ascontiguousarray(sos, dtype=np.float32)
    y = np.empty((c, n), np.float32)
    power = np.empty((c, n // chunk), np.float64)

    def channel(ch: int) -> None:
        kernel(x[ch], gm, f, block, np.float32(scale), sos32, chunk, y[ch], power[ch])

    if c > 1 and n >= 1 << 20:  # the kernel runs without the GIL: a channel per thread
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(c, 2)) as pool:
            list(pool.map(channel, range(c)))
    else:
        for ch in range(c):
            channel(ch)
    return y, power


def k_power_and_block_peak(
    x: np.ndarray, sos: np.ndarray, chunk: int, block: int = 16
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(power, peak)`` in one pass over ``x``: the K-weighted power per channel and chunk (as
    `apply_block_gain_k_power` measures it, shape ``(channels, frames // chunk)``) and `block_peak`
    (within float32 rounding). None without numba (see `_jit`)."""
    kernel = _jit("_k_power_peak_kernel")
    if kernel is None or sos.shape != (2, 6):
        return None
    power, peaks = _k_power_peak(kernel, x, sos, chunk, block)
    return power, peaks.max(axis=0)


def k_chunk_power(x: np.ndarray, sos: np.ndarray, chunk: int) -> np.ndarray | None:
    """The K-weighted power per channel and chunk of `k_power_and_block_peak` alone (the same kernel, its
    peak loop skipped): the sums `tools.loudness.k_weighted_blocks` makes, shape ``(channels, frames //
    chunk)``, in one pass over finite float32 ``x``, in this thread (two channels at a time: less CPU
    than a thread per channel; meters run beside other work). None without numba, or while numba is not
    imported in this process or the background warm-up is under way (see `_jit_ready`; a CLI's first
    measurement does not wait for numba): the caller then filters with scipy."""
    import sys

    kernel = _jit_ready("_k_power_peak_kernel", load="numba" in sys.modules)
    if kernel is None or sos.shape != (2, 6):
        return None
    return _k_power_peak(kernel, x, sos, chunk, 0, threads=False)[0]


def _k_power_peak(
    kernel: Any, x: np.ndarray, sos: np.ndarray, chunk: int, block: int, threads: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """`_k_power_peak_kernel` over the channels: (power, peak per channel and block); no peaks when
    ``block`` is 0. With `threads`, long multichannel audio takes a thread per channel (wall time);
    else all channels in one call (CPU time)."""
    x = np.asarray(x, dtype=np.float32)
    c, n = x.shape
    sos32 = np.ascontiguousarray(sos, dtype=np.float32)
    h = _mid_taps()
    power = np.empty((c, n // chunk), np.float64)
    peaks = np.empty((c, -(-n // block) if block else 0), np.float32)

    def channel(ch: int) -> None:
        kernel(x[ch : ch + 1], sos32, chunk, h, block, power[ch : ch + 1], peaks[ch : ch + 1])

    if threads and c > 1 and n >= 1 << 20:  # without the GIL: a channel per thread
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(c, 2)) as pool:
            list(pool.map(channel, range(c)))
    else:
        kernel(x, sos32, chunk, h, block, power, peaks)
    return power, peaks


def pcm_bytes(
    x: np.ndarray, bits: int, raw: np.ndarray | None, width: int, start: int = 0, stop: int | None = None
) -> np.ndarray | None:
    """Interleaved little-endian PCM of the planar float frames ``x[:, start:stop]`` (pass ``x`` whole):
    `bits`-bit integers (TPDF-dithered from the draws ``raw``, see `tools.audio._tpdf_draws`, unless
    None), ``width`` bytes each (``width`` ≥ ``bits // 8``: 4 gives int32 words), as a uint8 array. One
    compiled pass; None without numba (see `_jit_ready`): `tools.audio` then quantises with numpy (the
    same integers)."""
    kernel = _jit_ready("_pcm_kernel")
    if kernel is None:
        return None
    x = np.ascontiguousarray(x, dtype=np.float32)
    stop = x.shape[1] if stop is None else min(stop, x.shape[1])
    out = np.empty((stop - start) * x.shape[0] * width, np.uint8)
    noise = raw if raw is not None else np.empty(0, np.uint64)
    kernel(x, start, noise, float(2 ** (bits - 1)), width, raw is not None, out)
    return out


def pcm_decode(data: np.ndarray, width: int, out: np.ndarray, start: int) -> bool:
    """Decode interleaved little-endian PCM bytes ``data`` (uint8; ``width`` 2 or 3 bytes a sample) into
    ``out[:, start:]`` (``out`` whole, planar float32, C-contiguous) in one compiled pass: the integers
    scaled to [-1, 1), as libsndfile reads them. False while numba is not imported in this process (a
    CLI's first load does not wait ~0.5 s for it to save 0.05 s), during the background warm-up (see
    `_jit_ready`), or without numba: nothing written."""
    import sys

    kernel = _jit_ready("_pcm_decode_kernel", load="numba" in sys.modules)  # loaded here only when numba is
    if kernel is None:
        return False
    kernel(data, int(width), out, int(start))
    return True


def block_abs_peak(x: np.ndarray, blk: int) -> np.ndarray | None:
    """Largest |x| per channel and block of ``blk`` samples (the last block partial), float32 shaped
    (channels, blocks), in one compiled pass over finite float32 ``x``; None without numba (see `_jit`)."""
    kernel = _jit_ready("_block_abs_peak_kernel")
    if kernel is None:
        return None
    x = np.asarray(x, dtype=np.float32)
    out = np.empty((x.shape[0], -(-x.shape[1] // blk)), np.uint32)
    kernel(x.view(np.uint32), int(blk), out)
    return out.view(np.float32)


def interp_peak_blocks(
    x: np.ndarray,
    matrix: np.ndarray,
    neigh: np.ndarray,
    first: np.ndarray,
    bound: float,
    best: float,
    blk: int,
) -> float | None:
    """`_interp_peak_kernel`: one compiled pass over the candidate blocks, without gathered copies or
    index arrays; None without numba (see `_jit`)."""
    kernel = _jit_ready("_interp_peak_kernel")
    if kernel is None:
        return None
    return float(
        kernel(
            np.asarray(x, dtype=np.float32),
            np.ascontiguousarray(matrix, dtype=np.float32),
            np.ascontiguousarray(neigh, dtype=np.float32),
            np.ascontiguousarray(first, dtype=np.int64),
            float(bound),
            float(best),
            int(blk),
        )
    )


def limiter_report(g: np.ndarray) -> dict[str, float]:
    """What `true_peak_limit` reports about its gain ``g``: max and mean reduction (dB), limited share."""
    gr = np.maximum(g, 1e-9)  # in place from here (the same values): one temporary
    np.log10(gr, out=gr)
    gr *= -20.0
    return {
        "max_gr_db": float(gr.max()),
        "mean_gr_db": float(gr.mean()),
        "limited_fraction": float((gr > 0.1).mean()),
    }


def true_peak_limit(
    x: np.ndarray,
    sample_rate: int,
    ceiling_dbtp: float,
    lookahead_ms: float = 2.0,
    release_ms: float = 80.0,
    peak: np.ndarray | None = None,
    pre_gain_lin: float = 1.0,
    block: int = 16,
) -> tuple[np.ndarray, dict[str, float]]:
    """Look-ahead peak limiter with oversampled (2x) detection, linked across channels.

    Offline and non-causal (the look-ahead needs no delay line). ``peak`` (from `block_peak` of
    the un-gained input with the same ``block``) and ``pre_gain_lin`` let a caller try several
    input gains without re-running the detector: detection is linear, so the peak of ``x·G`` is
    ``G·peak``. Returns (output float32, {"max_gr_db", "mean_gr_db", "limited_fraction"}).
    """
    if peak is None:
        peak = block_peak(x, block)
    g = limiter_gain(
        peak * pre_gain_lin, 10.0 ** (ceiling_dbtp / 20.0), block / sample_rate, lookahead_ms, release_ms
    )
    y = _apply_block_gain(x, g, block, np.float32(pre_gain_lin))
    return y, limiter_report(g)


def soft_clip(x: np.ndarray, threshold_lin: float, knee: float = 0.5) -> np.ndarray:
    """Memoryless soft clipper: linear up to ``knee·threshold``, then a tanh curve that approaches
    ``threshold`` (continuous value and slope at the knee), so ``|y| < threshold`` everywhere.

    Shaves short peaks (drum transients) sample by sample: the error stays on the few samples over
    the knee, where a limiter's gain would dip over its look-ahead and release. Float32 out, in
    slices of ~256k samples (no full-length temporaries besides the output).
    """
    if not threshold_lin > 0:
        raise ValueError(f"soft_clip: threshold must be > 0, got {threshold_lin}")
    if not 0.0 < knee < 1.0:
        raise ValueError(f"soft_clip: knee must be in (0, 1), got {knee}")
    x = np.asarray(x, dtype=np.float32)
    y = np.array(x, dtype=np.float32, copy=True)
    k = np.float32(knee * threshold_lin)
    room = np.float32((1.0 - knee) * threshold_lin)
    flat = y.reshape(-1)
    step = 1 << 18
    for s in range(0, flat.size, step):
        seg = flat[s : s + step]
        over = np.abs(seg) > k
        if not over.any():
            continue
        v = seg[over]
        a = np.abs(v)
        seg[over] = np.sign(v) * (k + room * np.tanh((a - k) / room))
    return y


def to_sos(sections: Sequence[np.ndarray]) -> np.ndarray:
    """Stack biquads (each (1, 6)) into one SOS array (empty (0, 6) when none)."""
    return np.vstack(sections) if sections else np.zeros((0, 6))


# ----------------------------------------------------------------------------- compressor

#: the compressor's detector step (1 ms RMS frames)
COMPRESSOR_STEP_S = 0.001


def compress(
    x: np.ndarray,
    sr: int,
    amount: float,
    *,
    threshold_db: float | None = None,
    ratio: float | None = None,
    attack_ms: float | None = None,
    release_ms: float | None = None,
    knee_db: float | None = None,
    makeup_db: float | None = None,
    mix: float = 1.0,
    lookahead_ms: float | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Feed-forward RMS compressor (the `compress` tool's engine; its docstring gives the design).

    Settings left as None follow from ``amount`` (0–1): ratio ``1 + 5·amount``, threshold
    ``L95 − (2 + 16·amount)`` dB, attack ``20 − 18·amount`` ms, release ``250 − 150·amount`` ms,
    knee 6 dB, makeup = median gain reduction over non-silent moments, look-ahead = attack (≤ 20 ms).
    Returns (float32 output, report).
    """
    a = amount
    step = max(1, int(round(COMPRESSOR_STEP_S * sr)))
    level = frame_rms_db(x, step)
    active = level > max(level.max() - 50.0, -70.0)
    l95 = float(np.percentile(level[active], 95)) if active.any() else -20.0
    thr = threshold_db if threshold_db is not None else l95 - (2.0 + 16.0 * a)
    ratio = ratio if ratio is not None else 1.0 + 5.0 * a
    attack = attack_ms if attack_ms is not None else 20.0 - 18.0 * a
    release = release_ms if release_ms is not None else 250.0 - 150.0 * a
    knee = knee_db if knee_db is not None else 6.0
    gr = (
        soft_knee_gain_reduction_db(level, thr, max(ratio, 1.0), knee, 60.0)
        if ratio > 1.0
        else np.zeros_like(level)
    )
    gr = smooth_gain_db(gr, step / sr, attack, release)
    look = lookahead_ms if lookahead_ms is not None else min(attack, 20.0)
    la = int(round(look * 1e-3 / COMPRESSOR_STEP_S))
    if la > 0 and gr.size > la:  # offline look-ahead: the gain is in place when the transient arrives
        gr = np.concatenate([gr[la:], np.repeat(gr[-1], la)])
    makeup = makeup_db if makeup_db is not None else (float(np.median(gr[active])) if active.any() else 0.0)
    # the gain in dB interpolated onto samples and exponentiated in float32 (1e-7 relative; the float64
    # version took ~3x longer on long files)
    g = frames_to_samples_f32(makeup - gr, step, x.shape[-1])
    g *= np.float32(math.log(10.0) / 20.0)
    np.exp(g, out=g)
    wet = np.asarray(x, dtype=np.float32) * g[None, :]
    y = (1.0 - mix) * x + mix * wet if mix < 1.0 else wet
    info = {
        "threshold_db": round(thr, 2),
        "ratio": round(ratio, 2),
        "attack_ms": round(attack, 1),
        "release_ms": round(release, 1),
        "lookahead_ms": round(look, 1),
        "knee_db": knee,
        "makeup_db": round(makeup, 2),
        "mix": mix,
        "gain_reduction_db": {
            "max": round(float(gr.max()), 2),
            "mean": round(float(gr[active].mean()) if active.any() else 0.0, 2),
            "p95": round(float(np.percentile(gr, 95)), 2),
        },
    }
    return y.astype(np.float32), info


# ----------------------------------------------------------------------------- stereo


def mono_fold_loss_db(x: np.ndarray) -> float:
    """Level lost (dB) when L/R are folded to (L+R)/2, relative to the mean channel power."""
    if x.shape[0] < 2:
        return 0.0
    ll, rr, lr = _lr_dots(x)
    n = x.shape[-1]
    p_st = (ll + rr) / (2.0 * n)
    p_mono = (ll + rr + 2.0 * lr) / (4.0 * n)  # mean of ((L + R) / 2)²
    return 10 * math.log10(max(p_st, 1e-20) / max(p_mono, 1e-20)) if p_st > 0 else 0.0


def stereo_width(
    x: np.ndarray, sr: int, width: float, bass_mono_hz: float, warnings: list[str]
) -> tuple[np.ndarray, dict[str, Any]]:
    """Mid/side width of the first two channels of `x` (≥ 2 channels), side below `bass_mono_hz` removed.

    ``M = (L+R)/2, S = (L−R)/2``; the side is split by a zero-phase low-pass at ``bass_mono_hz``
    (0 = off), its upper part multiplied by ``width``. Appends mono-compatibility and peak warnings
    (worded as the `stereo_width` tool's) to `warnings`; returns (float32 output, report).
    With numba, `_width_kernel` does it in the low-pass's two passes (the same samples); else numpy,
    a slice at a time.
    """
    from scipy.signal import sosfilt_zi

    report: dict[str, Any] = {"width": width}
    sos = np.zeros((0, 6))
    if bass_mono_hz > 0:
        f = clamp_freq(bass_mono_hz, sr, warnings, "bass mono crossover")
        sos = biquad("lowpass", f, sr, 0.0, 0.707)
    n = x.shape[-1]
    kernel = _jit("_width_kernel") if n > 0 and sos.shape[0] <= 1 else None
    y = np.empty(x.shape, dtype=np.float32)
    y[2:] = x[2:]
    if kernel is not None:
        zi = sosfilt_zi(sos)[0] if sos.shape[0] else np.zeros(2)
        pad = min(n - 1, 3 * 2 * 50)  # `apply_sos`'s zero-phase padding for one section
        sums = kernel(np.ascontiguousarray(x[:2]), sos, zi, pad, float(width), y)
        lli, rri, lri, ll, rr, lr, peak = (float(v) for v in sums)
        d_in = math.sqrt(lli * rri)
        report["correlation_before"] = round(float(lri / d_in) if d_in > 0 else 1.0, 3)
    else:
        report["correlation_before"] = round(stereo_correlation(x), 3)
        ll, rr, lr, peak = _stereo_width_numpy(x, sos, width, y)
    if sos.shape[0]:
        report["bass_mono_hz"] = round(f, 1)
    d = math.sqrt(ll * rr)
    corr = float(lr / d) if d > 0 else 1.0
    p_st, p_mono = (ll + rr) / (2.0 * n), (ll + rr + 2.0 * lr) / (4.0 * n)
    loss = 10 * math.log10(max(p_st, 1e-20) / max(p_mono, 1e-20)) if p_st > 0 else 0.0
    report.update(
        {
            "correlation_after": round(corr, 3),
            "mono_fold_loss_db": round(loss, 2),
            "side_gain_db": round(20 * math.log10(max(width, 1e-6)), 1),
        }
    )
    if corr < 0.0 or loss > 3.0:
        warnings.append(
            f"stereo_width: mono compatibility is poor after processing (correlation {corr:+.2f}, "
            f"{loss:.1f} dB lost when folded to mono); use a smaller width"
        )
    if peak > 1.0 or (len(y) > 2 and float(np.max(np.abs(y[2:]))) > 1.0):
        warnings += peak_warning("stereo_width", y)
    return y, report


def _stereo_width_numpy(
    x: np.ndarray, sos: np.ndarray, width: float, y: np.ndarray
) -> tuple[float, float, float, float]:
    """`stereo_width`'s mix without numba, into channels 0 and 1 of `y`: (L·L, R·R, L·R, peak) of the output."""
    low: np.ndarray | None = None
    if sos.shape[0]:
        side = 0.5 * (x[0].astype(np.float64) - x[1])
        low = apply_sos(side[None, :], sos, zero_phase=True)[0]
        del side
    ll = rr = lr = peak = 0.0
    step = 1 << 16  # float64 maths a slice at a time (no full-length float64 mid/side arrays)
    for a in range(0, x.shape[-1], step):
        b = min(a + step, x.shape[-1])
        left, right = x[0, a:b].astype(np.float64), x[1, a:b]
        mid = 0.5 * (left + right)
        new_side = 0.5 * (left - right)
        if low is not None:
            new_side -= low[a:b]
        new_side *= width
        y[0, a:b] = mid + new_side
        y[1, a:b] = mid - new_side
        g = y[:2, a:b].astype(np.float64)
        gram = g @ g.T
        ll, rr, lr = ll + float(gram[0, 0]), rr + float(gram[1, 1]), lr + float(gram[0, 1])
        peak = max(peak, float(np.max(np.abs(g))))
    return ll, rr, lr, peak


def _width_kernel(  # pragma: no cover - compiled by numba
    x: np.ndarray, sos: np.ndarray, zi: np.ndarray, pad: int, width: float, y: np.ndarray
) -> np.ndarray:
    """`stereo_width`'s float64 maths on channels 0 and 1 of `x`, compiled: the side's zero-phase
    low-pass (scipy's sosfiltfilt of one biquad, odd extension of `pad` samples; none when `sos` is
    empty), the mix into `y` (done in the backward pass, as each sample's low part is ready) and the sums
    L·L, R·R, L·R of the input and of the output and the output's largest |sample| (returned in that
    order). Each sample's operations are the numpy path's, so the same samples (the sums add in
    another order)."""
    n = x.shape[1]
    lli = rri = lri = llo = rro = lro = peak = 0.0
    if sos.shape[0] == 0:
        for i in range(n):
            left, right = np.float64(x[0, i]), np.float64(x[1, i])
            lli += left * left
            rri += right * right
            lri += left * right
            mid = 0.5 * (left + right)
            side = 0.5 * (left - right) * width
            a, b = np.float32(mid + side), np.float32(mid - side)
            y[0, i], y[1, i] = a, b
            fa, fb = np.float64(a), np.float64(b)
            llo += fa * fa
            rro += fb * fb
            lro += fa * fb
            peak = max(peak, abs(fa), abs(fb))
    else:
        b0, b1, b2, a1, a2 = sos[0, 0], sos[0, 1], sos[0, 2], sos[0, 4], sos[0, 5]
        m = n + 2 * pad
        fwd = np.empty(m)
        s0 = 0.5 * (np.float64(x[0, 0]) - np.float64(x[1, 0]))
        s1 = 0.5 * (np.float64(x[0, n - 1]) - np.float64(x[1, n - 1]))
        # forward pass over the side and its odd extensions: 2·s0 − side[pad − j] before, 2·s1 − side[2n + pad − 2 − j] after
        first = 2.0 * s0 - 0.5 * (np.float64(x[0, pad]) - np.float64(x[1, pad])) if pad > 0 else s0
        z0, z1 = zi[0] * first, zi[1] * first
        for j in range(m):
            k = pad - j if j < pad else (j - pad if j < pad + n else 2 * n + pad - 2 - j)
            v = 0.5 * (np.float64(x[0, k]) - np.float64(x[1, k]))
            if j < pad:
                v = 2.0 * s0 - v
            elif j >= pad + n:
                v = 2.0 * s1 - v
            o = b0 * v + z0
            z0 = b1 * v - a1 * o + z1
            z1 = b2 * v - a2 * o
            fwd[j] = o
        # backward pass; inside the signal each sample's low part is mixed at once
        z0, z1 = zi[0] * fwd[m - 1], zi[1] * fwd[m - 1]
        for j in range(m - 1, pad + n - 1, -1):  # the tail's extension
            v = fwd[j]
            o = b0 * v + z0
            z0 = b1 * v - a1 * o + z1
            z1 = b2 * v - a2 * o
        for i in range(n - 1, -1, -1):
            v = fwd[pad + i]
            o = b0 * v + z0
            z0 = b1 * v - a1 * o + z1
            z1 = b2 * v - a2 * o
            left, right = np.float64(x[0, i]), np.float64(x[1, i])
            lli += left * left
            rri += right * right
            lri += left * right
            mid = 0.5 * (left + right)
            side = 0.5 * (left - right)
            side -= np.float64(np.float32(o))
            side *= width
            a, b = np.float32(mid + side), np.float32(mid - side)
            y[0, i], y[1, i] = a, b
            fa, fb = np.float64(a), np.float64(b)
            llo += fa * fa
            rro += fb * fb
            lro += fa * fb
            peak = max(peak, abs(fa), abs(fb))
    sums = np.empty(7)
    sums[0], sums[1], sums[2], sums[3], sums[4], sums[5], sums[6] = lli, rri, lri, llo, rro, lro, peak
    return sums


# ----------------------------------------------------------------------------- ducking

#: the ducker's detector step, and its defaults (the `sidechain` tool's parameters default to these)
DUCK_STEP_S = 0.01
DUCK_ATTACK_MS = 30.0
DUCK_RELEASE_MS = 300.0
DUCK_BAND_LOW_HZ = 200.0
DUCK_BAND_HIGH_HZ = 5000.0


def voice_activity(voice: np.ndarray, sr: int, step: int) -> np.ndarray:
    """0/1 activity per `step` samples of a (channels, frames) voice.

    Active when the 100 Hz high-passed level is within 35 dB of its loud level (95th
    percentile) and above −60 dBFS, held 150 ms across short gaps between syllables.
    """
    from scipy.ndimage import maximum_filter1d

    v = apply_sos(voice, biquad("highpass", 100.0, sr, 0.0, 0.707))
    level = frame_rms_db(v, step)
    loud = float(np.percentile(level, 95))
    active = (level > max(loud - 35.0, -60.0)).astype(np.float64)
    hold = max(1, int(round(0.15 / (step / sr))))
    return np.asarray(
        maximum_filter1d(active, size=hold, origin=-(hold // 2) if hold > 1 else 0, mode="constant")
    )


def duck(
    music: np.ndarray,
    sr: int,
    voice: np.ndarray,
    warnings: list[str],
    *,
    depth_db: float,
    mode: str = "band",
    attack_ms: float = DUCK_ATTACK_MS,
    release_ms: float = DUCK_RELEASE_MS,
    band_low_hz: float = DUCK_BAND_LOW_HZ,
    band_high_hz: float = DUCK_BAND_HIGH_HZ,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Turn `music` (channels, frames) down by `depth_db` while `voice` (same shape) is active.

    ``mode="broadband"`` scales the whole signal; ``"band"`` cuts only ``band_low_hz``–``band_high_hz``
    (quarter-octave raised-cosine edges) in the STFT domain. Returns (float32 output, report).
    """
    frames = music.shape[-1]
    step = max(1, int(round(DUCK_STEP_S * sr)))
    act = voice_activity(voice, sr, step)
    gr = smooth_gain_db(act * depth_db, step / sr, attack_ms, release_ms)
    gr_s = frames_to_samples(gr, step, frames)
    info: dict[str, Any] = {
        "mode": mode,
        "depth_db": depth_db,
        "voice_active_fraction": round(float(act.mean()), 3),
        "mean_reduction_when_active_db": round(float(gr[act > 0].mean()), 2) if act.any() else 0.0,
    }
    if mode == "broadband":
        y = music * (10.0 ** (-gr_s / 20.0))[None, :]
        return y.astype(np.float32), info
    hi = clamp_freq(band_high_hz, sr, warnings, "sidechain band")
    lo = min(band_low_hz, hi / 2)
    n_fft = stft_size(sr, 0.046)
    hop = n_fft // 4
    z, total = stft(music, n_fft, hop)
    # gain at each frame centre (frames start at -n_fft padding)
    centres = np.arange(z.shape[1]) * hop + n_fft // 2 - n_fft
    g = 10.0 ** (-np.interp(centres, np.arange(frames), gr_s) / 20.0)
    mask = band_mask(np.fft.rfftfreq(n_fft, 1.0 / sr), lo, hi, 0.25)
    gains = 1.0 - (1.0 - g)[:, None] * mask[None, :]
    info["band_hz"] = [round(lo), round(hi)]
    return istft(z * gains[None], n_fft, hop, total, frames), info


# ----------------------------------------------------------------------------- mains hum


def hum_notch(
    x: np.ndarray,
    sample_rate: int,
    mains_hz: float,
    harmonics: int = 8,
    width_hz: float = 2.0,
    max_hz: float = 1000.0,
) -> np.ndarray:
    """Remove mains hum: zero-phase RBJ notches at ``mains_hz`` and its harmonics (up to ``max_hz``).

    (channels, frames) → same. Each notch is ``width_hz`` wide at −3 dB (Q = f / width), so a
    50 Hz comb takes out 8 lines of 2 Hz and leaves the music between them; zero-phase keeps
    the output aligned with the input.
    """
    if mains_hz <= 0:
        raise ValueError(f"mains_hz must be positive (got {mains_hz}); use 50 or 60")
    sections = []
    for k in range(1, int(harmonics) + 1):
        f = k * mains_hz
        if f > min(max_hz, MAX_FREQ_FRACTION * sample_rate):
            break
        sections.append(biquad("notch", f, sample_rate, q=f / max(width_hz, 0.1)))
    return apply_sos(np.atleast_2d(x), to_sos(sections), zero_phase=True)
