"""tools.loudness against the EBU Tech 3341/3342 and BS.2217 expectations.

Two sources of truth, never the code's own output:
* the test cases of Tech 3341 / 3342 synthesised here from their written description (they run
  everywhere);
* the EBU / BS.2217 files in ../shared/fixtures/loudness/ with the values in its
  EXPECTED_VALUES.txt, parsed from that file (skipped with a message when the folder is absent;
  the files may not be copied into the repo).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from tests.conftest import REPO, noise, shared_fixtures_dir
from tools import dsp
from tools.audio import Audio, load
from tools.loudness import (
    channel_weights,
    integrated_lufs,
    k_weighted_blocks,
    loudness_stats,
    sample_peak_dbfs,
    true_peak_dbtp,
    true_peak_linear,
)


def compiled_loaded() -> None:
    """Load the compiled passes as a warm service has them (skip where numba is not installed)."""
    pytest.importorskip("numba")
    dsp.warm_compiled()
    dsp._WARMING[0].join()


def blocks_by(audio: Audio, compiled: bool):
    """`k_weighted_blocks` by the compiled pass or by scipy (the fallback), checking that it was that one."""
    if compiled:
        compiled_loaded()
        assert dsp.k_chunk_power(audio.samples[:, :0], np.zeros((2, 6)), 1) is not None
    return k_weighted_blocks(audio, compiled=compiled)


# ----------------------------------------------------------------------------- synthetic cases


def tone(
    level_dbfs: float, seconds: float, sr: int, channels: int = 2, freq: float = 1000.0, phase: float = 0.0
) -> np.ndarray:
    """Sine with peak at `level_dbfs` (the way Tech 3341 states its levels), on every channel."""
    t = np.arange(int(round(seconds * sr))) / sr
    x = 10 ** (level_dbfs / 20) * np.sin(2 * np.pi * freq * t + phase)
    return np.repeat(x[None, :], channels, axis=0)


def seq(parts: list[tuple[float, float]], sr: int, channels: int = 2) -> Audio:
    """Concatenate (level_dbfs, seconds) tone segments; level None → silence."""
    return Audio(np.concatenate([tone(lv, s, sr, channels) for lv, s in parts], axis=1), sr)


@pytest.mark.parametrize("sr", [44100, 48000])
@pytest.mark.parametrize("level", [-23.0, -33.0])
def test_tech3341_cases_1_2_stereo_sine_reads_its_level(sr, level):
    st = loudness_stats(seq([(level, 20.0)], sr))
    assert st.integrated_lufs == pytest.approx(level, abs=0.1)
    assert st.max_momentary_lufs == pytest.approx(level, abs=0.1)
    assert st.max_short_term_lufs == pytest.approx(level, abs=0.1)
    assert st.lra_lu < 0.1


@pytest.mark.parametrize("sr", [48000])
def test_tech3341_cases_3_to_5_gating(sr):
    # case 3: -36/-23/-36 dBFS for 10/60/10 s; case 4 adds -72 dBFS at both ends;
    # case 5: -26/-20/-26 for 20/20.1/20 s. All read -23.0 +-0.1 LUFS.
    c3 = seq([(-36, 10), (-23, 60), (-36, 10)], sr)
    c4 = seq([(-72, 10), (-36, 10), (-23, 60), (-36, 10), (-72, 10)], sr)
    c5 = seq([(-26, 20), (-20, 20.1), (-26, 20)], sr)
    for case in (c3, c4, c5):
        assert integrated_lufs(case) == pytest.approx(-23.0, abs=0.1)


@pytest.mark.parametrize(
    "parts, lra",
    [
        ([(-20, 20), (-30, 20)], 10.0),  # Tech 3342 case 1
        ([(-20, 20), (-15, 20)], 5.0),  # case 2
        ([(-40, 20), (-20, 20)], 20.0),  # case 3
        ([(-50, 20), (-35, 20), (-20, 20), (-35, 20), (-50, 20)], 15.0),  # case 4
    ],
)
def test_tech3342_loudness_range_cases_1_to_4(parts, lra):
    assert loudness_stats(seq(parts, 48000)).lra_lu == pytest.approx(lra, abs=1.0)


@pytest.mark.parametrize("sr", [44100, 48000])
def test_true_peak_of_fs4_sine_at_45_degrees_is_3db_over_its_samples(sr):
    # Tech 3341 case 19: samples at +-0.707 of the crest; the true peak is +3.01 dB above them
    x = tone(0.0, 2.0, sr, channels=2, freq=sr / 4, phase=math.pi / 4) * 0.5
    ramp = np.sin(np.linspace(0, np.pi / 2, sr // 10)) ** 2  # fade in/out as the EBU file does: an
    x[:, : ramp.size] *= ramp  # abrupt start would ring (Gibbs) above the steady crest
    x[:, -ramp.size :] *= ramp[::-1]
    a = Audio(x, sr)
    sp = sample_peak_dbfs(a)
    assert sp == pytest.approx(20 * math.log10(0.5 * math.sqrt(0.5)), abs=0.01)
    assert true_peak_dbtp(a) - sp == pytest.approx(3.01, abs=0.05)


@pytest.mark.parametrize("sr", [44100, 48000, 96000])
def test_true_peak_never_below_sample_peak_and_pruning_is_exact(sr):
    rng = np.random.default_rng(5)
    x = noise(6.0, sr, amp=0.1, channels=2, seed=3)
    # sparse loud events in quiet noise, and one near-Nyquist burst whose overshoot is large
    x[:, sr : sr + 200] += 0.6 * rng.standard_normal((2, 200))
    t = np.arange(400) / sr
    x[1, 3 * sr : 3 * sr + 400] += 0.55 * np.sin(2 * np.pi * 0.45 * sr * t + 0.3)
    a = Audio(x, sr)
    fast = true_peak_linear(a)
    slow = true_peak_linear(a, exhaustive=True)
    assert fast == slow
    assert 20 * math.log10(fast) >= sample_peak_dbfs(a) - 1e-6


def test_silence_short_clips_and_absolute_gate():
    sr = 48000
    silent = Audio(np.zeros((2, sr * 2), np.float32), sr)
    st = loudness_stats(silent)
    assert st.integrated_lufs == -math.inf and st.max_momentary_lufs == -math.inf
    assert st.true_peak_dbtp == -math.inf and sample_peak_dbfs(silent) == -math.inf and st.lra_lu == 0.0
    short = Audio(tone(-20, 0.3, sr), sr)  # shorter than one 400 ms block
    st = loudness_stats(short)
    assert st.integrated_lufs == -math.inf and st.max_momentary_lufs == -math.inf
    assert st.true_peak_dbtp == pytest.approx(-20.0, abs=0.1)
    # between 400 ms and 3 s: integrated and momentary exist, short-term does not
    st = loudness_stats(Audio(tone(-23, 1.0, sr), sr))
    assert st.integrated_lufs == pytest.approx(-23.0, abs=0.1) and st.max_short_term_lufs == -math.inf
    # everything under the -70 LUFS absolute gate
    assert integrated_lufs(Audio(tone(-80, 5.0, sr), sr)) == -math.inf


def test_channel_weights_mono_and_surround():
    sr = 48000
    # mono sine at -23 dBFS carries half the power of the stereo case: -26.0 LUFS
    assert integrated_lufs(Audio(tone(-23, 5.0, sr, channels=1), sr)) == pytest.approx(-26.01, abs=0.1)
    # 5.1: LFE ignored; a tone only in a surround channel counts 1.41x (+1.5 dB)
    x = np.zeros((6, sr * 5))
    x[3] = tone(-10, 5.0, sr, channels=1)[0]  # LFE
    assert integrated_lufs(Audio(x, sr)) == -math.inf
    x[3] = 0
    x[4] = tone(-23, 5.0, sr, channels=1)[0]
    assert integrated_lufs(Audio(x, sr)) == pytest.approx(-26.01 + 10 * math.log10(1.41), abs=0.1)
    assert channel_weights(8).tolist() == [1, 1, 1, 0, 1.41, 1.41, 1.41, 1.41]
    with pytest.raises(ValueError):
        channel_weights(9)


# ----------------------------------------------------------------------------- EBU fixture files


def _expand(name: str) -> list[str]:
    m = re.search(r"\{(\d+)\.\.(\d+)\}", name)
    if not m:
        return [name]
    a, b = int(m.group(1)), int(m.group(2))
    return [name[: m.start()] + str(i) + name[m.end() :] for i in range(a, b + 1)]


def parse_expected(text: str) -> dict[str, dict[str, tuple[float, float, float]]]:
    """{file: {metric: (value, tol_minus, tol_plus)}} from EXPECTED_VALUES.txt.

    A line starts with a file name (may contain spaces, may use {a..b} ranges), two or more
    spaces, then the expectation: ``I = v +-t``, ``max short-term S = v``, ``momentary M = v``,
    ``v dBTP``. The 'measured' column (``I=-22.95``, no spaces) is not read.
    """
    out: dict[str, dict[str, tuple[float, float, float]]] = {}
    num = r"([+-]?\d+(?:\.\d+)?)"
    for line in text.splitlines():
        m = re.match(r"^(\S.*?\.wav)\s{2,}(.*)$", line)
        if not m:
            continue
        name, rest = m.group(1), m.group(2)
        tol = re.search(r"\+-\s*(\d+(?:\.\d+)?)", rest)
        t = float(tol.group(1)) if tol else 0.1
        exp: dict[str, tuple[float, float, float]] = {}
        if mm := re.search(num + r"\s*dBTP", rest):
            exp["true_peak_dbtp"] = (float(mm.group(1)), 0.4, 0.2)
        elif mm := re.search(r"\bS = " + num, rest):
            exp["max_short_term_lufs"] = (float(mm.group(1)), t, t)
        elif mm := re.search(r"\bM = " + num, rest):
            exp["max_momentary_lufs"] = (float(mm.group(1)), t, t)
        elif mm := re.search(r"\bI = " + num, rest):
            exp["integrated_lufs"] = (float(mm.group(1)), t, t)
        if exp:
            for n in _expand(name):
                out[n] = exp
    return out


LOUDNESS_DIR = shared_fixtures_dir() / "loudness"
EXPECTED_FILE = LOUDNESS_DIR / "EXPECTED_VALUES.txt"
EXPECTED = parse_expected(EXPECTED_FILE.read_text()) if EXPECTED_FILE.is_file() else {}


def test_expected_values_file_is_parsed():
    if not EXPECTED_FILE.is_file():
        pytest.skip(f"EBU loudness test files not found at {LOUDNESS_DIR} (set MIXPILOT_SHARED_FIXTURES)")
    # 2 + 3 sine files, 20 + 1 + 20 M/S files, 9 true-peak files, 2 gate tests
    assert len(EXPECTED) == 57
    assert EXPECTED["seq-3341-10-7-24bit.wav"] == {"max_short_term_lufs": (-23.0, 0.1, 0.1)}
    assert EXPECTED["1kHz Sine -40 LUFS-16bit.wav"] == {"integrated_lufs": (-40.0, 0.1, 0.1)}
    assert EXPECTED["seq-3341-19-24bit.wav"] == {"true_peak_dbtp": (3.0, 0.4, 0.2)}
    assert EXPECTED["1770-2_Comp_AbsGateTest.wav"] == {"integrated_lufs": (-69.5, 0.1, 0.1)}


@pytest.mark.fixtures
@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "scipy"])
@pytest.mark.parametrize("name", sorted(EXPECTED) or ["(absent)"])
def test_ebu_file_measures_within_tolerance(name, compiled):
    if not EXPECTED:
        pytest.skip(f"EBU loudness test files not found at {LOUDNESS_DIR} (set MIXPILOT_SHARED_FIXTURES)")
    path = LOUDNESS_DIR / name
    if not path.is_file():
        pytest.skip(f"{path} listed in EXPECTED_VALUES.txt but missing")
    audio = load(path)
    st = loudness_stats(audio, blocks_by(audio, compiled))
    for metric, (value, minus, plus) in EXPECTED[name].items():
        got = getattr(st, metric)
        assert value - minus - 1e-9 <= got <= value + plus + 1e-9, (
            f"{name}: {metric} {got:.2f}, expected {value}"
        )


@pytest.mark.fixtures
def test_piano_lra_is_sane():
    path = LOUDNESS_DIR / "piano.wav"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    st = loudness_stats(load(path))
    assert 0.0 < st.lra_lu < 30.0 and math.isfinite(st.integrated_lufs)


# ----------------------------------------------------------------------------- compiled K-weighted power


@pytest.mark.parametrize(
    "sr, channels, seconds",
    [(44100, 2, 2.0), (48000, 1, 1.3), (48000, 6, 0.7), (96000, 2, 0.5), (22050, 3, 0.0004)],
)
def test_compiled_chunk_power_is_scipys(sr, channels, seconds):
    """The compiled pass filters and sums what scipy's sosfilt path does: every chunk (the partial last
    chunk dropped, shorter-than-a-chunk audio empty), any rate and layout, odd lengths."""
    x = noise(seconds, sr, amp=0.2, channels=channels, seed=channels)
    x[:, 1::97] *= 4.0  # transients
    audio = Audio(x, sr)
    fast, ref = blocks_by(audio, True), blocks_by(audio, False)
    assert (fast.chunk, fast.hop) == (ref.chunk, ref.hop)
    assert fast.chunk_power.shape == ref.chunk_power.shape == (audio.frames // ref.chunk,)
    np.testing.assert_allclose(fast.chunk_power, ref.chunk_power, rtol=1e-6)


@pytest.mark.fixtures
@pytest.mark.parametrize("folder", ["loudness", "music", "speech"])
def test_compiled_loudness_is_scipys_on_the_fixtures(shared_fixtures, folder):
    """Integrated loudness, maxima and LRA by the compiled pass within 0.001 LU of scipy's path on every
    recording of the folder (the goal is 0.01)."""
    from tools.loudness import loudness_from_blocks

    paths = sorted(p for p in (shared_fixtures / folder).rglob("*") if p.suffix in (".wav", ".flac"))
    assert paths
    for path in paths:
        audio = load(path)
        fast = loudness_from_blocks(blocks_by(audio, True))
        ref = loudness_from_blocks(blocks_by(audio, False))
        for a, b in zip(fast, ref, strict=True):
            assert a == b or abs(a - b) <= 1e-3, f"{path.name}: {fast} vs {ref}"


def test_a_fresh_process_measures_without_loading_numba():
    """A CLI's first measurement takes the scipy path rather than wait for numba to import and load."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from tools.audio import Audio\n"
        "from tools.loudness import integrated_lufs\n"
        "x = (0.1 * np.random.default_rng(0).standard_normal((2, 96000))).astype(np.float32)\n"
        "v = integrated_lufs(Audio(x, 48000))\n"
        "assert -20 < v < -8, v\n"
        "print('numba' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
