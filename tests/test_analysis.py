"""tools.analysis on synthetic signals with known answers, on real recordings, and against ffmpeg."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.signal import ellip, sosfilt

from tests.conftest import noise, sine
from tests.ffmeter import ebur128, require_ffmpeg
from tools.analysis import LEVEL_FLOOR_DB, analyze
from tools.audio import Audio, load


def _json_roundtrip(d: dict) -> dict:
    return json.loads(json.dumps(d, allow_nan=False))


@pytest.mark.parametrize("sr", [44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
def test_sine_levels(sr, channels):
    a = analyze(Audio(sine(1000, 5.0, sr, amp=0.5, channels=channels), sr))
    assert a.sample_peak_dbfs == pytest.approx(-6.02, abs=0.05)
    assert a.rms_dbfs == pytest.approx(-9.03, abs=0.05)
    assert a.crest_db == pytest.approx(3.01, abs=0.05)
    assert a.true_peak_dbtp == pytest.approx(-6.02, abs=0.1)
    assert a.spectral_centroid_hz == pytest.approx(1000, rel=0.05)
    assert a.clipping_ratio == 0.0 and abs(a.dc_offset) < 1e-3
    assert a.bandwidth_hz < 1500
    assert a.duration_s == pytest.approx(5.0) and a.sample_rate == sr and a.channels == channels
    d = a.to_dict()
    assert _json_roundtrip(d) == d
    for key in (
        "integrated_lufs",
        "true_peak_dbtp",
        "sample_peak_dbfs",
        "lra_lu",
        "max_momentary_lufs",
        "max_short_term_lufs",
        "rms_dbfs",
        "crest_db",
        "noise_floor_dbfs",
        "snr_db",
        "clipping_ratio",
        "bandwidth_hz",
        "spectral_centroid_hz",
        "spectral_rolloff_hz",
        "spectral_tilt_db_per_octave",
        "stereo_width",
        "stereo_correlation",
        "speech_probability",
        "dc_offset",
        "duration_s",
        "sample_rate",
        "channels",
    ):
        assert key in d


def test_white_noise_floor_tilt_and_full_bandwidth():
    sr = 48000
    a = analyze(Audio(noise(10.0, sr, amp=0.01, channels=2, seed=4), sr))
    assert a.rms_dbfs == pytest.approx(-40.0, abs=0.1)
    assert a.noise_floor_dbfs == pytest.approx(-40.0, abs=1.0)  # stationary noise is all noise
    assert a.snr_db < 3.0
    assert a.bandwidth_hz == pytest.approx(sr / 2, rel=0.02)
    assert abs(a.spectral_tilt_db_per_octave) < 0.5
    assert a.stereo_correlation == pytest.approx(0.0, abs=0.02)
    assert a.stereo_width == pytest.approx(0.5, abs=0.02)


def test_speech_like_bursts_over_quiet_noise_give_a_noise_floor_and_snr():
    sr = 16000
    x = noise(10.0, sr, amp=0.001, seed=1)  # -60 dBFS background
    t = np.arange(x.shape[1]) / sr
    gate = (np.sin(2 * np.pi * 0.7 * t) > 0.2).astype(np.float32)  # on ~43 % of the time
    x = x + gate * noise(10.0, sr, amp=0.1, seed=2)
    a = analyze(Audio(x, sr))
    assert a.noise_floor_dbfs == pytest.approx(-60.0, abs=2.0)
    assert a.snr_db == pytest.approx(a.rms_dbfs + 60.0, abs=2.5)


def test_clipped_sine_has_clipping_ratio_and_clean_one_does_not():
    sr = 44100
    x = sine(440, 3.0, sr, amp=2.0)
    clipped = np.clip(x, -1.0, 1.0)
    a = analyze(Audio(clipped, sr))
    # a 2x sine clipped at 1 spends 2/3 of each cycle at +-1 (|sin| > 0.5)
    assert a.clipping_ratio == pytest.approx(2 / 3, abs=0.03)
    # clipped and then turned down 6 dB still shows its flat tops
    assert analyze(Audio(clipped * 0.5, sr)).clipping_ratio == pytest.approx(2 / 3, abs=0.03)
    assert analyze(Audio(sine(440, 3.0, sr, amp=0.99), sr)).clipping_ratio == 0.0
    assert analyze(Audio(noise(3.0, sr, amp=0.2), sr)).clipping_ratio == 0.0


@pytest.mark.parametrize("cutoff", [4000.0, 8000.0, 11000.0, 16000.0])
def test_low_passed_noise_bandwidth_is_near_cutoff(cutoff):
    # brick-wall low-pass (as codecs and resamplers do) over a -100 dBFS hiss
    sr = 44100
    x = noise(6.0, sr, amp=0.1, channels=2, seed=7)
    spec = np.fft.rfft(x, axis=1)
    spec[:, np.fft.rfftfreq(x.shape[1], 1 / sr) > cutoff] = 0
    x = np.fft.irfft(spec, n=x.shape[1], axis=1) + noise(6.0, sr, amp=1e-5, channels=2, seed=8)
    a = analyze(Audio(x, sr))
    assert a.bandwidth_hz == pytest.approx(cutoff, rel=0.08)  # upper edge of a 1/24-octave band
    assert a.spectral_rolloff_hz < cutoff


def test_steep_iir_low_pass_reads_a_little_above_its_corner():
    # an elliptic skirt still has energy above the hiss for a few percent past the corner
    sr = 44100
    sos = ellip(10, 0.1, 100, 6000, fs=sr, output="sos")
    x = sosfilt(sos, noise(6.0, sr, amp=0.1, seed=7), axis=1) + noise(6.0, sr, amp=1e-5, seed=8)
    assert 6000 < analyze(Audio(x, sr)).bandwidth_hz < 8000


def test_stereo_phase_cases():
    sr = 48000
    n = noise(4.0, sr, amp=0.1, seed=3)[0]
    same = analyze(Audio(np.stack([n, n]), sr))
    assert same.stereo_correlation == pytest.approx(1.0, abs=1e-4) and same.stereo_width == pytest.approx(
        0.0, abs=1e-4
    )
    inv = analyze(Audio(np.stack([n, -n]), sr))
    assert inv.stereo_correlation == pytest.approx(-1.0, abs=1e-4) and inv.stereo_width == pytest.approx(
        1.0, abs=1e-4
    )
    dec = analyze(Audio(noise(4.0, sr, amp=0.1, channels=2, seed=9), sr))
    assert abs(dec.stereo_correlation) < 0.03 and dec.stereo_width == pytest.approx(0.5, abs=0.03)
    mono = analyze(Audio(n, sr))
    assert mono.stereo_correlation == 1.0 and mono.stereo_width == 0.0


def test_pink_noise_tilts_down_3db_per_octave():
    sr = 44100
    rng = np.random.default_rng(0)
    spec = np.fft.rfft(rng.standard_normal(sr * 10))
    f = np.fft.rfftfreq(sr * 10, 1 / sr)
    spec[1:] /= np.sqrt(f[1:])
    spec[0] = 0
    x = np.fft.irfft(spec)
    x = 0.05 * x / x.std()
    a = analyze(Audio(x, sr))
    assert a.spectral_tilt_db_per_octave == pytest.approx(-3.0, abs=0.5)
    assert a.bandwidth_hz == pytest.approx(sr / 2, rel=0.02)


def test_silence_short_multichannel_and_dc():
    sr = 48000
    s = analyze(Audio(np.zeros((2, sr)), sr))
    assert s.silent and s.integrated_lufs == LEVEL_FLOOR_DB and s.sample_peak_dbfs == LEVEL_FLOOR_DB
    assert s.true_peak_dbtp == LEVEL_FLOOR_DB and s.rms_dbfs == LEVEL_FLOOR_DB and s.clipping_ratio == 0.0
    d = s.to_dict()
    assert _json_roundtrip(d) == d and d["max_short_term_lufs"] is None  # 1 s: too short for 3 s
    short = analyze(Audio(sine(1000, 0.2, sr, amp=0.3), sr))
    assert short.integrated_lufs is None and short.max_momentary_lufs is None
    assert short.sample_peak_dbfs == pytest.approx(20 * math.log10(0.3), abs=0.05)
    tiny = analyze(Audio(np.array([[0.1, -0.2, 0.3]]), sr))
    assert tiny.duration_s == pytest.approx(3 / sr)
    eight = analyze(Audio(noise(2.0, sr, amp=0.05, channels=8, seed=2), sr))
    assert eight.channels == 8 and eight.integrated_lufs is not None
    dc = analyze(Audio(sine(1000, 2.0, sr, amp=0.1) + 0.05, sr))
    assert dc.dc_offset == pytest.approx(0.05, abs=1e-3)
    with pytest.raises(ValueError):
        analyze(Audio(np.zeros((1, 0)), sr))


def test_analyze_does_not_change_its_input():
    a = Audio(noise(2.0, 44100, amp=0.1, channels=2), 44100)
    before = a.samples.copy()
    analyze(a)
    assert np.array_equal(a.samples, before)


# ----------------------------------------------------------------------------- real recordings


def test_speech_scores_higher_than_music(shared_fixtures):
    speech = sorted((shared_fixtures / "speech").glob("*.*"))
    music = sorted((shared_fixtures / "music").glob("*.flac"))
    if len(speech) < 3 or len(music) < 3:
        pytest.skip("speech/music fixtures missing")
    ps = [analyze(load(p)).speech_probability for p in speech]
    pm = [analyze(load(p)).speech_probability for p in music]
    assert np.median(ps) > 0.5 > np.median(pm)
    assert np.mean(ps) > np.mean(pm) + 0.3


def test_band_limited_recording_reads_narrower_than_full_band_music(shared_fixtures):
    p = shared_fixtures / "degraded" / "jfk_1961_broadcast.flac"
    music = sorted((shared_fixtures / "music").glob("Kevin*.flac"))
    if not p.is_file() or not music:
        pytest.skip("degraded/music fixtures missing")
    # the 1961 broadcast was transcoded with a ~16 kHz low-pass (its hiss reaches that far)
    assert analyze(load(p)).bandwidth_hz < 17000
    for m in music:
        assert analyze(load(m)).bandwidth_hz > 15000  # MP3-sourced mixes: 16-20 kHz cliffs


@pytest.mark.fixtures
def test_music_loudness_agrees_with_ffmpeg_ebur128(shared_fixtures):
    exe = require_ffmpeg()
    files = sorted((shared_fixtures / "music").glob("*.flac"))
    if not files:
        pytest.skip("no music fixtures")
    for p in files:
        ours = analyze(load(p))
        ref = ebur128(p, exe)
        assert ours.integrated_lufs == pytest.approx(ref.integrated_lufs, abs=0.2), p.name
        assert ours.true_peak_dbtp == pytest.approx(ref.true_peak_dbtp, abs=0.3), p.name
