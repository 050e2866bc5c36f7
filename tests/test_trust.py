"""A conversation people can trust: explicit asks beat memory, masters stay mastered, undo means undo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from listening_cases import build_variants


def test_an_explicit_platform_survives_memory() -> None:
    from agents.planner import make_plan

    rec = {
        "master": {"target_lufs": -15.9, "true_peak_dbtp": -2.0},
        "evidence": "you rated Apple Music masters 5",
    }
    plan = make_plan("master it for Spotify", recommendation=rec, use_embedder=False, allow_unavailable=True)
    assert plan.step("master").params["target_lufs"] == -14.0
    assert plan.step("master").params["true_peak_dbtp"] == -1.0
    numbered = make_plan("master to -12 LUFS", recommendation=rec, use_embedder=False, allow_unavailable=True)
    assert numbered.step("master").params["target_lufs"] == -12.0


def test_memory_fills_what_was_left_unsaid_and_says_so() -> None:
    from agents.planner import make_plan

    rec = {"master": {"target_lufs": -12.0}}
    plan = make_plan("master it", recommendation=rec, use_embedder=False, allow_unavailable=True)
    assert plan.step("master").params["target_lufs"] == -12.0
    assert any("your ratings" in n for n in plan.notes)
    off = make_plan(
        "master it, without memory", recommendation=rec, use_embedder=False, allow_unavailable=True
    )
    assert off.step("master").params["target_lufs"] != -12.0
    assert any("without memory" in n for n in off.notes)


@pytest.fixture(scope="module")
def song() -> tuple[np.ndarray, int]:
    return build_variants()["music_clean"]


def test_a_master_stays_mastered_after_a_tone_change(tmp_path: Path, song: tuple[np.ndarray, int]) -> None:
    pytest.importorskip("langgraph")
    from agents.service import Mixpilot
    from tools.audio import Audio

    x, sr = song
    with Mixpilot(data_dir=tmp_path) as svc:
        aid = svc.import_audio(Audio(x, sr))
        loud = svc.turn("master it loud, -11 LUFS", thread_id="m", audio_id=aid)
        mastered = svc.analysis(loud.output_id)["integrated_lufs"]
        assert abs(mastered + 11.0) < 0.3
        for ask in ("a bit brighter", "warmer please"):
            changed = svc.turn(ask, thread_id="m")
            tools = [s["tool"] for s in changed.steps if s["status"] in ("applied", "trimmed")]
            assert tools[-1] == "master" and "eq" in tools
            after = svc.analysis(changed.output_id)
            assert abs(after["integrated_lufs"] + 11.0) <= 0.3 and after["true_peak_dbtp"] <= -0.95


def test_an_undone_step_is_not_reapplied(tmp_path: Path, song: tuple[np.ndarray, int]) -> None:
    pytest.importorskip("langgraph")
    from agents.service import Mixpilot
    from tools.audio import Audio

    x, sr = song
    with Mixpilot(data_dir=tmp_path) as svc:
        aid = svc.import_audio(Audio(x, sr))
        svc.turn("a bit brighter", thread_id="u", audio_id=aid)
        undone = svc.turn("undo", thread_id="u")
        assert undone.output_id == aid
        spotify = svc.turn("louder for Spotify", thread_id="u")
        assert "eq" not in [s["tool"] for s in spotify.steps], spotify.plan
        assert "master" in [s["tool"] for s in spotify.steps]
        svc.turn("undo", thread_id="u")
        nothing = svc.turn("undo", thread_id="u")
        assert "nothing to undo" in nothing.explanation.lower()
