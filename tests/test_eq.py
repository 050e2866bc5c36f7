import numpy as np
import pytest

from tests.mixhelpers import band_db, pink
from tools import dsp
from tools.audio import Audio
from tools.registry import get_tool

eq = get_tool("eq")


@pytest.mark.parametrize("sr", [44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
def test_brighter_raises_centroid_darker_lowers(sr, channels):
    a = Audio(pink(2.0, sr, channels), sr)
    c0 = dsp.spectral_centroid_hz(a.samples, sr)
    up = eq(a, {"bright_db": 6}).audio
    down = eq(a, {"bright_db": -6}).audio
    assert dsp.spectral_centroid_hz(up.samples, sr) > c0 * 1.15
    assert dsp.spectral_centroid_hz(down.samples, sr) < c0 * 0.9
    assert up.samples.shape == a.samples.shape


@pytest.mark.parametrize("sr", [44100, 48000])
def test_tonal_words_touch_their_bands(sr):
    a = Audio(pink(2.0, sr), sr)
    x = a.samples
    for word, lo, hi, other in [
        ("mud_db", 220, 450, (2000, 4000)),
        ("boom_db", 90, 180, (1000, 2000)),
        ("air_db", 12000, 16000, (500, 1000)),
        ("presence_db", 2500, 3500, (100, 200)),
    ]:
        y = eq(a, {word: -6}).audio.samples
        assert band_db(y, sr, lo, hi) - band_db(x, sr, lo, hi) < -3.0, word
        assert abs(band_db(y, sr, *other) - band_db(x, sr, *other)) < 1.0, word


def test_amount_scales_and_zero_is_identity():
    sr = 48000
    a = Audio(pink(1.0, sr), sr)
    full = eq(a, {"mud_db": -8, "amount": 1.0}).audio.samples
    half = eq(a, {"mud_db": -8, "amount": 0.5}).audio.samples
    d_full = band_db(full, sr, 250, 350) - band_db(a.samples, sr, 250, 350)
    d_half = band_db(half, sr, 250, 350) - band_db(a.samples, sr, 250, 350)
    assert d_full < d_half < 0
    assert np.array_equal(eq(a, {"mud_db": -8, "amount": 0.0}).audio.samples, a.samples)


def test_bounds_clamp_nyquist_and_refuse_huge_boosts():
    sr = 22050
    a = Audio(pink(1.0, sr), sr)
    r = eq(a, {"bands": [{"type": "high_shelf", "freq_hz": 20000, "gain_db": 6}]})
    assert any("0.45" in w for w in r.warnings)
    assert np.isfinite(r.audio.samples).all()
    with pytest.raises(ValueError):
        eq(a, {"bands": [{"type": "peak", "freq_hz": 1000, "gain_db": 30}]})
    r = eq(a, {"bands": [{"type": "peak", "freq_hz": 1000, "gain_db": 15, "q": 0.5}] * 3})
    assert max(r.report["response_db"].values()) <= 15.2
    assert any("combined boost" in w for w in r.warnings)


def test_low_cut_removes_rumble():
    sr = 48000
    t = np.arange(sr) / sr
    x = (0.3 * np.sin(2 * np.pi * 30 * t) + 0.3 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    y = eq(Audio(x, sr), {"low_cut_hz": 120}).audio.samples
    assert band_db(y, sr, 25, 35) - band_db(x, sr, 25, 35) < -20
    assert abs(band_db(y, sr, 990, 1010) - band_db(x, sr, 990, 1010)) < 0.5
