"""Audio core: loading every format, validation errors, atomic saving, dither."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import noise, sine
from tools.audio import Audio, AudioError, ffmpeg_executable, load, resample, save, tpdf_dither, validate


def test_audio_is_immutable_and_copies_caller_data():
    x = sine(channels=2)
    a = Audio(x, 48000)
    x[:] = 0  # the caller changing its array must not change the Audio
    assert np.abs(a.samples).max() > 0.4
    with pytest.raises(ValueError):
        a.samples[0, 0] = 1.0
    assert a.channels == 2 and a.frames == 48000 and a.duration_s == pytest.approx(1.0)


def test_mono_input_becomes_one_channel_and_dtype_float32():
    a = Audio(np.zeros(100, dtype=np.float64), 16000)
    assert a.samples.shape == (1, 100) and a.samples.dtype == np.float32


@pytest.mark.parametrize("sr", [44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize(
    "fmt,depth,tol",
    [("wav", 16, 1e-4), ("wav", 24, 1e-6), ("wav", 32, 0.0), ("flac", 16, 1e-4), ("flac", 24, 1e-6)],
)
def test_pcm_roundtrip(tmp_path, sr, channels, fmt, depth, tol):
    a = Audio(sine(440, 0.5, sr, 0.5, channels), sr)
    p = save(a, tmp_path / f"x.{fmt}", bit_depth=depth)
    b = load(p)
    assert (b.sample_rate, b.channels, b.frames) == (sr, channels, a.frames)
    assert np.abs(b.samples - a.samples).max() <= tol + 1e-9
    info = sf.info(str(p))
    assert info.subtype == ("FLOAT" if depth == 32 else f"PCM_{depth}")


@pytest.mark.parametrize("kbps", [128, 320])
def test_mp3_roundtrip_and_bitrate(tmp_path, kbps):
    a = Audio(sine(440, 2.0, 44100, 0.5, 2), 44100)
    p = save(a, tmp_path / "x.mp3", mp3_bitrate_kbps=kbps)
    b = load(p)
    assert b.sample_rate == 44100 and b.channels == 2
    assert abs(b.frames - a.frames) < 2 * 1152
    # CBR file size follows the bitrate (within container overhead)
    expected = kbps * 1000 / 8 * 2.0
    assert 0.8 * expected < p.stat().st_size < 1.25 * expected
    n = min(a.frames, b.frames)
    err = b.samples[:, :n] - a.samples[:, :n]
    assert 10 * np.log10(np.mean(a.samples**2) / np.mean(err**2)) > 15  # decoded waveform aligns


def test_ogg_and_aiff_load(tmp_path):
    x = sine(440, 0.5, 44100, 0.5, 2)
    sf.write(tmp_path / "x.ogg", x.T, 44100, format="OGG", subtype="VORBIS")
    sf.write(tmp_path / "x.aiff", x.T, 44100, format="AIFF", subtype="PCM_16")
    for name in ("x.ogg", "x.aiff"):
        a = load(tmp_path / name)
        assert a.channels == 2 and a.sample_rate == 44100
        assert abs(a.frames - x.shape[1]) < 2048


def test_m4a_loads_through_ffmpeg(tmp_path):
    exe = ffmpeg_executable()
    if exe is None:
        pytest.skip("no ffmpeg on this machine")
    wav = save(Audio(sine(440, 1.0, 48000, 0.5, 2), 48000), tmp_path / "x.wav")
    m4a = tmp_path / "x.m4a"
    r = subprocess.run([exe, "-v", "error", "-i", str(wav), "-c:a", "aac", "-b:a", "128k", str(m4a)])
    if r.returncode != 0:
        pytest.skip("this ffmpeg has no AAC encoder")
    a = load(m4a)
    assert a.sample_rate == 48000 and a.channels == 2 and 0.9 < a.duration_s < 1.2


def test_resample_keeps_a_tone_and_length():
    a = Audio(sine(1000, 1.0, 44100, 0.5), 44100)
    b = a.resample(48000)
    assert b.sample_rate == 48000 and abs(b.frames - 48000) <= 1
    spec = np.abs(np.fft.rfft(b.samples[0] * np.hanning(b.frames)))
    assert abs(np.argmax(spec) * 48000 / b.frames - 1000) < 2
    assert resample(a.samples, 44100, 44100) is a.samples


def test_tpdf_dither_is_unbiased_and_within_one_lsb():
    rng = np.random.default_rng(1)
    x = np.full((1, 200_000), 0.3 / 32768, dtype=np.float32)  # 0.3 LSB: rounding alone gives 0
    q = tpdf_dither(x, 16, rng)
    assert abs(q.mean() * 32768 - 0.3) < 0.02  # dither keeps the average level
    assert np.all(np.abs(q - x) <= 2.0 / 32768)


def test_save_is_atomic_and_leaves_nothing_on_failure(tmp_path, monkeypatch):
    a = Audio(sine(), 48000)
    target = tmp_path / "out.wav"
    save(a, target)
    before = target.read_bytes()

    import tools.audio as audio_mod

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(audio_mod, "_write_pcm", boom)
    with pytest.raises(AudioError, match="disk full"):
        save(Audio(noise(), 48000), target)
    assert target.read_bytes() == before  # the old file is intact
    assert sorted(os.listdir(tmp_path)) == ["out.wav"]  # no temp file left behind


def test_saved_files_get_the_usual_permissions(tmp_path):
    import tools.audio as audio_mod

    p = save(Audio(sine(), 48000), tmp_path / "x.flac")
    assert p.stat().st_mode & 0o777 == 0o666 & ~audio_mod._UMASK
    assert p.stat().st_mode & 0o044  # readable by group and others, not 0600


def test_save_refuses_bad_format_and_depth(tmp_path):
    a = Audio(sine(), 48000)
    with pytest.raises(AudioError, match="choose one of"):
        save(a, tmp_path / "x.ogg")
    with pytest.raises(AudioError, match="bit depth 32"):
        save(a, tmp_path / "x.flac", bit_depth=32)
    with pytest.raises(AudioError, match="bitrate"):
        save(a, tmp_path / "x.mp3", mp3_bitrate_kbps=100)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ bad input, one message each


def _write(tmp_path: Path, name: str, data: np.ndarray, sr: int, subtype: str = "FLOAT") -> Path:
    p = tmp_path / name
    sf.write(p, data.T, sr, subtype=subtype)
    return p


def make_bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """name → (file, words the error must contain). Shared with the CLI tests."""
    cases: dict[str, tuple[Path, str]] = {}
    cases["missing"] = (tmp_path / "nope.wav", "not found")
    (tmp_path / "empty.wav").write_bytes(b"")
    cases["empty"] = (tmp_path / "empty.wav", "empty")
    (tmp_path / "text.wav").write_text("this is not audio\n" * 50)
    cases["not_audio"] = (tmp_path / "text.wav", "not a readable audio file")
    good = _write(tmp_path, "good.wav", sine(440, 1.0, 48000, 0.5, 2), 48000, "PCM_16")
    raw = good.read_bytes()
    (tmp_path / "cut.wav").write_bytes(raw[: len(raw) // 2])
    cases["truncated_wav"] = (tmp_path / "cut.wav", "truncated")
    fl = _write(tmp_path, "good.flac", noise(2.0, 48000, 0.3, 2), 48000, "PCM_16")
    rawf = fl.read_bytes()
    (tmp_path / "cut.flac").write_bytes(rawf[: len(rawf) // 2])
    cases["truncated_flac"] = (tmp_path / "cut.flac", "truncated")
    nan = sine(440, 0.5, 48000)
    nan[0, 100:110] = np.nan
    cases["nan"] = (_write(tmp_path, "nan.wav", nan, 48000), "NaN")
    inf = sine(440, 0.5, 48000)
    inf[0, 5] = np.inf
    cases["inf"] = (_write(tmp_path, "inf.wav", inf, 48000), "infinite")
    cases["rate_low"] = (_write(tmp_path, "low.wav", sine(100, 0.5, 4000), 4000, "PCM_16"), "sample rate")
    cases["rate_high"] = (
        _write(tmp_path, "high.wav", sine(100, 0.1, 384000), 384000, "PCM_16"),
        "sample rate",
    )
    cases["channels"] = (
        _write(tmp_path, "ch10.wav", noise(0.2, 48000, 0.1, 10), 48000, "PCM_16"),
        "channels",
    )
    return cases


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "empty",
        "not_audio",
        "truncated_wav",
        "truncated_flac",
        "nan",
        "inf",
        "rate_low",
        "rate_high",
        "channels",
    ],
)
def test_bad_input_raises_audio_error_with_clear_message(tmp_path, case):
    path, words = make_bad_inputs(tmp_path)[case]
    with pytest.raises(AudioError) as exc:
        load(path)
    msg = str(exc.value)
    assert words.lower() in msg.lower(), msg
    assert "\n" not in msg


def test_silence_is_refused_only_where_signal_is_needed(tmp_path):
    p = _write(tmp_path, "silent.wav", np.zeros((2, 48000), np.float32), 48000, "PCM_16")
    assert load(p).frames == 48000  # analysing silence is fine
    with pytest.raises(AudioError, match="silent"):
        load(p, require_signal=True)


def test_duration_limit_is_checked_from_the_header(tmp_path):
    p = _write(tmp_path, "long.wav", noise(3.0, 8000, 0.1), 8000, "PCM_16")
    with pytest.raises(AudioError, match="limit is"):
        load(p, max_duration_s=2.0)
    assert load(p, max_duration_s=5.0).duration_s == pytest.approx(3.0)


def test_validate_rejects_in_memory_problems():
    with pytest.raises(AudioError, match="no samples"):
        validate(Audio(np.zeros((1, 0), np.float32), 48000))
    with pytest.raises(AudioError, match="sample rate"):
        validate(Audio(np.zeros((1, 10), np.float32), 1000))
