"""The planner the graph calls: request (+ analysis, memory's recommendation, previous plan) → a
validated `Plan`.

- ``make_plan(request, ...)``: the LLM planner when one is configured (falling back to the
  semantic plan on any failure, noted), else the offline semantic planner; follow-ups
  ("a bit more", "same but for Apple Music") change ``previous``; memory's ``recommendation``
  fills params the request leaves open. Every plan goes through `validate_plan`.
- ``parse_followup(request)``: undo | reset | adjust | repeat_with_changes, or None.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from agents.answers import answer_question
from agents.contract import params_model
from agents.explain import PHRASES, VERBS
from agents.plan import Forbidden, Plan, Step, validate_plan
from agents.semantic.followup import FollowUp, apply_followup, parse_followup
from agents.semantic.planner import plan_semantic
from agents.semantic.questions import PURE_YES, Confirmation, Question, read_turn
from tools.eq import TILT

__all__ = ["FollowUp", "Plan", "Step", "make_plan", "parse_followup", "semantic_plan", "llm_configured"]


def _intents(use_embedder: bool) -> Any:
    if not use_embedder or os.environ.get("MIXPILOT_NO_EMBEDDER"):
        return None
    from agents.semantic.intents import default_matcher

    return default_matcher()


def semantic_plan(
    request: str,
    *,
    analysis: Mapping[str, Any] | None = None,
    registry: Any = None,
    allow_unavailable: bool = False,
    use_embedder: bool = True,
) -> Plan:
    """The offline plan for ``request``, validated."""
    plan, forbidden = plan_semantic(request, analysis=analysis, intents=_intents(use_embedder))
    return validate_plan(plan, registry, forbidden=forbidden, allow_unavailable=allow_unavailable)


def llm_configured(settings: Any = None) -> bool:
    model = (
        getattr(settings, "llm_model", None) if settings is not None else os.environ.get("MIXPILOT_LLM_MODEL")
    )
    return bool(model)


def make_plan(request: str, **kw: Any) -> Plan:
    """Plan ``request`` as typed: misspellings and shorthand are read first (`agents.semantic.spelling`;
    the notes say what was read), then `_make_plan` (its docstring has the arguments). A word too far
    from anything to be sure of is asked about (a ``clarify`` turn whose suggestion is the rest of the
    plan) rather than dropped."""
    from agents.semantic.spelling import correct, nearest

    reading = correct(request or "")
    plan = _make_plan(reading.text, **kw)
    notes = [n for n in reading.notes if n not in plan.notes]
    if reading.unsure and plan.kind in ("process", "none", "clarify"):
        guesses = []
        for w in reading.unsure:
            cand, _ = nearest(w)
            guesses.append(f"'{w}'" + (f" (did you mean '{cand}'?)" if cand else ""))
        ask = f"I'm not sure what you mean by {', '.join(guesses)}. Could you say it again in other words?"
        if plan.steps:
            ask += (
                ' Say "yes" to run the rest: '
                + ", ".join(st.tool.replace("_", " ") for st in plan.steps)
                + "."
            )
        return plan.model_copy(
            update={
                "kind": "clarify",
                "answer": ask,
                "steps": [],
                "suggested_steps": list(plan.steps) or list(plan.suggested_steps),
                "notes": notes + list(plan.notes) + [ask],
            }
        )
    if notes:
        plan = plan.model_copy(update={"notes": notes + list(plan.notes)})
    return plan


def _make_plan(
    request: str,
    *,
    analysis: Mapping[str, Any] | None = None,
    recommendation: Mapping[str, Any] | None = None,
    previous: Plan | Mapping[str, Any] | None = None,
    registry: Any = None,
    settings: Any = None,
    llm: Any = None,
    allow_unavailable: bool = False,
    use_embedder: bool = True,
    diagnosis: Mapping[str, Any] | None = None,
    history: Sequence[Mapping[str, Any]] = (),
    suggestion: Sequence[Mapping[str, Any]] | None = None,
) -> Plan:
    """Plan ``request``; see the module docstring. Never raises on odd input: it notes instead.

    ``llm`` is a LangChain chat model (already built); without it, one is built from ``settings``
    (or the ``MIXPILOT_LLM_*`` environment) when a model is configured. ``diagnosis`` is the
    recording's `Diagnosis` dict (questions are answered from it; repairs are planned only for its
    findings), ``history`` the thread's turns, ``suggestion`` the steps the last turn suggested (a
    confirming "yes" / "do it" runs them).
    """
    kw = {"registry": registry, "allow_unavailable": allow_unavailable}
    turn = read_turn(request)
    if isinstance(turn, Confirmation):
        if suggestion:
            steps = [Step.model_validate(s) for s in suggestion]
            names = ", ".join(dict.fromkeys(st.tool.replace("_", " ") for st in steps))
            plan = Plan(steps=steps, notes=[f"running what I suggested: {names}"])
            return finish(validate_plan(plan, **kw), diagnosis)
        if PURE_YES.match(turn.text):
            return finish(
                Plan(
                    kind="none",
                    answer="There is nothing waiting for a yes: ask me about the recording "
                    '("is it ready for Spotify?") or say what you\'d like done.',
                ),
                diagnosis,
            )
    use_llm = llm is not None or llm_configured(settings)
    if isinstance(turn, Question):
        answered = answer_question(turn, diagnosis, history=history)
        if answered.suggested_steps:
            checked = validate_plan(Plan(steps=answered.suggested_steps), **kw)
            answered = answered.model_copy(update={"suggested_steps": checked.steps})
        answered = finish(answered, diagnosis)
        if not use_llm:
            return answered
        return _with_llm(
            request,
            answered,
            Forbidden(),
            analysis=analysis,
            diagnosis=diagnosis,
            history=history,
            registry=registry,
            settings=settings,
            llm=llm,
            allow_unavailable=allow_unavailable,
        )

    if previous is not None and not isinstance(previous, Plan):
        previous = Plan.model_validate(previous)
    if previous is not None:
        fu = parse_followup(request)
        if fu is not None and fu.kind in ("adjust", "repeat_with_changes"):
            return finish(
                validate_plan(
                    apply_followup(previous, fu),
                    registry,
                    forbidden=set(fu.forbid),
                    allow_unavailable=allow_unavailable,
                ),
                diagnosis,
            )
        if fu is not None:  # undo / reset need no plan; the conversation handles them
            return finish(
                Plan(steps=[], notes=[f"{fu.kind}: handled by the conversation, no tools to run"]), diagnosis
            )

    semantic, forbidden = plan_semantic(
        request, analysis=analysis, intents=_intents(use_embedder), diagnosis=diagnosis
    )
    plan = semantic
    if use_llm:
        from agents.llm_planner import plan_with_llm

        plan, forbidden = plan_with_llm(
            request,
            semantic=finish(semantic, diagnosis),
            forbidden=forbidden,
            analysis=analysis,
            diagnosis=diagnosis,
            history=_llm_history(history),
            registry=registry,
            settings=settings,
            llm=llm,
            allow_unavailable=allow_unavailable,
        )
    if recommendation and plan.kind == "process" and WITHOUT_MEMORY.search(request):
        plan.add_note("without memory, as asked: only what you said")
    elif recommendation and plan.kind == "process":
        plan = apply_recommendation(plan, recommendation, request_was_generic=not plan.steps)
    return finish(
        validate_plan(plan, registry, forbidden=forbidden, allow_unavailable=allow_unavailable), diagnosis
    )


def _llm_history(history: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The thread's turns as the LLM planner reads them: ``{request, kind, tools, answer}``, last ten."""
    out = []
    for t in list(history)[-10:]:
        tools = [o.get("tool") for o in t.get("outcomes") or [] if o.get("status") in ("applied", "trimmed")]
        out.append(
            {
                "request": t.get("request", ""),
                "kind": t.get("kind", ""),
                "tools": tools,
                "answer": t.get("answer") or None,
            }
        )
    return out


def _with_llm(
    request: str,
    semantic: Plan,
    forbidden: Forbidden,
    *,
    analysis: Mapping[str, Any] | None,
    diagnosis: Mapping[str, Any] | None,
    history: Sequence[Mapping[str, Any]],
    registry: Any,
    settings: Any,
    llm: Any,
    allow_unavailable: bool,
) -> Plan:
    from agents.llm_planner import plan_with_llm

    plan, forbidden = plan_with_llm(
        request,
        semantic=semantic,
        forbidden=forbidden,
        analysis=analysis,
        diagnosis=diagnosis,
        history=_llm_history(history),
        registry=registry,
        settings=settings,
        llm=llm,
        allow_unavailable=allow_unavailable,
    )
    return finish(
        validate_plan(plan, registry, forbidden=forbidden, allow_unavailable=allow_unavailable), diagnosis
    )


WITHOUT_MEMORY = re.compile(
    r"\b(?:without|no|ignore|skip|forget)(?: my| the| your)? (?:memory|ratings|"
    r"preferences|history|learned settings)\b",
    re.IGNORECASE,
)
_ASK_BACK = ("i am not sure", "did you mean", "could you say", "please say it in other words")


#: a master target at or above this (LUFS) runs master's loud mode (soft clip before the limiter), unless
#: the plan names a mode: at -9 LUFS on dense material it keeps far more of the input than the limiter
#: alone (bench/mastering.py: drum-and-bass loop SI-SDR 5.0 -> 12.4 dB); at streaming levels both are alike
LOUD_MODE_FROM_LUFS = -11.0


def _loud_mode(steps: Sequence[Step], said: set[tuple[str, str]] | None) -> list[Step] | None:
    """The steps with master's mode following its target: ``"loud"`` at a loud target ("loud", club, CD,
    -9 LUFS), the default again below it (a follow-up "quieter" after a loud master), unless it was said."""
    out, changed = [], False
    for st in steps:
        target = st.params.get("target_lufs") if st.tool == "master" else None
        if isinstance(target, (int, float)) and not (said and ("master", "mode") in said):
            params = dict(st.params)
            if target >= LOUD_MODE_FROM_LUFS:
                params["mode"] = "loud"
            elif params.get("mode") == "loud":
                del params["mode"]
            if params != st.params:
                st = st.model_copy(update={"params": params})
                changed = True
        out.append(st)
    return out if changed else None


def finish(plan: Plan, diagnosis: Mapping[str, Any] | None) -> Plan:
    """Settle the turn's kind: a process plan with no steps left is ``clarify`` (mixpilot asks back) or
    ``none`` (nothing to do; the answer says why), and every kind but ``process`` carries an answer.
    The diagnosis findings ride along on every kind."""
    update: dict[str, Any] = {}
    loud = _loud_mode(plan.steps, plan._said)
    if loud is not None:
        update["steps"] = loud
    if diagnosis is not None and not plan.findings:
        update["findings"] = [dict(f) for f in diagnosis.get("findings") or []]
    kind = plan.kind
    if kind == "process" and not plan.steps:
        text = " ".join(plan.notes).lower()
        kind = "clarify" if any(c in text for c in _ASK_BACK) else "none"
        update["kind"] = kind
    if kind != "process":
        update["steps"] = []
        if not plan.answer:
            update["answer"] = " ".join(plan.notes) or "Nothing to do."
        if not plan.notes:
            update["notes"] = [update.get("answer") or plan.answer or ""]
    return plan.model_copy(update=update) if update else plan


# ------------------------------------------------------------------ memory's recommendation


def _rec_steps(rec: Mapping[str, Any]) -> list[Step]:
    if isinstance(rec.get("steps"), list):
        return [Step.model_validate(s) for s in rec["steps"] if isinstance(s, Mapping) and s.get("tool")]
    params = rec.get("params", rec)
    return [
        Step(tool=k, params=dict(v), reason="from similar recordings you rated")
        for k, v in params.items()
        if params_model(k) is not None and isinstance(v, Mapping)
    ]


def _is_open(tool: str, key: str, value: Any) -> bool:
    model = params_model(tool)
    if model is None or key not in model.model_fields:
        return False
    return value == model.model_fields[key].get_default(call_default_factory=True)


def _plain(tool: str, key: str, value: Any) -> str:
    """A setting in plain words ("brighter by 1.8 dB (3-8 kHz)"), for memory's notes."""
    phrase = PHRASES.get(key)
    if phrase is not None and isinstance(value, (int, float, str)):
        try:
            return (
                f"{VERBS.get(tool) or tool}: {phrase(value)}"
                if key in ("amount", "strength")
                else phrase(value)
            )
        except (TypeError, ValueError):
            pass
    return f"{tool.replace('_', ' ')} {key.replace('_', ' ')} {value}"


def _tilts(tool: str, key: str, old: Any, new: Any) -> int:
    """+1 when setting `key` from `old` to `new` makes the tone brighter, −1 darker, 0 otherwise."""
    sign = TILT.get(key, 0) if tool == "eq" else 0
    if not sign or not isinstance(new, (int, float)) or not isinstance(old, (int, float)) or new == old:
        return 0
    return sign if new > old else -sign


def _asked_tilt(step: Step, said: set[tuple[str, str]] | None) -> int:
    """The tonal direction the person asked for in this step ("warmer": −1, "brighter": +1), 0 if none."""
    if said is None:
        return 0
    total = sum(_tilts(step.tool, k, 0.0, v) for k, v in step.params.items() if (step.tool, k) in said)
    return (total > 0) - (total < 0)


def apply_recommendation(plan: Plan, rec: Mapping[str, Any], *, request_was_generic: bool = False) -> Plan:
    """Fill params the request left unsaid from memory. What the person said (a platform, a number, a
    direction word; `Plan._said`) is never replaced; for plans that do not track it (an LLM's), a param
    counts as open when absent or at the tool's default."""
    said = plan._said
    steps = _rec_steps(rec)
    if not steps:
        return plan
    evidence = str(rec.get("evidence") or "").strip()
    why = f" ({evidence})" if evidence else ""
    if request_was_generic and not plan.steps:
        return Plan(
            steps=steps,
            source="memory",
            notes=[n for n in plan.notes if "not sure" not in n]
            + [f"from memory: the settings rated best on similar recordings{why}"],
        )
    by_tool = {s.tool: s for s in steps}
    filled: list[str] = []
    kept: list[str] = []
    new_steps = []
    for s in plan.steps:
        r = by_tool.get(s.tool)
        if r is None:
            new_steps.append(s)
            continue
        params = dict(s.params)
        tilt = _asked_tilt(s, said)
        for k, v in r.params.items():
            if said is not None:
                open_ = (s.tool, k) not in said
            else:
                open_ = k not in params or _is_open(s.tool, k, params[k])
            if open_ and params.get(k) != v:
                if tilt and _tilts(s.tool, k, params.get(k, 0.0), v) == -tilt:
                    kept.append(_plain(s.tool, k, v))  # memory would tilt the tone against the ask
                    continue
                params[k] = v
                filled.append(_plain(s.tool, k, v))
        new_steps.append(s.model_copy(update={"params": params}))
    against = (
        [f"memory did not apply {', '.join(kept)}: your ratings point the other way from what you asked"]
        if kept
        else []
    )
    if not filled:
        if not against:
            return plan
        out = plan.model_copy(update={"notes": [*plan.notes, *against]})
        out._said = said
        return out
    notes = [
        *plan.notes,
        f"from memory (your ratings): {', '.join(filled)}{why or ' (from similar recordings you rated)'}",
        *against,
    ]
    out = Plan(steps=new_steps, source=plan.source, notes=notes)
    out._said = said
    return out
