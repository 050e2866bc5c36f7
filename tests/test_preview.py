"""`Mixpilot.preview`: the plan on the loudest 15 s, its master aimed with the whole file's loudness."""

from __future__ import annotations

import numpy as np
import pytest

from agents.service import Mixpilot
from tests.conftest import noise, sine
from tools.audio import Audio
from tools.loudness import integrated_lufs


@pytest.fixture
def svc(tmp_path):
    with Mixpilot(data_dir=tmp_path / "data") as s:
        yield s


def song(sr: int = 22050) -> Audio:
    """40 s: 10 s quiet, 15 s loud (10–25 s), 15 s quiet; a chord over a little noise."""
    x = sum(sine(f, 40.0, sr, 0.1, 2) for f in (220.0, 330.0, 550.0)) + noise(40.0, sr, 0.01, 2, seed=3)
    env = np.full(x.shape[1], 0.2, np.float32)
    env[10 * sr : 25 * sr] = 1.0
    return Audio((x * env).astype(np.float32), sr)


def test_preview_renders_the_loudest_15_s_at_the_whole_files_gain(svc):
    a = song()
    vid = svc.import_audio(a)
    p = svc.preview("master it for spotify", audio_id=vid)
    assert p["seconds"] == pytest.approx(15.0, abs=0.01)
    assert 9.5 <= p["start_s"] <= 10.5
    assert [s["tool"] for s in p["plan"]["steps"]][-1] == "master"
    whole, part = integrated_lufs(a), integrated_lufs(svc.audio(p["source_excerpt_id"]))
    out = integrated_lufs(svc.audio(p["preview_id"]))
    # the excerpt gets the gain that brings the whole file to -14 LUFS (within the limiter's share)
    assert out == pytest.approx(-14.0 + (part - whole), abs=0.5)
    assert p["match_gain_db"] == pytest.approx(part - out, abs=0.01)
