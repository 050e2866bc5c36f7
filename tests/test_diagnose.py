"""`tools.diagnose`: findings and facts measured on small real clips and synthetic signals."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import signal

from tests.conftest import LOCAL_FIXTURES, sine
from tools.audio import Audio, load, save
from tools.diagnose import FACT_KEYS, PROBLEMS, REPAIR_PROBLEMS, Diagnosis, diagnose

CLEAN_CLIPS = [
    "speech_female_16k.flac",
    "slow_motion_dream_3s.flac",
    "karissa_hobbs_lets_go_fishin_8s.flac",
    "singing-female-3s5.flac",
]


def clip(name: str) -> Audio:
    return load(LOCAL_FIXTURES / name)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def with_noise(a: Audio, snr_db: float, seed: int = 0) -> Audio:
    rng = np.random.default_rng(seed)
    n = rng.standard_normal(a.samples.shape)
    g = rms(a.samples) / (rms(n) * 10 ** (snr_db / 20))
    return a.with_samples((a.samples + g * n).astype(np.float32))


def with_hum(a: Audio, mains_hz: float, snr_db: float) -> Audio:
    t = np.arange(a.frames) / a.sample_rate
    h = np.zeros_like(t)
    for k, amp in enumerate((1.0, 0.5, 0.35, 0.2), start=1):
        h += amp * np.sin(2 * np.pi * k * mains_hz * t)
    g = rms(a.samples) / (rms(h) * 10 ** (snr_db / 20))
    return a.with_samples((a.samples + g * h).astype(np.float32))


@pytest.mark.parametrize("name", CLEAN_CLIPS)
def test_clean_clips_get_no_repair_finding(name):
    d = diagnose(clip(name))
    assert not d.repairs, [f.to_dict() for f in d.repairs]
    tonal = {"sibilance", "muddy", "boomy", "harsh", "dull", "thin"}
    assert not [f.problem for f in d.findings if f.problem in tonal]  # tonal findings are conservative
    assert set(d.facts) == set(FACT_KEYS)
    assert all(f.problem in PROBLEMS for f in d.findings)


def test_hard_clipping_is_found_with_its_share_of_samples():
    a = clip("speech_female_16k.flac")
    peak = float(np.abs(a.samples).max())
    clipped = a.with_samples(np.clip(a.samples, -0.3 * peak, 0.3 * peak))
    d = diagnose(clipped)
    f = d.get("clipping")
    assert f is not None
    assert 0.005 < d.facts["clipping_ratio"] < 0.5
    assert "% of samples" in f.evidence and "runs" in f.evidence
    # the same clip attenuated (peak far under full scale) still shows its flat tops
    quiet = clipped.with_samples(clipped.samples * np.float32(0.2))
    assert diagnose(quiet).has("clipping")


def test_noise_at_10_db_snr_is_found_and_quoted_in_db():
    d = diagnose(with_noise(clip("speech_female_16k.flac"), 10.0))
    f = d.get("noise")
    assert f is not None
    assert "dBFS" in f.evidence and "dB under" in f.evidence
    assert 5.0 < d.facts["snr_db"] < 18.0
    assert d.facts["noise_floor_dbfs"] < d.facts["rms_dbfs"]


def test_noise_floor_of_stationary_noise_reads_its_level():
    rng = np.random.default_rng(1)
    x = np.zeros((1, 48000 * 6), np.float32)
    x[0, 48000 * 2 : 48000 * 4] = sine(440.0, 2.0, 48000, 0.5)[0]  # a tone with pauses around it
    x += (0.001 * rng.standard_normal(x.shape)).astype(np.float32)  # -60 dBFS white noise
    d = diagnose(Audio(x, 48000))
    assert d.facts["noise_floor_dbfs"] == pytest.approx(-60.0, abs=1.5)


def test_brown_noise_under_music_is_found_at_its_level():
    # 1/f^2 noise from 20 Hz up, 20 dB under the music: its steady floor shows in a few low bands only
    from models.degrade import add_noise, band_limit, coloured_noise

    a = clip("slow_motion_dream_3s.flac")
    x = a.mono().samples[0].astype(np.float64)
    brown = band_limit(
        coloured_noise(x.size, "brown", np.random.default_rng(0)), a.sample_rate, 20.0, None, order=4
    )
    d = diagnose(a.with_samples(add_noise(x, brown, 20.0).astype(np.float32)[None, :]))
    f = d.get("noise")
    assert f is not None and "dB" in f.evidence and "dBFS" in f.evidence
    assert d.facts["snr_db"] == pytest.approx(20.0, abs=4.0)


def test_steady_brown_noise_under_speech_is_found_though_a_weighting_hides_it():
    # 22 dB under the speech: A-weighted it reads ~30 dB (over the 28 dB limit), but the floor is steady
    # in most bands, so it is surely noise and the 25 dB unweighted limit for steady floors applies
    from models.degrade import add_noise, band_limit, coloured_noise

    a = clip("speech_female_16k.flac")
    x = a.mono().samples[0].astype(np.float64)
    brown = band_limit(
        coloured_noise(x.size, "brown", np.random.default_rng(0)), a.sample_rate, 20.0, None, order=4
    )
    f = diagnose(a.with_samples(add_noise(x, brown, 22.0).astype(np.float32)[None, :])).get("noise")
    assert f is not None
    assert f.measurements["snr_a_db"] > 28.0 and 22.0 < f.measurements["snr_db"] < 25.0
    assert f.measurements["stationary_band_fraction"] >= 0.5


def test_dense_music_is_not_read_as_noisy():
    d = diagnose(clip("karissa_hobbs_lets_go_fishin_8s.flac"))
    assert not d.has("noise")
    snr = d.facts["snr_db"]
    assert snr is None or snr > 30.0


@pytest.mark.parametrize("mains", [50.0, 60.0])
def test_hum_is_found_at_its_mains_frequency(mains):
    d = diagnose(with_hum(clip("speech_female_16k.flac"), mains, 20.0))
    f = d.get("hum")
    assert f is not None and f"{mains:.0f} Hz" in f.evidence
    assert d.facts["hum_hz"] == pytest.approx(mains, abs=0.5)
    assert d.facts["hum_db"] == pytest.approx(-20.0, abs=3.0)


def test_lowpass_at_4_khz_is_bandlimited_with_its_cutoff():
    a = clip("slow_motion_dream_3s.flac")
    sos = signal.butter(8, 4000.0, btype="lowpass", fs=a.sample_rate, output="sos")
    d = diagnose(a.with_samples(signal.sosfiltfilt(sos, a.samples, axis=1).astype(np.float32)))
    f = d.get("bandlimited")
    assert f is not None and "kHz" in f.evidence
    assert d.facts["bandwidth_hz"] == pytest.approx(4000.0, rel=0.15)


def test_16_khz_speech_is_not_bandlimited_for_its_rate():
    d = diagnose(clip("speech_female_16k.flac"))
    assert not d.has("bandlimited")


def test_reverb_on_speech_is_found():
    a = clip("speech_female_16k.flac")
    sr = a.sample_rate
    rng = np.random.default_rng(3)
    n = int(1.0 * sr)
    t = np.arange(n) / sr
    ir = rng.standard_normal(n) * np.exp(-6.9078 * t / 1.0)  # RT60 1 s
    ir *= 1.0 / math.sqrt(float(np.sum(ir**2)))  # tail as strong as the direct sound
    ir[0] += 1.0
    wet = signal.fftconvolve(a.samples[0], ir)[: a.frames]
    wet = wet / np.abs(wet).max() * 0.5
    d = diagnose(Audio(wet.astype(np.float32), sr))
    assert d.facts["content"] == "speech"
    assert d.has("reverb"), [f.to_dict() for f in d.findings]


def test_integrated_loudness_agrees_with_pyloudnorm():
    import pyloudnorm

    for name in ("slow_motion_dream_3s.flac", "speech_female_16k.flac"):
        a = clip(name)
        ref = pyloudnorm.Meter(a.sample_rate).integrated_loudness(a.samples.T.astype(np.float64))
        d = diagnose(a)
        assert d.facts["integrated_lufs"] == pytest.approx(ref, abs=0.5)
        assert d.facts["plr_db"] == pytest.approx(
            d.facts["true_peak_dbtp"] - d.facts["integrated_lufs"], abs=0.02
        )


def test_true_peak_and_quiet_loudness_findings():
    loud = Audio(sine(997.0, 3.0, 48000, 0.999, channels=2), 48000)
    assert diagnose(loud).has("true_peak")
    quiet = Audio(sine(997.0, 3.0, 48000, 0.005, channels=2), 48000)
    d = diagnose(quiet)
    assert d.has("loudness") and d.facts["integrated_lufs"] < -40.0


def test_inverted_stereo_is_a_mono_compatibility_problem():
    x = sine(440.0, 3.0, 48000, 0.3, channels=2)
    x[1] *= -1.0
    d = diagnose(Audio(x, 48000))
    assert d.has("mono_compatibility")
    assert d.facts["stereo_correlation"] == pytest.approx(-1.0, abs=0.01)
    assert d.facts["mono_loss_db"] > 20.0


def test_silence_gives_a_sensible_result_and_nan_a_clear_error():
    d = diagnose(Audio(np.zeros((2, 48000), np.float32), 48000))
    assert d.facts["sample_peak_dbfs"] == -120.0
    assert not d.repairs
    assert json.dumps(d.to_dict(), allow_nan=False)
    bad = np.zeros((1, 48000), np.float32)
    bad[0, 10] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        diagnose(Audio(bad, 48000))


def test_round_trip_and_json_safe():
    d = diagnose(with_noise(clip("slow_motion_dream_3s.flac"), 5.0))
    data = json.loads(json.dumps(d.to_dict(), allow_nan=False))
    again = Diagnosis.from_dict(data)
    assert [f.problem for f in again.findings] == [f.problem for f in d.findings]
    assert all(p in PROBLEMS for p in REPAIR_PROBLEMS)


def test_boomy_music_is_found_and_a_bass_genre_moves_the_limit():
    a = clip("karissa_hobbs_lets_go_fishin_8s.flac")
    sos = signal.butter(2, [60.0, 160.0], btype="bandpass", fs=a.sample_rate, output="sos")
    low = signal.sosfiltfilt(sos, a.samples, axis=1)
    boosted = a.with_samples((a.samples + 20.0 * low).astype(np.float32) * np.float32(0.3))
    d = diagnose(boosted)
    f = d.get("boomy")
    assert f is not None and "dB" in f.evidence
    limit = f.measurements["limit_db"]
    g = diagnose(boosted, genre="hip hop").get("boomy")
    assert g is None or g.measurements["limit_db"] > limit


def test_reuses_a_given_analysis():
    from tools.analysis import analyze

    a = clip("slow_motion_dream_3s.flac")
    assert diagnose(a, analyze(a)).facts == diagnose(a).facts


def test_cli_json_shape_and_bad_file(tmp_path):
    p = tmp_path / "noisy.wav"
    save(with_noise(clip("speech_female_16k.flac"), 10.0), p)
    cmd = [sys.executable, "-m", "app.cli", "diagnose"]
    r = subprocess.run([*cmd, str(p), "--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) == {"findings", "facts"}
    assert set(out["facts"]) == set(FACT_KEYS)
    assert any(f["problem"] == "noise" for f in out["findings"])
    for f in out["findings"]:
        assert set(f) == {"problem", "severity", "evidence", "measurements"}
    human = subprocess.run([*cmd, str(p)], capture_output=True, text=True, timeout=120)
    assert human.returncode == 0 and "noise" in human.stdout and "LUFS" in human.stdout
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    r = subprocess.run([*cmd, str(bad)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("mixpilot: error:")


@pytest.mark.fixtures
def test_real_noisy_recordings_are_noisy_and_clean_halves_are_not(shared_fixtures):
    pairs = shared_fixtures / "speech_pairs" / "vbdemand"
    noisy = sorted((pairs / "noisy").glob("*.wav"))[:3]
    if not noisy:
        pytest.skip("no vbdemand pairs")
    for p in noisy:
        assert diagnose(load(p)).has("noise"), p.name
        assert not diagnose(load(pairs / "clean" / p.name)).has("noise"), p.name
