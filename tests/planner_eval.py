"""Scoring plans against the expected properties in tests/data/planner_cases.yaml (shared by
tests/test_planner.py and bench/planner.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CASES = Path(__file__).with_name("data") / "planner_cases.yaml"


def load_cases(path: Path = CASES) -> dict[str, Any]:
    import yaml

    return yaml.safe_load(path.read_text())


def _param(plan: Any, key: str) -> Any:
    tool, _, name = key.partition(".")
    step = plan.step(tool)
    if step is None:
        return KeyError(f"no {tool} step")
    if name not in step.params:
        return KeyError(f"{tool} has no {name}")
    return step.params[name]


def _check_value(actual: Any, expected: Any) -> bool:
    if isinstance(actual, KeyError):
        return False
    if isinstance(expected, str):
        e = expected.strip()
        if e.startswith("peak "):  # "peak FREQ GAIN" → an eq band
            _, f, g = e.split()
            return any(
                b.get("type") == "peak"
                and abs(b["freq_hz"] - float(f)) < 1
                and abs(b["gain_db"] - float(g)) < 0.3
                for b in actual or []
            )
        for op in ("<=", ">=", "<", ">"):
            if e.startswith(op):
                v = float(e[len(op) :])
                a = float(actual)
                return {"<=": a <= v, ">=": a >= v, "<": a < v, ">": a > v}[op]
        if ".." in e and e[0] in "-0123456789":
            lo, hi = (float(x) for x in e.split(".."))
            return lo <= float(actual) <= hi
        return str(actual) == e
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        return isinstance(actual, (int, float)) and abs(float(actual) - float(expected)) <= 0.05
    return actual == expected


def check_plan(plan: Any, case: dict[str, Any]) -> list[str]:
    """Problems with ``plan`` for ``case`` (empty list = pass)."""
    problems: list[str] = []
    tools = plan.tools
    if case.get("empty"):
        if plan.steps:
            problems.append(f"expected no steps, got {tools}")
        if not plan.notes:
            problems.append("expected a note")
        return problems
    for t in case.get("must", []):
        if t not in tools:
            problems.append(f"missing {t}")
    for t in case.get("not", []):
        if t in tools:
            problems.append(f"unexpected {t}")
    order = [t for t in case.get("order", []) if t in tools]
    idx = [tools.index(t) for t in order]
    if idx != sorted(idx):
        problems.append(f"order {order} not respected in {tools}")
    for key, exp in (case.get("params") or {}).items():
        act = _param(plan, key)
        if not _check_value(act, exp):
            problems.append(f"{key}={act!r}, expected {exp!r}")
    for tool, tgt in (case.get("target") or {}).items():
        st = plan.step(tool)
        if st is None or st.target != tgt:
            problems.append(f"{tool} target {getattr(st, 'target', None)!r}, expected {tgt!r}")
    return problems
