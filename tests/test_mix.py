import numpy as np
import pytest

from tests.mixhelpers import pink
from tools.audio import Audio, load
from tools.loudness import integrated_lufs
from tools.registry import ToolContext, get_tool

mix = get_tool("mix")


@pytest.mark.parametrize("offset", [-3.0, 2.0, 6.0])
def test_vocal_level_set_by_loudness_and_headroom(offset):
    sr = 44100
    music = pink(5.0, sr, 2, amp=0.2)
    t = np.arange(int(4.0 * 22050)) / 22050
    vocal = (0.1 * sum(np.sin(2 * np.pi * 220 * k * t) / k for k in range(1, 10))).astype(np.float32)
    r = mix(
        Audio(music, sr),
        {"vocal_offset_db": offset, "duck_db": 0, "headroom_db": 6},
        ToolContext(inputs={"voice": Audio(vocal, 22050)}),
    )  # different rate and channels on purpose
    assert r.audio.samples.shape == (2, music.shape[1])
    assert r.report["padded"] == "voice"
    placed = r.report["vocal_lufs"] + r.report["vocal_gain_db"]
    assert abs(placed - (r.report["music_lufs"] + offset)) < 0.01
    assert np.abs(r.audio.samples).max() <= 10 ** (-6 / 20) + 1e-4


def test_real_vocal_over_music_with_ducking(shared_fixtures):
    m = load(shared_fixtures / "music" / "Kevin_MacLeod_-_Vibe_Ace.flac")
    v = load(shared_fixtures / "vocals" / "vocadito_10.flac")
    r = mix(m, {"duck_db": 4}, ToolContext(inputs={"voice": v}))
    assert r.report["ducking"]["voice_active_fraction"] > 0.1
    assert abs(r.report["ducking"]["mean_reduction_when_active_db"] - 4) < 1.0
    assert np.isfinite(integrated_lufs(r.audio))
