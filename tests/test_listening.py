"""The listening assistant, turn by turn (tests/listening_cases.py): questions run nothing and quote
measured numbers, platform verdicts are right both ways, clean recordings get no repair step,
suggestions run on a confirming turn. Plus the same ground end to end through the service and the CLI."""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from listening_cases import REPAIR_TOOLS, all_cases, build_variants, turns

CASES = all_cases()
REPO = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=1)
def _variants() -> dict[str, tuple[np.ndarray, int]]:
    return build_variants()


@functools.lru_cache(maxsize=16)
def _heard(variant: str) -> tuple[dict[str, Any], dict[str, Any]]:
    from tools.analysis import analyze
    from tools.audio import Audio
    from tools.diagnose import diagnose

    x, sr = _variants()[variant]
    audio = Audio(x, sr)
    analysis = analyze(audio)
    return analysis.to_dict(), diagnose(audio, analysis).to_dict()


def _plan(req: str, variant: str, suggestion: list[dict[str, Any]] | None = None):
    from agents.planner import make_plan

    analysis, diagnosis = _heard(variant)
    return make_plan(req, analysis=analysis, diagnosis=diagnosis, suggestion=suggestion, use_embedder=False)


def _check(plan: Any, case: dict[str, Any], variant: str) -> list[str]:
    out = plan.to_json()
    problems: list[str] = []
    tools = [s["tool"] for s in out["steps"]]
    suggested = [s["tool"] for s in out["suggested_steps"]]
    if out["kind"] != case["kind"]:
        problems.append(f"kind {out['kind']} (expected {case['kind']}): {out['answer'] or out['notes']}")
    if out["kind"] != "process" and not out["answer"]:
        problems.append("no answer")
    if out["kind"] != "process" and tools:
        problems.append(f"{out['kind']} turn with steps {tools}")
    for t in case.get("steps_has", []):
        if t not in tools:
            problems.append(f"no {t} step in {tools}")
    for t in case.get("steps_not", []):
        if (t == "*" and tools) or t in tools:
            problems.append(f"unexpected steps {tools}")
    if case.get("no_repair") and REPAIR_TOOLS.intersection(tools):
        problems.append(f"repair on a recording without that problem: {tools} ({out['findings']})")
    if case.get("suggests") and case["suggests"] not in suggested:
        problems.append(f"suggestion {suggested} lacks {case['suggests']}")
    if case.get("suggests_not") and case["suggests_not"] in suggested:
        problems.append(f"suggested {case['suggests_not']} for a problem that is not there: {out['answer']}")
    if "ready" in case:
        checks = out["checks"] or {}
        if checks.get("ready") is not case["ready"]:
            problems.append(
                f"verdict {checks.get('ready')} (expected {case['ready']}): {checks.get('reasons')}"
            )
    unit = case.get("number")
    text = " ".join([out["answer"] or ""] + out["notes"])
    if unit and not re.search(rf"[-+−]?\d+(?:\.\d+)? ?{re.escape(unit)}", text):
        problems.append(f"answer quotes no number in {unit}: {text}")
    if case.get("quotes_lufs"):  # the number quoted is the measured one (independent meter, pyloudnorm)
        import pyloudnorm as pyln

        x, sr = _variants()[variant]
        ref = pyln.Meter(sr).integrated_loudness(x.T.astype(np.float64))
        said = [float(v) for v in re.findall(r"(-?\d+\.\d) LUFS", out["answer"] or "")]
        if not said or abs(said[0] - ref) > 0.5:
            problems.append(f"quoted {said[:1]} LUFS; pyloudnorm measures {ref:.1f}")
    if case.get("note_has") and case["note_has"] not in " ".join(out["notes"]):
        problems.append(f"no note saying '{case['note_has']}': {out['notes']}")
    return problems


def test_the_set_is_large_enough() -> None:
    assert turns(CASES) >= 150


@pytest.mark.parametrize("case", CASES, ids=[f"{c['audio']}:{c['req']}" for c in CASES])
def test_turn(case: dict[str, Any]) -> None:
    plan = _plan(case["req"], case["audio"])
    problems = _check(plan, case, case["audio"])
    if "then" in case and not problems:
        nxt = case["then"]
        follow = _plan(nxt["req"], case["audio"], suggestion=[s.to_json() for s in plan.suggested_steps])
        problems += [f"then '{nxt['req']}': {p}" for p in _check(follow, nxt, case["audio"])]
    assert not problems, problems


def test_platform_check_against_independent_meter() -> None:
    """The 'ready' fixture really is at -14 LUFS under -1 dBTP (pyloudnorm, 4x oversampled peak), so a
    verdict of ready is right; the hot one really is over."""
    import pyloudnorm as pyln
    from scipy.signal import resample_poly

    for name, ready in (("master_spotify", True), ("master_hot", False)):
        x, sr = _variants()[name]
        lufs = pyln.Meter(sr).integrated_loudness(x.T.astype(np.float64))
        tp = 20 * np.log10(np.max(np.abs(resample_poly(x, 4, 1, axis=-1))))
        assert bool(abs(lufs + 14) <= 1.0 and tp <= -1.0) is ready
        assert _plan("is it ready for Spotify?", name).checks["ready"] is ready


# ----------------------------------------------------------------------------- end to end


def test_service_suggest_then_confirm_runs_the_master(tmp_path: Path) -> None:
    pytest.importorskip("langgraph")
    from agents.service import Mixpilot
    from tools.analysis import analyze
    from tools.audio import Audio

    x, sr = _variants()["master_hot"]
    with Mixpilot(data_dir=tmp_path) as svc:
        aid = svc.import_audio(Audio(x, sr))
        asked = svc.turn("is it ready for Spotify?", thread_id="t", audio_id=aid)
        assert asked.kind == "answer" and asked.steps == [] and asked.checks["ready"] is False
        assert "LUFS" in (asked.answer or "") and asked.suggested_steps[0]["tool"] == "master"
        done = svc.turn("yes", thread_id="t")
        assert done.kind == "process" and [s["tool"] for s in done.steps] == ["master"]
        after = analyze(svc.audio(done.output_id))
        assert abs((after.integrated_lufs or 0.0) + 14.0) < 0.5 and after.true_peak_dbtp <= -0.9
        told = svc.turn("what did you do?", thread_id="t")
        assert told.kind == "answer" and "master" in (told.answer or "") and "LUFS" in (told.answer or "")
        assert "target_lufs" not in (told.answer or "") and "loudness -14 LUFS" in (
            told.answer or ""
        )  # plain words
        back = svc.turn("undo", thread_id="t")
        assert back.output_id == aid
        assert abs(back.metrics_after["integrated_lufs"] - analyze(Audio(x, sr)).integrated_lufs) < 0.1
        again = svc.turn("undo", thread_id="t")
        assert "nothing to undo" in again.explanation.lower()


def _cli(*args: str, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_cli_plan_thread_suggest_then_confirm(tmp_path: Path) -> None:
    pytest.importorskip("langgraph")
    import os

    import soundfile as sf

    x, sr = _variants()["master_hot"]
    song = tmp_path / "hot.wav"
    sf.write(str(song), x.T, sr, subtype="FLOAT")
    env = {**os.environ, "MIXPILOT_DATA_DIR": str(tmp_path / "data"), "MIXPILOT_NO_EMBEDDER": "1"}
    first = _cli(
        "plan", "is it ready for Spotify?", "--audio", str(song), "--thread", "song1", "--json", env=env
    )
    assert first["kind"] == "answer" and first["steps"] == [] and first["checks"]["ready"] is False
    assert first["suggested_steps"][0]["tool"] == "master"
    second = _cli("plan", "ok, fix it", "--thread", "song1", "--json", env=env)
    assert second["kind"] == "process" and [s["tool"] for s in second["steps"]] == ["master"]
    diag = _cli("plan", "how loud is it?", "--audio", str(song), "--json", env=env)
    assert diag["kind"] == "answer" and re.search(r"-?\d+\.\d LUFS", diag["answer"])


@pytest.mark.parametrize(("floor", "want"), [(-50.0, ["denoise", "master"]), (-85.0, ["master"])])
def test_acx_suggests_cleaning_when_mastering_would_lift_the_floor_over_the_limit(floor, want) -> None:
    """A quiet narration at -28 LUFS with a -50 dBFS floor passes no noise finding, but mastering it to ACX's
    -20 LUFS lifts the floor to -42 dBFS: the suggestion cleans first, and says why. A -85 dBFS floor stays
    under -60 dBFS after the same gain: the master alone."""
    from agents.answers import answer_question
    from agents.semantic.questions import read_turn

    facts = {
        "integrated_lufs": -28.0,
        "rms_dbfs": -28.5,
        "sample_peak_dbfs": -10.0,
        "true_peak_dbtp": -9.8,
        "noise_floor_dbfs": floor,
        "content": "speech",
    }
    q = read_turn("is it ready for ACX?")
    plan = answer_question(q, {"facts": facts, "findings": []})
    assert plan.checks["ready"] is False
    assert [s.tool for s in plan.suggested_steps] == want
    assert ("-60" in plan.answer and "noise floor at" in plan.answer) is (floor == -50.0)
