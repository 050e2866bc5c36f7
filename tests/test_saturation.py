import numpy as np
import pytest

from tools.audio import Audio
from tools.registry import get_tool

sat = get_tool("saturation")


def spectrum(y, sr):
    y = y[int(0.1 * sr) : -int(0.1 * sr)]
    s = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    return np.fft.rfftfreq(y.size, 1 / sr), s


@pytest.mark.parametrize("sr", [44100, 48000])
def test_adds_harmonics(sr):
    t = np.arange(sr) / sr
    x = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    f, s = spectrum(sat(Audio(x, sr), {"amount": 0.5}).audio.samples[0], sr)
    fund = s[np.abs(f - 1000) < 20].max()
    h2 = 20 * np.log10(s[np.abs(f - 2000) < 20].max() / fund)
    h3 = 20 * np.log10(s[np.abs(f - 3000) < 20].max() / fund)
    assert h2 > -45 and h3 > -35
    f0, s0 = spectrum(x, sr)
    assert 20 * np.log10(s0[np.abs(f0 - 3000) < 20].max() / s0[np.abs(f0 - 1000) < 20].max()) < -80


@pytest.mark.parametrize("sr", [44100, 48000])
@pytest.mark.parametrize("amount", [0.3, 1.0])
def test_no_aliasing_from_a_high_sine(sr, amount):
    # every harmonic of 15 kHz is above fs/2: anything else in the output is aliasing
    t = np.arange(sr) / sr
    x = (0.9 * np.sin(2 * np.pi * 15000 * t)).astype(np.float32)
    f, s = spectrum(sat(Audio(x, sr), {"amount": amount}).audio.samples[0], sr)
    fund = s[np.abs(f - 15000) < 50].max()
    other = s[(np.abs(f - 15000) > 300) & (f > 20)].max()
    # tanh keeps aliasing far down (a naive shaper without oversampling reads about -20 dB here)
    assert 20 * np.log10(other / fund) < (-90 if amount < 0.5 else -60)


def test_level_matched_and_stereo():
    sr = 48000
    x = np.random.default_rng(0).standard_normal((2, sr)).astype(np.float32) * 0.2
    y = sat(Audio(x, sr), {"amount": 0.6}).audio.samples
    assert y.shape == x.shape
    assert abs(10 * np.log10(np.mean(y**2) / np.mean(x**2))) < 0.2
