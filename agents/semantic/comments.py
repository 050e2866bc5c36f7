"""Feedback comments in plain words ("too bright", "a bit quiet"), read with the semantic parser.

A comment is read as the follow-up request it would be in the chat: whatever that follow-up
would change among the settings that were played, and which way. Memory uses the directions as
one-sided constraints on where a listener's taste is (`agents.memory_estimator`).
"""

from __future__ import annotations

import functools
import json
from typing import Any, TypeGuard

from agents import contract


def _numeric(v: Any) -> TypeGuard[float]:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def comment_directions(comment: str | None, params: dict[str, dict[str, Any]]) -> dict[tuple[str, str], int]:
    """What a comment says about the numeric settings played: (tool, param) → +1 / −1.

    "too bright" → the eq's bright_db lower, "a bit quiet" → master target_lufs higher. The
    direction is read from the settings' neutral values (the tools' defaults), so a follow-up
    that sets a value outright ("too wide" → width 0.75) still gives its direction even from a
    narrower setting. Praise or an unreadable comment: {}.
    """
    if not comment or not comment.strip():
        return {}
    played = {
        t: {n: v for n, v in ps.items() if _numeric(v)} for t, ps in params.items() if isinstance(ps, dict)
    }
    played = {t: ps for t, ps in played.items() if ps}
    if not played:
        return {}
    return {(t, n): d for t, n, d in _directions(comment.strip()[:500], json.dumps(played, sort_keys=True))}


@functools.lru_cache(maxsize=1024)
def _directions(comment: str, frozen: str) -> tuple[tuple[str, str, int], ...]:
    from agents.plan import Plan, Step
    from agents.semantic.followup import apply_followup, parse_followup

    played = json.loads(frozen)
    # the words' direction is read on neutral settings (the tools' defaults): a follow-up may set
    # a value outright ("too wide" → width 0.75), which from a narrow 0.5 would read as "wider"
    params = {t: {n: _neutral(t, n, v) for n, v in ps.items()} for t, ps in played.items()}
    try:
        fu = parse_followup(comment)
        if fu is not None and fu.kind in ("adjust", "repeat_with_changes"):
            before = Plan(steps=[Step(tool=t, params=p) for t, p in params.items()])
            after = {st.tool: st.params for st in apply_followup(before, fu).steps}
        else:  # not worded as a change ("wider", "needs warmth"): what the words ask for as a request
            after = asked(comment)
    except Exception:  # a comment we cannot read says nothing
        return ()
    out = []
    for tool, ps in params.items():
        for name, v in ps.items():
            w = after.get(tool, {}).get(name)
            if _numeric(v) and _numeric(w) and abs(float(w) - float(v)) > 1e-9:
                out.append((tool, name, 1 if float(w) > float(v) else -1))
    return tuple(out)


def _neutral(tool: str, name: str, played: Any) -> Any:
    try:
        default = contract.default(tool, name)
    except KeyError:
        return played
    return float(default) if _numeric(default) else played


def asked(text: str) -> dict[str, dict[str, Any]]:
    """The settings a request's vocabulary terms ask for ("wider" → stereo_width width 1.3; "less
    bright" → the term's inverse), merged; repairs and tools without settings add nothing."""
    from agents.semantic.parse import parse

    out: dict[str, dict[str, Any]] = {}
    for clause in parse(text).clauses:
        for m in clause.matches:
            if m.kind != "term":
                continue
            steps = m.obj.inverse if (m.negated or m.modifier == "less") else m.obj.steps
            for tool, ps in steps or ():
                out.setdefault(tool, {}).update(ps)
    return out
