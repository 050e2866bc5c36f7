import numpy as np
import pytest
from scipy.signal import butter, sosfilt

from tests.mixhelpers import band_db
from tools.audio import Audio, load
from tools.registry import get_tool

de_ess = get_tool("de_ess")


def vowel_and_s(sr: int, seed: int = 0) -> tuple[np.ndarray, list, list]:
    """Alternating 'vowels' (harmonic 150 Hz complex + a little air) and 's' bursts (5–10 kHz noise)."""
    rng = np.random.default_rng(seed)
    seg = int(0.3 * sr)
    parts, vowels, esses = [], [], []
    t = np.arange(seg) / sr
    hf = butter(4, [min(5000, 0.3 * sr), min(10000, 0.45 * sr)], btype="bandpass", fs=sr, output="sos")
    for i in range(8):
        if i % 2 == 0:
            v = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 20)) * 0.1
            v += 0.005 * sosfilt(hf, rng.standard_normal(seg))  # faint air, not sibilance
            vowels.append((i * seg, (i + 1) * seg))
        else:
            v = 0.2 * sosfilt(hf, rng.standard_normal(seg))
            esses.append((i * seg, (i + 1) * seg))
        parts.append(v)
    return np.concatenate(parts).astype(np.float32), vowels, esses


@pytest.mark.parametrize("sr", [44100, 48000])
def test_lowers_sibilance_only_in_sibilant_frames(sr):
    x, vowels, esses = vowel_and_s(sr)
    y = de_ess(Audio(x, sr), {"amount": 0.6}).audio.samples[0]
    m = int(0.05 * sr)  # skip the smoothing edges
    for a, b in esses:
        d = band_db(y[a + m : b - m], sr, 5000, 10000) - band_db(x[a + m : b - m], sr, 5000, 10000)
        assert d < -4.0
    for a, b in vowels:
        d = band_db(y[a + m : b - m], sr, 5000, 10000) - band_db(x[a + m : b - m], sr, 5000, 10000)
        assert abs(d) < 0.5
        d_low = band_db(y[a + m : b - m], sr, 100, 3000) - band_db(x[a + m : b - m], sr, 100, 3000)
        assert abs(d_low) < 0.2


def test_amount_zero_identity_and_low_rate_clamp():
    x, _, _ = vowel_and_s(16000)
    r = de_ess(Audio(x, 16000), {"amount": 0.5})
    assert any("0.45" in w or "band moved" in w for w in r.warnings)
    assert np.array_equal(de_ess(Audio(x, 16000), {"amount": 0}).audio.samples, x[None])


def test_real_speech_sibilant_frames(shared_fixtures):
    a = load(shared_fixtures / "speech" / "speech-female.flac")
    r = de_ess(a, {"amount": 0.7})
    assert r.report["sibilant_fraction"] > 0.01
    x, y = a.samples[0], r.audio.samples[0]
    assert band_db(y, a.sample_rate, 5000, 10000) < band_db(x, a.sample_rate, 5000, 10000) - 0.5
    assert abs(band_db(y, a.sample_rate, 100, 2000) - band_db(x, a.sample_rate, 100, 2000)) < 0.2
