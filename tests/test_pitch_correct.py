"""pitch_correct: snapping logic, full-mix refusal, and real sung vocals detuned and re-tuned.

The outcome is measured with torchcrepe's ``full`` model on energy-picked frames
(`tools.intonation.measure_pitch`), independently of the correction path, which tracks
pitch with ``tiny`` + Viterbi and resynthesises with WORLD. The detuned material is made
by resampling (tape-speed style), not by WORLD.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from tests.conftest import LOCAL_FIXTURES
from tools.audio import Audio, load
from tools.intonation import (
    allowed_pitch_classes,
    detune_by_resampling,
    deviation_cents,
    measure_pitch,
    nearest_scale_note,
    parse_key,
)

pytest.importorskip("torchcrepe")
if importlib.util.find_spec("pyworld") is None:
    pytest.skip("pyworld not installed", allow_module_level=True)

VOCAL = LOCAL_FIXTURES / "singing-female-3s5.flac"  # CC BY 4.0, see tests/fixtures/LICENSES.md
MEASURE_FRAMES = 24  # CREPE full costs ~0.1–0.2 s a frame on this CPU


@pytest.fixture(scope="module")
def vocal() -> Audio:
    return load(VOCAL)


def mad_cents(samples: np.ndarray, sr: int, frames: int = MEASURE_FRAMES, **kw) -> float:
    f, _ = measure_pitch(samples, sr, model="full", max_frames=frames)
    assert f.size >= frames // 2, "too few voiced frames measured"
    return float(np.median(np.abs(deviation_cents(f, **kw))))


# ---------------------------------------------------------------------------- note logic


@pytest.mark.parametrize("key,pc", [("C", 0), ("F#", 6), ("Bb", 10), ("c#m", 1), ("A minor", 9), ("Eb", 3)])
def test_parse_key(key, pc):
    assert parse_key(key) == pc


def test_bad_key_and_scale_are_refused():
    from tools.pitch_correct import SPEC

    with pytest.raises(ValueError, match="key"):
        SPEC.parse_params({"key": "H"})
    with pytest.raises(ValueError, match="scale"):
        SPEC.parse_params({"scale": "dorian"})


def test_nearest_scale_note():
    c_major = allowed_pitch_classes("C", "major")
    assert list(c_major) == [0, 2, 4, 5, 7, 9, 11]
    # C#4 (61) is not in C major: nearest are C (60) and D (62); 61.2 → D
    assert nearest_scale_note(np.array([61.2, 60.4, 65.6, 70.6]), c_major).tolist() == [62, 60, 65, 71]
    a_minor = allowed_pitch_classes("A", "minor")
    assert sorted(a_minor.tolist()) == [0, 2, 4, 5, 7, 9, 11]  # relative minor of C major
    assert deviation_cents(np.array([440.0 * 2 ** (35 / 1200)]))[0] == pytest.approx(35.0, abs=1e-6)


def _vibrato_midi(
    centre: float, depth_cents: float, seconds: float = 2.0, hop_s: float = 0.02, rate_hz: float = 5.5
):
    t = np.arange(int(seconds / hop_s)) * hop_s
    return centre + depth_cents / 100 * np.sin(2 * np.pi * rate_hz * t)


def test_low_strength_keeps_vibrato_high_strength_flattens():
    from tools.pitch_correct import correction_semitones

    midi = _vibrato_midi(60.35, 30.0)
    voiced = np.ones_like(midi, dtype=bool)
    pcs = allowed_pitch_classes("C", "chromatic")
    for strength, want_centre_cents, want_depth in [(0.3, 35 * 0.7, 30.0), (1.0, 0.0, 0.0)]:
        shift, target = correction_semitones(midi, voiced, pcs, strength, retune_ms=0.0)
        out = midi + shift
        mid = slice(20, -20)  # away from the moving average's edges
        centre_cents = 100 * (np.mean(out[mid]) - 60.0)
        depth = 100 * (np.max(out[mid]) - np.min(out[mid])) / 2
        assert np.all(target == 60.0)
        assert centre_cents == pytest.approx(want_centre_cents, abs=3.0)
        assert depth == pytest.approx(want_depth, abs=4.0)


def test_retune_ms_sets_glide_speed():
    from tools.pitch_correct import correction_semitones

    # a held note at +40 cents over D4 after one at C4 − 30 cents: the target jumps by 2 semitones
    midi = np.concatenate([np.full(50, 59.7), np.full(50, 62.4)])
    voiced = np.ones_like(midi, dtype=bool)
    pcs = allowed_pitch_classes("C", "major")
    fast, _ = correction_semitones(midi, voiced, pcs, 1.0, retune_ms=0.0)
    slow, _ = correction_semitones(midi, voiced, pcs, 1.0, retune_ms=200.0)
    out_fast, out_slow = midi + fast, midi + slow
    # 3 frames (60 ms) after the change: instant retune is on D, a 200 ms glide is still well short
    assert out_fast[53] == pytest.approx(62.0, abs=0.01)
    assert out_slow[53] < 61.0
    assert out_slow[-1] == pytest.approx(62.0, abs=0.02)


def test_scale_snapping_uses_the_key():
    from tools.pitch_correct import correction_semitones

    midi = np.full(60, 61.3)  # C#4 + 30 cents: chromatic → C#, C major → D, Db major → C#
    voiced = np.ones_like(midi, dtype=bool)
    for key, scale, want in [("C", "chromatic", 61.0), ("C", "major", 62.0), ("Db", "major", 61.0)]:
        shift, _ = correction_semitones(midi, voiced, allowed_pitch_classes(key, scale), 1.0, 0.0)
        assert (midi + shift)[30] == pytest.approx(want, abs=0.01), (key, scale)


# ---------------------------------------------------------------------------- on audio


def test_full_mix_is_left_alone_with_a_warning():
    from tools.pitch_correct import SPEC

    mix = load(LOCAL_FIXTURES / "karissa_hobbs_lets_go_fishin_8s.flac")
    mix = mix.with_samples(mix.samples[:, : 4 * mix.sample_rate])
    res = SPEC(mix, {"strength": 1.0})
    assert res.report["changed"] is False and res.report["looks_polyphonic"] is True
    assert any("separate" in w for w in res.warnings)
    assert np.array_equal(res.audio.samples, mix.samples)


def test_plus_35_cents_is_corrected_below_10_cents(vocal):
    from tools.pitch_correct import SPEC

    sr = vocal.sample_rate
    detuned = detune_by_resampling(vocal.samples[0], sr, 35.0)
    before = mad_cents(detuned, sr, frames=16)
    assert before > 25.0, f"detuned clip should be ~35 cents off, measured {before:.1f}"
    audio = Audio(detuned, sr)
    res = SPEC(audio, {"strength": 1.0, "retune_ms": 20})
    assert res.report["changed"] is True and not res.warnings
    assert res.audio.samples.shape == audio.samples.shape
    after = mad_cents(res.audio.samples, sr)
    assert after < 10.0, f"median |deviation| after correction {after:.1f} cents (before {before:.1f})"
    # level and length kept: resynthesis, not a different clip
    rms_in, rms_out = np.sqrt(np.mean(detuned**2)), np.sqrt(np.mean(res.audio.samples**2))
    assert 20 * np.log10(rms_out / rms_in) == pytest.approx(0.0, abs=1.5)


def test_notes_off_by_20_to_45_cents_are_corrected(vocal):
    from tools.pitch_correct import SPEC

    sr = vocal.sample_rate
    rng = np.random.default_rng(7)
    offs = rng.uniform(20, 45, 32) * rng.choice([-1.0, 1.0], 32)  # a new error every 0.3 s

    def cents(t):
        c = offs[(t / 0.3).astype(int)]
        k = int(0.03 * sr)
        return np.convolve(np.pad(c, (k // 2, k - 1 - k // 2), mode="edge"), np.ones(k) / k, mode="valid")

    detuned = detune_by_resampling(vocal.samples[0], sr, cents)
    audio = Audio(np.stack([detuned, detuned]), sr)  # stereo in, stereo out
    res = SPEC(audio, {"strength": 1.0, "retune_ms": 20})
    assert res.audio.channels == 2 and res.audio.frames == audio.frames
    assert res.report["median_abs_deviation_before_cents"] > 15.0
    after = mad_cents(res.audio.samples[0], sr)
    assert after < 10.0, f"median |deviation| after correction {after:.1f} cents"


def test_zero_strength_is_identity_and_input_untouched(vocal):
    from tools.pitch_correct import SPEC

    before = vocal.samples.copy()
    res = SPEC(vocal, {"strength": 0.0})
    assert res.report["changed"] is False
    assert np.array_equal(res.audio.samples, before) and np.array_equal(vocal.samples, before)
