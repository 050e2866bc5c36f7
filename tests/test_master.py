"""master: loudness targets and the true-peak ceiling, checked with ffmpeg's ebur128 (not our meter)."""

import numpy as np
import pytest

from tests.ffmeter import ebur128, require_ffmpeg
from tests.mixhelpers import pink
from tools.audio import Audio, load
from tools.registry import get_tool

master = get_tool("master")
CLIPS = [
    "admiralbob77_-_Choice_-_Drum-bass.flac",
    "Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).flac",
    "Kevin_MacLeod_-_Vibe_Ace.flac",
]


@pytest.fixture(scope="module")
def clips(shared_fixtures):
    out = {}
    for name in CLIPS:
        a = load(shared_fixtures / "music" / name)
        out[name] = a.with_samples(a.samples[:, : 12 * a.sample_rate])  # 12 s keeps the test quick
    return out


@pytest.mark.parametrize("name", CLIPS)
@pytest.mark.parametrize("target", [-9.0, -14.0, -16.0, -23.0])
def test_real_music_hits_target_under_ceiling_by_ffmpeg(clips, name, target):
    require_ffmpeg()
    r = master(clips[name], {"target_lufs": target, "true_peak_dbtp": -1.0})
    m = ebur128(r.audio)
    assert abs(m.integrated_lufs - target) <= 0.5, r.report
    assert m.true_peak_dbtp <= -1.0, r.report


@pytest.mark.parametrize("sr", [44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
def test_synthetic_targets_and_ceiling(sr, channels):
    require_ffmpeg()
    x = pink(6.0, sr, channels, amp=0.05)
    x[:, ::4000] = 0.9  # sharp peaks for the limiter
    r = master(Audio(x, sr), {"target_lufs": -16.0, "true_peak_dbtp": -2.0})
    m = ebur128(r.audio)
    assert abs(m.integrated_lufs + 16.0) <= 0.5
    assert m.true_peak_dbtp <= -2.0


def test_platform_presets_and_explicit_override():
    x = Audio(pink(4.0, 48000, 2, amp=0.05), 48000)
    assert master(x, {"platform": "broadcast"}).report["target_lufs"] == -23.0
    assert master(x, {"platform": "apple_music"}).report["target_lufs"] == -16.0
    r = master(x, {"platform": "audiobook"})
    assert r.report["ceiling_dbtp"] == -3.0 and "rms_dbfs" in r.report
    assert master(x, {"platform": "club", "target_lufs": -12.0}).report["target_lufs"] == -12.0


def test_quiet_input_is_limited_to_20_db_and_says_so():
    x = Audio(pink(4.0, 48000, 2, amp=0.0005), 48000)  # about -60 LUFS
    r = master(x, {"target_lufs": -14.0})
    assert r.report["gain_limited"] is True
    assert r.report["gain_db"] <= 20.0
    assert any("gain limited" in w for w in r.warnings)
    assert r.report["output_lufs"] < -30.0


def test_glue_and_silence():
    sr = 48000
    x = pink(4.0, sr, 2, amp=0.1)
    r = master(Audio(x, sr), {"glue": 0.8})
    assert r.report["glue"]["mean_gain_reduction_db"] > 0.3
    s = master(Audio(np.zeros((2, sr), np.float32), sr), {})
    assert s.warnings and not np.any(s.audio.samples)


def _si_sdr_db(ref: np.ndarray, est: np.ndarray) -> float:
    """Scale-invariant SDR of ``est`` against ``ref`` (dB): gain differences are not errors."""
    r, e = ref.astype(np.float64).ravel(), est.astype(np.float64).ravel()
    a = float(e @ r) / float(r @ r)
    err = e - a * r
    return 10.0 * np.log10(a * a * float(r @ r) / float(err @ err))


def test_loud_mode_is_more_transparent_on_dense_material_at_minus_9(clips):
    """The drum-and-bass loop at -9 LUFS: the limiter alone needs ~30 dB of peak reduction; loud mode's
    soft clipper takes the sharpest peaks sample by sample and keeps far more of the signal."""
    require_ffmpeg()
    a = clips["admiralbob77_-_Choice_-_Drum-bass.flac"]
    plain = master(a, {"target_lufs": -9.0, "true_peak_dbtp": -1.0})
    loud = master(a, {"target_lufs": -9.0, "true_peak_dbtp": -1.0, "mode": "loud"})
    assert plain.report["mode"] == "transparent" and loud.report["mode"] == "loud"
    assert loud.report["soft_clip"]["clipped_fraction"] > 0
    m = ebur128(loud.audio)
    assert abs(m.integrated_lufs + 9.0) <= 0.5 and m.true_peak_dbtp <= -1.0, loud.report
    assert _si_sdr_db(a.samples, loud.audio.samples) > _si_sdr_db(a.samples, plain.audio.samples) + 3.0


def test_mode_is_validated():
    x = Audio(pink(2.0, 48000, 2, amp=0.05), 48000)
    with pytest.raises(ValueError):
        master(x, {"mode": "crushed"})


@pytest.mark.parametrize("channels", [1, 2])
def test_compiled_limiter_pass_matches_numpy(channels):
    """The one-pass output and K-weighted power (numba) are the values of `_apply_block_gain` and
    `k_weighted_blocks`; the one-pass input detector is `block_peak` to float32 rounding."""
    from tools import dsp
    from tools.loudness import k_weighted_blocks, k_weighting_sos

    sr = 44100
    x = pink(3.0, sr, channels, amp=0.2)
    x[:, ::5000] = 0.95
    peak = dsp.block_peak(x, 16)
    gain = dsp.limiter_gain(peak * 2.0, 0.8, 16 / sr)
    assert gain.min() < 0.6  # the limiter works here
    blocks = k_weighted_blocks(Audio(x, sr), compiled=False)
    fused = dsp.apply_block_gain_k_power(x, gain, 16, 2.0, k_weighting_sos(sr), blocks.chunk)
    assert fused is not None, "numba is a dependency: the compiled path must run"
    y, power = fused
    ref = dsp._apply_block_gain(x, gain, 16, np.float32(2.0))
    assert np.array_equal(y, ref)
    want = k_weighted_blocks(Audio(ref, sr), compiled=False)
    from tools.loudness import channel_weights

    np.testing.assert_allclose(channel_weights(channels) @ power, want.chunk_power, rtol=1e-6)
    got = dsp.k_power_and_block_peak(x, k_weighting_sos(sr), blocks.chunk, 16)
    assert got is not None
    np.testing.assert_allclose(channel_weights(channels) @ got[0], blocks.chunk_power, rtol=1e-6)
    np.testing.assert_allclose(got[1], peak, rtol=1e-6, atol=1e-7)
