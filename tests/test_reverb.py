import numpy as np
import pytest

from tools.audio import Audio
from tools.registry import get_tool

rev = get_tool("reverb")


def click(sr, channels=1):
    x = np.zeros((channels, 3 * sr), np.float32)
    x[:, int(0.1 * sr)] = 0.9
    return x


def tail_db(y, sr, a, b):
    seg = y[:, int(a * sr) : int(b * sr)].astype(np.float64)
    return 10 * np.log10(np.mean(seg**2) + 1e-30)


@pytest.mark.parametrize("sr", [44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
def test_adds_a_tail_and_hall_is_longer_than_small(sr, channels):
    x = click(sr, channels)
    small = rev(Audio(x, sr), {"style": "small", "amount": 0.5}).audio.samples
    hall = rev(Audio(x, sr), {"style": "hall", "amount": 0.5}).audio.samples
    assert tail_db(small, sr, 0.3, 0.6) > -100  # there is something after the click
    # hall decays more slowly: compare late/early energy ratios
    r_small = tail_db(small, sr, 0.9, 1.2) - tail_db(small, sr, 0.15, 0.45)
    r_hall = tail_db(hall, sr, 0.9, 1.2) - tail_db(hall, sr, 0.15, 0.45)
    assert r_hall > r_small + 6


def test_pre_delay_amount_zero_and_more_wet():
    sr = 48000
    x = click(sr)
    assert np.array_equal(rev(Audio(x, sr), {"amount": 0}).audio.samples, x)
    y = rev(Audio(x, sr), {"amount": 0.5, "pre_delay_ms": 80}).audio.samples[0]
    i = int(0.1 * sr)
    assert np.abs(y[i + 10 : i + int(0.07 * sr)]).max() < 1e-4  # silent during the pre-delay
    lo = rev(Audio(x, sr), {"amount": 0.2}).audio.samples
    hi = rev(Audio(x, sr), {"amount": 0.8}).audio.samples
    assert tail_db(hi, sr, 0.3, 1.0) > tail_db(lo, sr, 0.3, 1.0) + 6
