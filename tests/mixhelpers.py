"""Small measurement helpers shared by the mixing/mastering tool tests."""

from __future__ import annotations

import numpy as np

from tools.audio import Audio


def pink(seconds: float, sr: int, channels: int = 1, seed: int = 0, amp: float = 0.1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    spec = np.fft.rfft(rng.standard_normal((channels, n)), axis=-1)
    f = np.fft.rfftfreq(n, 1.0 / sr)
    spec[:, 1:] /= np.sqrt(f[1:])
    spec[:, 0] = 0
    x = np.fft.irfft(spec, n=n, axis=-1)
    return (amp * x / x.std()).astype(np.float32)


def band_db(x: np.ndarray, sr: int, lo: float, hi: float) -> float:
    """Energy (dB) of x between lo and hi Hz (FFT of the whole signal)."""
    spec = np.abs(np.fft.rfft(np.atleast_2d(x).astype(np.float64), axis=-1)) ** 2
    f = np.fft.rfftfreq(np.atleast_2d(x).shape[-1], 1.0 / sr)
    sel = (f >= lo) & (f < hi)
    return 10 * np.log10(spec[:, sel].sum() + 1e-30)


def rms_db(x: np.ndarray) -> float:
    return 10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-30)


def audio(x: np.ndarray, sr: int) -> Audio:
    return Audio(x, sr)
