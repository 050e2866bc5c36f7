import numpy as np
import pytest

from tests.mixhelpers import pink
from tools import dsp
from tools.audio import Audio, load
from tools.registry import get_tool

sw = get_tool("stereo_width")


def stereo(sr):
    common = pink(2.0, sr, 1, seed=1)[0]
    diff = pink(2.0, sr, 1, seed=2)[0]
    return np.stack([common + 0.5 * diff, common - 0.5 * diff]).astype(np.float32)


@pytest.mark.parametrize("sr", [44100, 48000])
def test_width_zero_gives_identical_channels(sr):
    y = sw(Audio(stereo(sr), sr), {"width": 0.0}).audio.samples
    assert np.max(np.abs(y[0] - y[1])) < 1e-6


@pytest.mark.parametrize("sr", [44100, 48000])
def test_wider_lowers_correlation_bass_stays_mono(sr):
    x = stereo(sr)
    r = sw(Audio(x, sr), {"width": 1.8, "bass_mono_hz": 150})
    y = r.audio.samples
    assert r.report["correlation_after"] < r.report["correlation_before"] - 0.05
    side = 0.5 * (y[0] - y[1])
    side_in = 0.5 * (x[0] - x[1])
    from tests.mixhelpers import band_db

    assert band_db(side, sr, 20, 60) < band_db(side_in, sr, 20, 60) - 20
    assert abs(band_db(side, sr, 2000, 8000) - band_db(side_in, sr, 2000, 8000) - 20 * np.log10(1.8)) < 0.3


def test_unchanged_at_one_without_crossover_and_mono_warns():
    sr = 48000
    x = stereo(sr)
    y = sw(Audio(x, sr), {"width": 1.0, "bass_mono_hz": 0}).audio.samples
    assert np.max(np.abs(y - x)) < 1e-6
    r = sw(Audio(x[:1], sr), {"width": 1.5})
    assert r.warnings and np.array_equal(r.audio.samples, x[:1])


def test_poor_mono_compatibility_is_reported():
    sr = 48000
    n = pink(2.0, sr, 1)[0]
    x = np.stack([n, -0.9 * n]).astype(np.float32)  # nearly out of phase
    r = sw(Audio(x, sr), {"width": 1.5, "bass_mono_hz": 0})
    assert r.report["correlation_after"] < 0
    assert any("mono compatibility" in w for w in r.warnings)


def test_real_music(shared_fixtures):
    a = load(shared_fixtures / "music" / "Kevin_MacLeod_-_Vibe_Ace.flac")
    narrow = sw(a, {"width": 0.5}).audio
    assert dsp.stereo_correlation(narrow.samples) > dsp.stereo_correlation(a.samples)


@pytest.mark.parametrize("n", [1, 2, 301, 48000])
@pytest.mark.parametrize(("width", "bass_mono_hz"), [(1.3, 120.0), (0.5, 0.0)])
def test_compiled_width_equals_numpy_path(monkeypatch, n, width, bass_mono_hz):
    pytest.importorskip("numba")
    x = stereo(48000)[:, :n]
    compiled = dsp.stereo_width(x, 48000, width, bass_mono_hz, [])
    monkeypatch.setitem(dsp._JIT, "_width_kernel", None)  # the path taken without numba
    plain = dsp.stereo_width(x, 48000, width, bass_mono_hz, [])
    assert np.array_equal(compiled[0], plain[0])
    assert compiled[1] == plain[1]
