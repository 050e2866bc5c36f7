import tomllib
from importlib import resources

import numpy as np
import pytest

from tests.mixhelpers import pink
from tools import dsp
from tools.audio import Audio, load
from tools.genres import GENRES
from tools.registry import get_tool

gp = get_tool("genre_preset")
PRESET_DIR = resources.files("tools").joinpath("presets")


def test_every_genre_has_a_data_file_with_sources():
    for g in GENRES:
        path = PRESET_DIR / f"{g}.toml"
        text = path.read_text()
        data = tomllib.loads(text)
        for key in ("tilt_db_per_octave", "low_end_db", "compression", "width", "loudness_lufs"):
            assert key in data, (g, key)
        assert "Pestana" in text and "#" in text


def tracks(sr):
    x = pink(4.0, sr, 2, amp=0.05)
    dull = dsp.apply_sos(x, np.vstack([dsp.biquad("lowpass", 2500, sr, 0, 0.707)] * 2))
    bright = dsp.apply_sos(x, dsp.biquad("high_shelf", 2000, sr, 12, 0.707))
    return Audio(dull, sr), Audio(bright, sr)


@pytest.mark.parametrize("sr", [44100, 48000])
@pytest.mark.parametrize("genre", ["pop", "lofi"])
def test_moves_tilt_toward_target_both_ways(sr, genre):
    dull, bright = tracks(sr)
    target = tomllib.loads((PRESET_DIR / f"{genre}.toml").read_text())["tilt_db_per_octave"]
    for a in (dull, bright):
        before = dsp.spectral_tilt_db_per_octave(a.samples, sr)
        after = dsp.spectral_tilt_db_per_octave(gp(a, {"genre": genre, "intensity": 0.8}).audio.samples, sr)
        assert abs(after - target) < abs(before - target) - 0.5
    d = gp(dull, {"genre": genre}).report["tilt_change_db_per_octave"]
    b = gp(bright, {"genre": genre}).report["tilt_change_db_per_octave"]
    assert d > 0 > b  # the same preset brightens the dull track and darkens the bright one


def test_intensity_bounds_the_move_and_zero_is_identity():
    dull, _ = tracks(48000)
    small = gp(dull, {"genre": "pop", "intensity": 0.2}).report["tilt_change_db_per_octave"]
    big = gp(dull, {"genre": "pop", "intensity": 1.0}).report["tilt_change_db_per_octave"]
    assert 0 < small < big <= 2.0
    assert np.array_equal(gp(dull, {"genre": "pop", "intensity": 0}).audio.samples, dull.samples)


def test_real_music_loudness_kept(shared_fixtures):
    from tools.loudness import integrated_lufs

    a = load(shared_fixtures / "music" / "Kevin_MacLeod_-_Vibe_Ace.flac")
    a = a.with_samples(a.samples[:, : 10 * a.sample_rate])
    r = gp(a, {"genre": "edm"})
    assert abs(integrated_lufs(r.audio) - integrated_lufs(a)) < 0.3
    assert r.report["tilt_after_db_per_octave"] > r.report["tilt_before_db_per_octave"]
