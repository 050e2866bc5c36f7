import tomllib
from importlib import resources

import numpy as np
import pytest

from tests.mixhelpers import pink
from tools import dsp
from tools.audio import Audio, load
from tools.genre_preset import tone_curve as gp_tone_curve
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


@pytest.mark.parametrize("channels", [1, 2, 3])
def test_threaded_run_is_the_sequential_chain(channels):
    """The tool measures and filters channels in threads: the result is the chain run step by step
    (tone profile, FIR, compressor, width, loudness match) on one thread, bit for bit."""
    from concurrent.futures import ThreadPoolExecutor

    from tools.genre_preset import MAX_LOW_MOVE, MAX_TILT_MOVE, tone_curve, tone_profile
    from tools.genres import load_preset
    from tools.loudness import integrated_lufs

    sr = 44100
    x = pink(3.0, sr, channels, amp=0.1, seed=4)
    x[:, : sr // 2] *= 0.1  # a quiet start, so that the compressor has something to do
    a = Audio(x, sr)
    preset, k = load_preset("rock"), 0.7
    tilt0, low0 = tone_profile(x, sr)
    with ThreadPoolExecutor(2) as pool:
        assert tone_profile(x, sr, pool) == pytest.approx((tilt0, low0), abs=1e-9)
    d_tilt = k * float(np.clip(preset.tilt_db_per_octave - tilt0, -MAX_TILT_MOVE, MAX_TILT_MOVE))
    d_low = k * float(np.clip(preset.low_end_db - low0, -MAX_LOW_MOVE, MAX_LOW_MOVE))
    y = dsp.apply_fir(x, dsp.fir_from_curve(*tone_curve(d_tilt, d_low, sr), sr))
    y, _ = dsp.compress(y, sr, float(preset.compression) * k)
    if channels >= 2:
        y, _ = dsp.stereo_width(y, sr, 1.0 + (float(preset.width) - 1.0) * k, float(preset.bass_mono_hz), [])
    y = y * np.float32(10.0 ** ((integrated_lufs(a) - integrated_lufs(Audio(y, sr))) / 20.0))
    r = gp(a, {"genre": "rock", "intensity": k})
    assert np.array_equal(r.audio.samples, y)
    assert r.report["tilt_after_db_per_octave"] == round(tone_profile(y, sr)[0], 2)


@pytest.mark.parametrize("n", [1, 700, 2049, 14336, 14337, 100_000])
def test_apply_fir_is_the_delay_compensated_convolution(n):
    rng = np.random.default_rng(n)
    x = rng.standard_normal((2, n)).astype(np.float32)
    h = dsp.fir_from_curve(*gp_tone_curve(1.5, 3.0, 44100), 44100)
    d = h.size // 2
    want = np.stack([np.convolve(row.astype(np.float64), h)[d : d + n] for row in x])
    y = dsp.apply_fir(x, h)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert np.max(np.abs(y - want)) < 1e-5 * max(1.0, float(np.max(np.abs(want))))


@pytest.mark.parametrize("n", [5, 4096, 4097, 300_000])
def test_average_spectrum_compiled_equals_numpy_path(monkeypatch, n):
    pytest.importorskip("numba")
    x = pink(max(n / 44100, 0.001), 44100, 2, amp=0.1)[:, :n]
    f, compiled = dsp.average_spectrum(x, 44100)
    for name in ("_welch_segments_kernel", "_power_sum_kernel"):
        monkeypatch.setitem(dsp._JIT, name, None)  # the path taken without numba
    _, plain = dsp.average_spectrum(x, 44100)
    assert np.allclose(compiled, plain, rtol=1e-6, atol=0)  # the same float32 operations: equal in practice
    from scipy.signal import welch

    _, ref = welch(x.astype(np.float64), 44100, nperseg=min(4096, n), axis=-1)
    assert np.allclose(compiled, ref.mean(axis=0), rtol=1e-3, atol=1e-12 * float(ref.max()))


def test_peak_over_full_scale_is_warned_and_under_is_not():
    x = pink(3.0, 44100, 2, amp=0.05)
    hot = Audio((x / np.abs(x).max() * 0.999).astype(np.float32), 44100)
    r = gp(hot, {"genre": "metal", "intensity": 1.0})
    peak_db = 20 * np.log10(float(np.abs(r.audio.samples).max()))
    assert peak_db > 0 and f"genre_preset: sample peak {peak_db:+.1f} dBFS" in " ".join(r.warnings)
    quiet = gp(Audio(x * 0.1, 44100), {"genre": "metal", "intensity": 1.0})
    assert not [w for w in quiet.warnings if w.startswith("genre_preset: sample peak")]
