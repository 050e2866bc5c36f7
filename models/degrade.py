"""Procedural degradations for training and benchmarking the Op-GAN restorer.

Every degradation takes a clean mono float32 signal at ``sr`` and a numpy ``Generator``
and returns a degraded signal of the same length, time-aligned with the input (codecs
in pedalboard compensate their delay; filters are zero-phase; reverb keeps the direct
path at lag 0), so SI-SDR against the clean signal is meaningful.

Families (``FAMILIES``): additive noise of several colours (white, pink, brown) and real
noise recordings, clipping, band limiting (telephone 300–3400 Hz, the band of 8 kHz and
11.025 kHz sampling: 4 kHz and 5.5 kHz low-pass), MP3 and GSM codec artefacts (pedalboard),
mild reverb (synthetic exponentially decaying noise impulse response), mains hum (50/60
Hz with harmonics). `random_chain` draws one to three of them plus a random gain, for
training; `apply_family` applies one family at a fixed, seeded severity, for benchmarks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from scipy import signal

FAMILIES: tuple[str, ...] = (
    "white_noise",
    "pink_noise",
    "brown_noise",
    "real_noise",
    "clipping",
    "phone",
    "lowpass_8k",
    "lowpass_11k",
    "mp3",
    "gsm",
    "reverb",
    "hum",
)

_EPS = 1e-12


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + _EPS))


def coloured_noise(n: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise with a 1/f^a power spectrum: white a=0, pink a=1, brown a=2."""
    a = {"white": 0.0, "pink": 1.0, "brown": 2.0}[colour]
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spec.size, dtype=np.float64)
    f[0] = 1.0
    spec = spec / f ** (a / 2.0)
    spec[0] = 0.0
    x = np.fft.irfft(spec, n)
    return (x / _rms(x)).astype(np.float32)


def add_noise(x: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``x + noise`` scaled so that the ratio of their RMS is ``snr_db``."""
    g = _rms(x) / (_rms(noise) * 10 ** (snr_db / 20.0))
    return (x + g * noise).astype(np.float32)


def clip(x: np.ndarray, level: float) -> np.ndarray:
    """Hard clipping at ``level`` × the signal's peak."""
    t = float(level) * float(np.max(np.abs(x)) + _EPS)
    return np.clip(x, -t, t).astype(np.float32)


def band_limit(
    x: np.ndarray, sr: int, lo_hz: float | None, hi_hz: float | None, order: int = 8
) -> np.ndarray:
    """Zero-phase Butterworth band limiting (``lo_hz``/``hi_hz`` None = that side open)."""
    nyq = sr / 2.0
    if hi_hz is not None and hi_hz >= nyq * 0.98:
        hi_hz = None
    if lo_hz is None and hi_hz is None:
        return x.astype(np.float32)
    if lo_hz is not None and hi_hz is not None:
        sos = signal.butter(order, [lo_hz, hi_hz], btype="bandpass", fs=sr, output="sos")
    elif hi_hz is not None:
        sos = signal.butter(order, hi_hz, btype="lowpass", fs=sr, output="sos")
    else:
        sos = signal.butter(order, lo_hz, btype="highpass", fs=sr, output="sos")
    return signal.sosfiltfilt(sos, x).astype(np.float32)


def codec(x: np.ndarray, sr: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """MP3 (LAME VBR quality 6–9, low) or GSM 06.10 full rate through pedalboard."""
    import pedalboard

    fx: pedalboard.Plugin
    if kind == "mp3":
        fx = pedalboard.MP3Compressor(vbr_quality=float(rng.uniform(6.0, 9.0)))
    elif kind == "gsm":
        fx = pedalboard.GSMFullRateCompressor()
    else:
        raise ValueError(f"unknown codec {kind!r}")
    peak = float(np.max(np.abs(x)) + _EPS)
    y = fx.process((x / peak * 0.9)[None, :].astype(np.float32), sr)[0] * (peak / 0.9)
    out = np.zeros_like(x)
    out[: min(x.size, y.size)] = y[: x.size]
    return out.astype(np.float32)


def reverb(x: np.ndarray, sr: int, rt60_s: float, wet_db: float, rng: np.random.Generator) -> np.ndarray:
    """Mild room: direct path + exponentially decaying noise tail (RT60 ``rt60_s``) ``wet_db`` below it."""
    n = max(int(rt60_s * sr), 16)
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60_s)  # −60 dB at rt60
    tail[: int(0.002 * sr)] = 0.0  # 2 ms gap before the reflections
    tail = band_limit(tail.astype(np.float32), sr, None, 0.35 * sr)
    tail *= 10 ** (wet_db / 20.0) / (np.sqrt(np.sum(tail.astype(np.float64) ** 2)) + _EPS)
    ir = tail.astype(np.float64)
    ir[0] += 1.0
    return signal.fftconvolve(x, ir)[: x.size].astype(np.float32)


def hum(n: int, sr: int, mains_hz: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS mains hum: fundamental plus decaying odd/even harmonics with random phases."""
    t = np.arange(n) / sr
    y = np.zeros(n)
    for k, a in enumerate((1.0, 0.5, 0.35, 0.2, 0.12), start=1):
        if k * mains_hz < sr / 2:
            y += a * np.sin(2 * np.pi * k * mains_hz * t + rng.uniform(0, 2 * np.pi))
    return (y / _rms(y)).astype(np.float32)


class NoiseBank:
    """Real noise recordings resampled to ``sr`` mono; `sample` cuts a random excerpt."""

    def __init__(self, paths: Sequence[Path], sr: int) -> None:
        from tools.audio import load, resample

        self.clips: list[np.ndarray] = []
        for p in paths:
            a = load(p).mono()
            x = a.samples[0] if a.sample_rate == sr else resample(a.samples, a.sample_rate, sr)[0]
            if x.size > sr // 4 and _rms(x) > 1e-5:
                self.clips.append(x.astype(np.float32))
        self.names = [Path(p).name for p in paths]

    def __len__(self) -> int:
        return len(self.clips)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if not self.clips:
            return coloured_noise(n, "white", rng)
        c = self.clips[int(rng.integers(len(self.clips)))]
        if c.size < n:
            c = np.tile(c, n // c.size + 1)
        i = int(rng.integers(0, c.size - n + 1))
        return c[i : i + n] / _rms(c[i : i + n])


def apply_family(
    x: np.ndarray,
    sr: int,
    family: str,
    rng: np.random.Generator,
    noise_bank: NoiseBank | None = None,
    severity: float | None = None,
) -> np.ndarray:
    """One degradation family; ``severity`` 0..1 (None = random) maps to its strength."""
    s = float(rng.uniform(0.0, 1.0) if severity is None else severity)
    n = x.size
    if family in ("white_noise", "pink_noise", "brown_noise"):
        return add_noise(x, coloured_noise(n, family.split("_")[0], rng), 20.0 - 20.0 * s)  # SNR 20 → 0 dB
    if family == "real_noise":
        nz = noise_bank.sample(n, rng) if noise_bank is not None else coloured_noise(n, "pink", rng)
        return add_noise(x, nz, 20.0 - 20.0 * s)
    if family == "clipping":
        return clip(x, 0.6 - 0.45 * s)  # clip at 60 % → 15 % of the peak
    if family == "phone":
        return band_limit(x, sr, 300.0, 3400.0)
    if family == "lowpass_8k":
        return band_limit(x, sr, None, 3800.0)
    if family == "lowpass_11k":
        return band_limit(x, sr, None, 5300.0)
    if family in ("mp3", "gsm"):
        return codec(x, sr, family, rng)
    if family == "reverb":
        return reverb(x, sr, rt60_s=0.2 + 0.4 * s, wet_db=-12.0 + 8.0 * s, rng=rng)
    if family == "hum":
        return add_noise(x, hum(n, sr, float(rng.choice([50.0, 60.0])), rng), 25.0 - 20.0 * s)  # 25 → 5 dB
    raise ValueError(f"unknown degradation family {family!r}; known: {', '.join(FAMILIES)}")


def random_chain(
    x: np.ndarray,
    sr: int,
    rng: np.random.Generator,
    noise_bank: NoiseBank | None = None,
    families: Sequence[str] = FAMILIES,
    max_families: int = 3,
    gain_db: tuple[float, float] = (-12.0, 6.0),
) -> tuple[np.ndarray, list[str], float]:
    """Random gain, then 1..``max_families`` distinct families in canonical order (filters/codecs last).

    Returns the degraded signal, the families applied and the linear gain (apply it to the
    clean target too: gain is a nuisance to be robust to, not a degradation to undo).
    """
    k = int(rng.integers(1, max_families + 1))
    picked = list(rng.choice(np.array(families), size=min(k, len(families)), replace=False))
    order = {
        f: i
        for i, f in enumerate(
            (
                "reverb",
                "clipping",
                "white_noise",
                "pink_noise",
                "brown_noise",
                "real_noise",
                "hum",
                "phone",
                "lowpass_8k",
                "lowpass_11k",
                "mp3",
                "gsm",
            )
        )
    }
    picked.sort(key=lambda f: order.get(f, 99))
    gain = float(10 ** (rng.uniform(*gain_db) / 20.0))
    y = x * np.float32(gain)
    for fam in picked:
        y = apply_family(y, sr, fam, rng, noise_bank)
    return y.astype(np.float32), [str(f) for f in picked], gain


DegradeFn = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]
