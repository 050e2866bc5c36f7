"""The command line: exit codes, one-line errors, no partial outputs, lazy imports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import sine
from tests.test_audio import make_bad_inputs
from tools.audio import Audio, save
from tools.registry import CANONICAL

CLI = [sys.executable, "-m", "app.cli"]


def mp(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=e, timeout=300)


def _one_line_error(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("mixpilot: error:")
    return lines[0]


def test_help_does_not_import_torch():
    code = (
        "import sys; from app.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "main(['tools', '--json'])\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO_TORCH', file=sys.stderr)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "analyze" in r.stdout and "apply" in r.stdout
    assert r.stderr.strip().endswith("NO_TORCH")


def test_tools_json_lists_every_canonical_tool_with_availability():
    r = mp("tools", "--json")
    assert r.returncode == 0, r.stderr
    tools = json.loads(r.stdout)
    assert [t["name"] for t in tools] == list(CANONICAL)
    for t in tools:
        assert set(t) >= {"name", "description", "params", "available", "reason"}
        assert t["available"] or t["reason"], t  # unavailable tools say why


def test_analyze_json_on_a_file(tmp_path):
    p = save(
        Audio(sine(1000, 2.0, 48000, 10 ** (-23 / 20) * 2**0.5 / 2**0.5, 2), 48000),
        tmp_path / "s.wav",
        bit_depth=24,
    )
    r = mp("analyze", str(p), "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
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
        "stereo_correlation",
        "speech_probability",
        "duration_s",
        "sample_rate",
        "channels",
    ):
        assert key in d, key
    assert d["sample_rate"] == 48000 and d["channels"] == 2
    r2 = mp("analyze", str(p))
    assert r2.returncode == 0 and "integrated" in r2.stdout


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
def test_bad_input_exit_2_one_line_no_output(tmp_path, case):
    path, words = make_bad_inputs(tmp_path)[case]
    out = tmp_path / "out" / "result.wav"
    out.parent.mkdir()
    line = _one_line_error(mp("apply", str(path), "--tool", "eq", "-p", "bright_db=2", "-o", str(out), "-q"))
    assert words.lower() in line.lower()
    assert list(out.parent.iterdir()) == []
    _one_line_error(mp("analyze", str(path)))


def test_silence_and_duration_limit_via_cli(tmp_path):
    silent = save(Audio(sine(amp=0.0), 48000), tmp_path / "silent.wav", dither=False)
    out = tmp_path / "o.wav"
    assert "silent" in _one_line_error(mp("apply", str(silent), "--tool", "eq", "-o", str(out)))
    long = save(Audio(sine(seconds=3.0), 48000), tmp_path / "long.wav")
    line = _one_line_error(
        mp("apply", str(long), "--tool", "eq", "-o", str(out), env={"MIXPILOT_MAX_DURATION_S": "2"})
    )
    assert "limit" in line
    assert not out.exists()


def test_bad_arguments_exit_2(tmp_path):
    good = save(Audio(sine(), 48000), tmp_path / "g.wav")
    out = tmp_path / "o.wav"
    assert "unknown tool" in _one_line_error(mp("apply", str(good), "--tool", "nonsense", "-o", str(out)))
    assert "bad parameters" in _one_line_error(
        mp("apply", str(good), "--tool", "eq", "-p", "bright_db=99", "-o", str(out))
    )
    assert "key=value" in _one_line_error(
        mp("apply", str(good), "--tool", "eq", "-p", "oops", "-o", str(out))
    )
    assert ".wav, .flac or .mp3" in _one_line_error(
        mp("apply", str(good), "--tool", "eq", "-o", str(tmp_path / "o.xyz"))
    )
    assert "bit-depth" in _one_line_error(
        mp("apply", str(good), "--tool", "eq", "-o", str(tmp_path / "o.flac"), "--bit-depth", "32")
    )
    assert "does not exist" in _one_line_error(
        mp("apply", str(good), "--tool", "eq", "-o", str(tmp_path / "nodir" / "o.wav"))
    )
    assert not out.exists()
    r = mp("apply", str(good))  # argparse: missing required options
    assert r.returncode == 2


@pytest.mark.parametrize("fmt,depth", [("wav", 16), ("wav", 24), ("wav", 32), ("flac", 24), ("mp3", None)])
def test_apply_writes_requested_format(tmp_path, fmt, depth):
    import soundfile as sf

    src = save(Audio(sine(440, 1.0, 44100, 0.3, 2), 44100), tmp_path / "in.wav")
    out = tmp_path / f"out.{fmt}"
    args = ["apply", str(src), "--tool", "eq", "-p", "bright_db=3", "-o", str(out), "--json", "-q"]
    if depth:
        args += ["--bit-depth", str(depth)]
    r = mp(*args)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["tool"] == "eq" and report["params"]["bright_db"] == 3
    assert out.exists()
    if fmt != "mp3":
        assert sf.info(str(out)).subtype == ("FLOAT" if depth == 32 else f"PCM_{depth}")
