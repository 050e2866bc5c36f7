"""Held-out conversation turns (tests/data/conversation_heldout.yaml), written from the contract and
issue 14 without looking at the planner: questions run nothing and quote numbers, platform verdicts
are right both ways, clean recordings get no repair, suggestions run on a confirming turn, commands
stay commands, off-topic chat is a `none` turn.

Scored with the harness of tests/test_listening.py (`_plan`, `_check`). Prints the accuracy per
category and overall and every failing turn; fails when the overall accuracy drops under FLOOR.
A suggest->confirm pair counts as two turns (the question and the follow-up; the follow-up is given
whatever the question suggested, so a missing suggestion usually fails both)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml
from test_listening import _check, _plan

DATA = Path(__file__).resolve().parent / "data" / "conversation_heldout.yaml"
FLOOR = 0.89  # measured 270/293 = 92.2% on commit 61f3935 (2026-11-30), minus 3 points


def _cases() -> list[dict[str, Any]]:
    return yaml.safe_load(DATA.read_text())


def _score() -> tuple[dict[str, list[int]], list[str]]:
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # category -> [passed, total]
    failures: list[str] = []
    for case in _cases():
        cat, variant = case["cat"], case["audio"]
        try:
            plan = _plan(case["req"], variant)
            problems = _check(plan, case, variant)
        except Exception as exc:  # a crash is a failed turn, not a broken test run
            plan, problems = None, [f"raised {type(exc).__name__}: {exc}"]
        tally[cat][1] += 1
        tally[cat][0] += not problems
        if problems:
            failures.append(f"[{cat}] {variant}: {case['req']!r} -> {'; '.join(problems)}")
        if "then" in case:
            nxt = case["then"]
            tcat = f"{cat}/then"
            try:
                sugg = [s.to_json() for s in plan.suggested_steps] if plan is not None else []
                follow = _plan(nxt["req"], variant, suggestion=sugg)
                tp = _check(follow, nxt, variant)
            except Exception as exc:
                tp = [f"raised {type(exc).__name__}: {exc}"]
            tally[tcat][1] += 1
            tally[tcat][0] += not tp
            if tp:
                failures.append(f"[{tcat}] {variant}: {case['req']!r} then {nxt['req']!r} -> {'; '.join(tp)}")
    return tally, failures


def test_the_heldout_set_is_large_enough() -> None:
    cases = _cases()
    assert len(cases) + sum("then" in c for c in cases) >= 200


def test_heldout_conversation_accuracy() -> None:
    tally, failures = _score()
    passed = sum(p for p, _ in tally.values())
    total = sum(t for _, t in tally.values())
    print("\n\nheld-out conversation accuracy per category:")
    for cat in sorted(tally):
        p, t = tally[cat]
        print(f"  {cat:24s} {p:4d}/{t:<4d} {p / t:6.1%}")
    print(f"  {'OVERALL':24s} {passed:4d}/{total:<4d} {passed / total:6.1%}")
    print(f"\n{len(failures)} failing turns:")
    for f in failures:
        print("  " + f)
    assert passed / total >= FLOOR, f"held-out accuracy {passed / total:.1%} under the floor {FLOOR:.0%}"
