import numpy as np
import pytest

from tests.mixhelpers import band_db, pink
from tools.audio import Audio
from tools.registry import get_tool

deq = get_tool("dynamic_eq")


@pytest.mark.parametrize("sr", [44100, 48000])
def test_cuts_harshness_only_when_loud(sr):
    n = int(4 * sr)
    t = np.arange(n) / sr
    x = pink(4.0, sr, amp=0.05)[0]
    harsh = 0.3 * np.sin(2 * np.pi * 3500 * t)
    env = ((t > 1.0) & (t < 2.0)).astype(float)  # a loud harsh burst, then quiet harsh
    quiet = ((t > 2.5) & (t < 3.5)).astype(float) * 0.03
    x = (x + harsh * (env + quiet)).astype(np.float32)
    y = deq(
        Audio(x, sr), {"target": "harsh", "threshold_db": -30, "max_cut_db": 8, "amount": 1.0}
    ).audio.samples[0]

    def s(a: float, b: float) -> slice:
        return slice(int(a * sr), int(b * sr))

    loud_change = band_db(y[s(1.2, 1.9)], sr, 3300, 3700) - band_db(x[s(1.2, 1.9)], sr, 3300, 3700)
    quiet_change = band_db(y[s(2.7, 3.4)], sr, 3300, 3700) - band_db(x[s(2.7, 3.4)], sr, 3300, 3700)
    assert loud_change < -5.0
    assert abs(quiet_change) < 0.5
    # elsewhere in the spectrum nothing happens
    assert abs(band_db(y[s(1.2, 1.9)], sr, 200, 800) - band_db(x[s(1.2, 1.9)], sr, 200, 800)) < 0.5


def test_resonance_found_and_custom_needs_freq():
    sr = 48000
    x = pink(2.0, sr, amp=0.05)[0]
    t = np.arange(x.size) / sr
    x = (x + 0.1 * np.sin(2 * np.pi * 1234 * t)).astype(np.float32)
    r = deq(Audio(x, sr), {"target": "resonance"})
    assert abs(r.report["freq_hz"] - 1234) < 30
    with pytest.raises(ValueError):
        deq(Audio(x, sr), {"target": "custom"})
