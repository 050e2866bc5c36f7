"""The service's measurements every surface renders: analysis, diagnosis, quality, stems (cached by content id)."""

from __future__ import annotations

import numpy as np
import pytest

from agents.service import Mixpilot
from memory.cache import MemoryCache
from tests.conftest import noise, sine
from tools.analysis import SPEECH_THRESHOLD, analyze, is_speech
from tools.audio import Audio


class CountingCache(MemoryCache):
    def __init__(self) -> None:
        super().__init__()
        self.sets: list[str] = []

    def set(self, key, value, ttl_s=None):
        self.sets.append(key)
        super().set(key, value, ttl_s)


@pytest.fixture
def svc(tmp_path):
    with Mixpilot(data_dir=tmp_path / "data", cache=CountingCache()) as s:
        yield s


@pytest.fixture
def tone() -> Audio:
    sr = 22050
    return Audio(sine(330.0, 3.0, sr, 0.2, 2) + noise(3.0, sr, 0.002, 2, seed=2), sr)


def test_analysis_is_the_tools_analysis_cached_by_content_id_in_the_graphs_entry(svc, tone):
    vid = svc.import_audio(tone)
    first = svc.analysis(vid)
    assert first["integrated_lufs"] == pytest.approx(analyze(tone).integrated_lufs, abs=0.01)
    assert svc.cache.sets == [f"analysis:v1:{vid}"]  # the same key the graph's analyze/evaluate nodes use
    assert svc.analysis(vid) == first and svc.cache.sets == [f"analysis:v1:{vid}"]


def test_diagnosis_is_cached_by_content_id(svc, tone, monkeypatch):
    import tools.diagnose as D

    calls = []

    def fake(audio, analysis=None, *, genre=None):
        calls.append(audio.sample_rate)
        return D.Diagnosis(findings=(D.Finding("loudness", 0.5, "integrated −30.0 LUFS"),), facts={"x": 1})

    monkeypatch.setattr(D, "diagnose", fake, raising=False)
    vid = svc.import_audio(tone)
    got = svc.diagnose(vid)
    assert got["findings"][0]["problem"] == "loudness" and got["facts"] == {"x": 1}
    assert svc.diagnose(vid) == got and calls == [22050]
    assert f"diagnosis:v1:{vid}" in svc.cache.sets
    svc.diagnose(vid, genre="pop")
    assert f"diagnosis:v1:{vid}:pop" in svc.cache.sets and len(calls) == 2


def test_diagnosis_of_a_clean_tone_runs_the_real_detectors(svc, tone):
    got = svc.diagnose(svc.import_audio(tone))
    assert set(got) == {"findings", "facts"}
    assert got["facts"]["integrated_lufs"] == pytest.approx(analyze(tone).integrated_lufs, abs=0.1)


def test_speech_threshold_is_one_number():
    assert is_speech({"speech_probability": SPEECH_THRESHOLD}) and not is_speech({"speech_probability": 0.59})
    assert not is_speech({}) and not is_speech({"speech_probability": None})


def test_quality_against_a_reference_resampled_and_no_dnsmos_for_music(svc, tone):
    vid = svc.import_audio(tone)
    ref = svc.import_audio(tone.resample(16000))
    q = svc.quality(vid, ref, speech=False)
    assert "dnsmos_ovrl" not in q and "pesq_wb" not in q
    assert q["si_sdr"] > 20.0  # the same tone, through a resampler and back
    assert np.isfinite(q["lsd"])
    assert svc.quality(vid, speech=False) == {}


def test_stems_are_stored_versions(svc, tone):
    ok, why = svc.stems_available()
    if not ok:
        pytest.skip(f"separate unavailable: {why}")
    vid = svc.import_audio(tone)
    got = svc.stems(vid, stems=["vocals", "other"])
    assert sorted(got) == ["other", "vocals"]
    for sid in got.values():
        a = svc.audio(sid)
        assert a.sample_rate == tone.sample_rate and a.samples.shape == tone.samples.shape
