import numpy as np
import pytest

from tests.mixhelpers import band_db, pink, rms_db
from tools.audio import Audio
from tools.registry import ToolContext, ToolError, get_tool

sc = get_tool("sidechain")


def voice_bursts(sr: int, seconds: float = 6.0) -> np.ndarray:
    """A 'voice' (harmonic 200 Hz complex) active 1–2.5 s and 3.5–4.5 s."""
    t = np.arange(int(seconds * sr)) / sr
    v = sum(np.sin(2 * np.pi * 200 * k * t) / k for k in range(1, 15)) * 0.1
    on = ((t > 1.0) & (t < 2.5)) | ((t > 3.5) & (t < 4.5))
    return (v * on).astype(np.float32)[None]


@pytest.mark.parametrize("sr", [44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("depth", [6.0, 12.0])
def test_broadband_ducks_by_depth_only_while_voice_active(sr, channels, depth):
    music = pink(6.0, sr, channels, amp=0.1)
    ctx = ToolContext(inputs={"voice": Audio(voice_bursts(sr), sr)})
    y = sc(
        Audio(music, sr), {"depth_db": depth, "mode": "broadband", "attack_ms": 20, "release_ms": 200}, ctx
    )
    y = y.audio.samples

    def s(a: float, b: float) -> tuple[slice, slice]:
        return (slice(None), slice(int(a * sr), int(b * sr)))

    active = rms_db(y[s(1.3, 2.4)]) - rms_db(music[s(1.3, 2.4)])
    idle = rms_db(y[s(5.3, 6.0)]) - rms_db(music[s(5.3, 6.0)])
    before = rms_db(y[s(0.0, 0.9)]) - rms_db(music[s(0.0, 0.9)])
    assert abs(active + depth) < 1.0
    assert abs(idle) < 0.3 and abs(before) < 0.3


@pytest.mark.parametrize("sr", [44100, 48000])
def test_band_mode_cuts_voice_band_not_bass(sr):
    music = pink(6.0, sr, 2, amp=0.1)
    ctx = ToolContext(inputs={"voice": Audio(voice_bursts(sr), sr)})
    y = sc(Audio(music, sr), {"depth_db": 9.0, "mode": "band"}, ctx).audio.samples
    a, b = int(1.4 * sr), int(2.4 * sr)
    mid = band_db(y[:, a:b], sr, 400, 3000) - band_db(music[:, a:b], sr, 400, 3000)
    low = band_db(y[:, a:b], sr, 30, 80) - band_db(music[:, a:b], sr, 30, 80)
    assert abs(mid + 9.0) < 1.0
    assert abs(low) < 0.7
    c, d = int(5.4 * sr), int(6.0 * sr) - 2048
    assert abs(band_db(y[:, c:d], sr, 400, 3000) - band_db(music[:, c:d], sr, 400, 3000)) < 0.3


def test_needs_voice():
    with pytest.raises(ToolError, match="voice"):
        sc(Audio(pink(1.0, 48000), 48000), {})
