"""One honest progress fraction for a turn: stages and steps weighted by what they cost, the same number
on the CLI's bar and in the API's job progress."""

from __future__ import annotations

import numpy as np
import pytest

from agents.progress import DEFAULT_COST, EXEC_SPAN, STEP_COST, overall, step_spans
from tools.audio import Audio
from tools.registry import TOOLS


def test_every_tool_has_a_measured_cost() -> None:
    """A new tool without a figure from bench/step_costs.py would weigh as a guess: this fails first."""
    assert set(STEP_COST) == set(TOOLS)
    assert all(c > 0 for c in STEP_COST.values())


def test_step_spans_follow_the_costs() -> None:
    tools = ["eq", "denoise", "master"]
    spans = step_spans(tools)
    assert spans[0][0] == 0.0 and spans[-1][1] == 1.0
    assert all(a[1] == pytest.approx(b[0]) for a, b in zip(spans, spans[1:]))
    total = sum(STEP_COST[t] for t in tools)
    for (lo, hi), t in zip(spans, tools):
        assert hi - lo == pytest.approx(STEP_COST[t] / total)
    assert step_spans(["not_a_tool"]) == [(0.0, 1.0)] and DEFAULT_COST > 0


def _turn_events(seconds: float) -> list[dict]:
    from agents.executor import Executor
    from agents.plan import Step

    rng = np.random.default_rng(3)
    t = np.arange(int(44100 * seconds)) / 44100
    x = 0.3 * np.sin(2 * np.pi * 220 * t) * (
        1 + 0.5 * np.sin(2 * np.pi * 0.5 * t)
    ) + 0.02 * rng.standard_normal(t.size)
    audio = Audio(np.vstack([x, x]).astype(np.float32), 44100)
    events: list[dict] = []
    steps = [
        Step(tool="eq", params={"bright_db": 2.0}),
        Step(tool="denoise", params={"method": "deepfilternet"}),
        Step(tool="master"),
    ]
    res = Executor().run(audio, steps, emit=events.append)
    # every step ran (the quality gate may still roll the denoise of a synthetic tone back)
    assert all(o.status != "skipped" for o in res.outcomes), res.outcomes
    return events


def test_a_turn_fills_the_bar_by_cost_and_the_cli_and_jobs_agree() -> None:
    """Through the executor: each step fills its cost's share of the bar (denoise, the slow one, far more
    than the EQ), the fraction never goes back, and the CLI's bar shows the number the job row gets."""
    from app.commands.process import progress_printer
    from app.jobs.executor import progress_of

    events = _turn_events(12.0)
    job, seen = 0.0, []
    for e in events:
        job = progress_of(e, job)
        seen.append((e, job))
    fractions = [f for _, f in seen]
    assert all(b >= a for a, b in zip(fractions, fractions[1:]))
    lo, hi = EXEC_SPAN
    assert fractions[-1] == pytest.approx(hi)

    def share(tool: str) -> float:
        at = [f for e, f in seen if e.get("tool") == tool]
        start = next(f for e, f in seen if e.get("tool") == tool and e["event"] == "step_started")
        return (max(at) - start) / (hi - lo)

    total = sum(STEP_COST[t] for t in ("eq", "denoise", "master"))
    for tool in ("eq", "denoise", "master"):
        assert share(tool) == pytest.approx(STEP_COST[tool] / total, abs=1e-3), tool
    # the slow step reports in between: the bar moves inside it, not only at its ends
    inside = [f for e, f in seen if e.get("tool") == "denoise" and e["event"] == "step_progress"]
    assert len(set(inside)) >= 2, inside

    bar: list[float] = []
    printer = progress_printer(lambda f, m: bar.append(f))
    for e in events:
        printer(e)
    steps_only = [f for e, f in seen if e["event"] in ("step_started", "step_progress", "step_finished")]
    assert bar == steps_only


def test_stages_and_done_never_move_the_bar_back() -> None:
    at = 0.0
    for e in (
        {"event": "stage", "stage": "analyze"},
        {"event": "stage", "stage": "plan"},
        {"event": "step_started", "index": 0, "total": 1, "tool": "eq", "span": (0.0, 1.0)},
        {"event": "step_finished", "index": 0, "total": 1, "tool": "eq", "span": (0.0, 1.0)},
        {"event": "stage", "stage": "plan"},  # a late or repeated event
        {"event": "stage", "stage": "evaluate"},
        {"event": "done"},
    ):
        new = overall(e, at)
        assert new >= at
        at = new
    assert at == pytest.approx(0.98)
