"""The mixpilot graph: analyze → recall → plan → validate → execute → evaluate → respond.

One conversation is one LangGraph thread. The checkpointer keeps the thread's state
(version ids, turns, plans), so follow-ups ("a bit louder", "undo", "go back to the
original") act on the previous turn. Dependencies that are not state (the audio store,
the registry, the memory agent) come in through the run context.

Progress: nodes write custom stream events (``stream_mode="custom"``):
``{"event": "step_started" | "step_progress" | "step_finished" | "stage", ...}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from agents.executor import Executor
from agents.explain import explain
from agents.state import InputState, OutputState, State, Turn
from memory.storage import AudioStore
from tools.analysis import SPEECH_THRESHOLD
from tools.registry import Registry, default_registry

ANALYSIS_TTL_S = 7 * 24 * 3600


@dataclass(kw_only=True)
class Deps:
    """Run context: built once by a surface and passed to every run."""

    store: AudioStore
    registry: Registry = field(default_factory=default_registry)
    memory: Any = None  # MemoryAgent-like: recommend(analysis=..., request=..., user_id=...) -> dict | None
    cache: Any = None
    user_id: str | None = None
    llm: Any = None  # a LangChain chat model, when configured


def _emit(event: dict[str, Any]) -> None:
    try:
        get_stream_writer()(event)
    except Exception:  # outside a streaming run there is no writer
        pass


def _last_process_turn(state: State) -> Turn | None:
    """The last turn that changed the audio and is still in effect: a turn whose result was undone
    is never the base of a follow-up (an undone step is not re-applied unless asked for again)."""
    timeline = set(state.get("timeline") or [])
    for t in reversed(state.get("turns") or []):
        if (
            t.get("kind") in ("process", "adjust")
            and t.get("result_id") in timeline
            and t.get("result_id") != t.get("source_id")
        ):
            return t
    return None


def _master_of(state: State, version_id: str | None) -> dict[str, Any] | None:
    """The master step (params) that produced ``version_id``, if that version is a master."""
    for t in reversed(state.get("turns") or []):
        if t.get("kind") in ("process", "adjust") and t.get("result_id") == version_id:
            ran = {
                o.get("tool") for o in t.get("outcomes") or [] if o.get("status") in ("applied", "trimmed")
            }
            if "master" not in ran:
                return None
            return next(
                (
                    dict(st.get("params") or {})
                    for st in (t.get("plan") or {}).get("steps") or []
                    if st.get("tool") == "master"
                ),
                None,
            )
    return None


def _keep_mastered(plan: Any, state: State) -> Any:
    """A change to a mastered version re-runs its master afterwards with the same target, so that
    "a bit brighter" on a -9 LUFS master is still a -9 LUFS master."""
    from agents.plan import Step

    if plan.kind != "process" or not plan.steps or "master" in plan.tools:
        return plan
    params = _master_of(state, state.get("source_id"))
    if params is None or "target_lufs" not in params:
        return plan
    step = Step(
        tool="master",
        params=params,
        target="mix",
        reason=f"the master stays last: back to {params['target_lufs']:g} LUFS after the change",
    )
    out = plan.model_copy(update={"steps": [*plan.steps, step]})
    out.add_note(f"re-mastered to {params['target_lufs']:g} LUFS after the change, as before")
    return out


def _analysis_of(deps: Deps, version_id: str) -> dict[str, Any]:
    """Analysis of a stored version. Ids are content hashes, so it is cached for good: a turn's
    result, analysed in `evaluate`, is the next turn's source."""
    from agents.measure import analysis_of

    return analysis_of(deps.store, deps.cache, version_id)


# ------------------------------------------------------------------------------ nodes


def analyze_node(state: State, runtime: Runtime[Deps]) -> dict[str, Any]:
    from agents.planner import parse_followup

    deps = runtime.context
    _emit({"event": "stage", "stage": "analyze"})
    timeline = list(state.get("timeline") or [])
    original = state.get("original_id")
    update: dict[str, Any] = {"notes": [], "outcomes": [], "result_id": None, "recommendation": None}
    new_audio = state.get("audio_id")
    if new_audio:
        if not deps.store.exists(new_audio):
            raise KeyError(f"no audio version '{new_audio}'")
        timeline, original = [new_audio], new_audio
    update.update(timeline=timeline, original_id=original, audio_id=None)

    from agents.semantic.questions import read_turn
    from agents.semantic.spelling import correct

    request = correct(state.get("request") or "").text  # as the planner will read it
    # a question or a "yes" is never a follow-up edit ("is it ready for Spotify?" is not "same, for Spotify")
    followup = parse_followup(request) if timeline and read_turn(request) is None else None
    kind = getattr(followup, "kind", None) if followup else None
    if state.get("plan_only") or not timeline:
        update.update(kind="plan_only", source_id=timeline[-1] if timeline else None)
    elif kind == "undo":
        update.update(kind="undo", source_id=timeline[-1])
    elif kind == "reset":
        update.update(kind="reset", source_id=original)
    elif kind in ("adjust", "repeat_with_changes") and (last := _last_process_turn(state)) is not None:
        update.update(kind="adjust", source_id=last.get("source_id"))
    else:
        update.update(kind="process", source_id=timeline[-1])
    if update["source_id"] and update["kind"] in ("process", "adjust", "plan_only"):
        from agents.measure import measurements_of

        # one analysis of the source serves both (the diagnosis is handed it, not re-measuring)
        update["analysis"], update["diagnosis"] = measurements_of(deps.store, deps.cache, update["source_id"])
    else:
        update["analysis"], update["diagnosis"] = {}, None
    return update


def recall_node(state: State, runtime: Runtime[Deps]) -> dict[str, Any]:
    deps = runtime.context
    _emit({"event": "stage", "stage": "recall"})
    if deps.memory is None or not state.get("analysis"):
        return {"recommendation": None}
    try:
        rec = deps.memory.recommend(
            analysis=state["analysis"],
            request=state.get("request", ""),
            user_id=deps.user_id,
            audio_id=state.get("source_id"),
        )
    except Exception as exc:  # memory trouble never fails a turn
        return {"recommendation": None, "notes": [*state.get("notes", []), f"memory unavailable: {exc}"]}
    return {"recommendation": rec}


def plan_node(state: State, runtime: Runtime[Deps]) -> dict[str, Any]:
    from agents.plan import Plan
    from agents.planner import make_plan

    deps = runtime.context
    _emit({"event": "stage", "stage": "plan"})
    previous = None
    if state.get("kind") == "adjust":
        last = _last_process_turn(state)
        previous = Plan.model_validate(last["plan"]) if last else None
    elif (
        state.get("kind") == "plan_only"
    ):  # planning on a thread: follow-ups refine the last plan shown or run
        last_plan = next(
            (
                t["plan"]
                for t in reversed(state.get("turns") or [])
                if t.get("kind") in ("process", "adjust", "plan_only") and (t.get("plan") or {}).get("steps")
            ),
            None,
        )
        previous = Plan.model_validate(last_plan) if last_plan else None
    plan = make_plan(
        state.get("request") or "",
        analysis=state.get("analysis") or None,
        recommendation=state.get("recommendation"),
        previous=previous,
        registry=deps.registry,
        llm=deps.llm,
        diagnosis=state.get("diagnosis"),
        history=list(state.get("turns") or []),
        suggestion=state.get("suggestion") or None,
    )
    if state.get("kind") == "process":
        plan = _keep_mastered(plan, state)
    _emit({"event": "plan", "plan": plan.to_json()})
    return {"plan": plan.to_json()}


def validate_node(state: State, runtime: Runtime[Deps]) -> dict[str, Any]:
    from agents.plan import Plan, validate_plan

    deps = runtime.context
    plan = validate_plan(Plan.model_validate(state["plan"]), deps.registry)
    return {"plan": plan.to_json()}


def execute_node(state: State, runtime: Runtime[Deps]) -> dict[str, Any]:
    from agents.plan import Plan

    deps = runtime.context
    _emit({"event": "stage", "stage": "execute"})
    plan = Plan.model_validate(state["plan"])
    source_id = state.get("source_id")
    if not source_id:
        raise KeyError("no audio to process: attach a recording first")
    audio = deps.store.get(source_id)
    inputs = {name: deps.store.get(vid) for name, vid in (state.get("inputs") or {}).items()}
    is_speech = float((state.get("analysis") or {}).get("speech_probability") or 0.0) >= SPEECH_THRESHOLD
    result = Executor(deps.registry).run(
        audio,
        list(plan.steps),
        inputs=inputs,
        is_speech=is_speech,
        emit=_emit,
        cache=deps.cache,
        analysis=state.get("analysis"),
    )
    result_id = deps.store.put(result.audio)
    return {"result_id": result_id, "outcomes": [o.to_dict() for o in result.outcomes]}


def evaluate_node(state: State, runtime: Runtime[Deps]) -> dict[str, Any]:
    deps = runtime.context
    _emit({"event": "stage", "stage": "evaluate"})
    result_id = state.get("result_id")
    return {"metrics_after": _analysis_of(deps, result_id) if result_id else {}}


def respond_node(state: State, runtime: Runtime[Deps]) -> dict[str, Any]:
    kind = state.get("kind", "process")
    plan = state.get("plan") or {}
    if kind in ("process", "adjust", "plan_only") and plan.get("kind") in ("answer", "clarify", "none"):
        kind = plan["kind"]
    timeline = list(state.get("timeline") or [])
    notes = list(plan.get("notes") or []) + list(state.get("notes") or [])
    result_id = state.get("result_id")
    metrics_after = state.get("metrics_after") or {}
    undone = False
    undone_request = ""
    if kind == "undo":
        if len(timeline) > 1:
            popped = timeline.pop()
            undone = True
            undone_request = next(
                (
                    str(t.get("request") or "")
                    for t in reversed(state.get("turns") or [])
                    if t.get("kind") in ("process", "adjust") and t.get("result_id") == popped
                ),
                "",
            )
        else:
            notes.append("nothing to undo: this is the original recording")
        result_id = timeline[-1]
        metrics_after = _analysis_of(runtime.context, result_id)  # what is current now, not what was undone
    elif kind == "reset":
        timeline = timeline[:1]
        result_id = timeline[0]
        metrics_after = _analysis_of(runtime.context, result_id)
    elif kind in ("answer", "clarify", "none"):
        result_id = timeline[-1] if timeline else None
    elif kind in ("process", "adjust"):
        applied = any(o["status"] in ("applied", "trimmed") for o in state.get("outcomes") or [])
        if applied and result_id:
            timeline.append(result_id)
        else:  # nothing changed: the current version stays current
            result_id = timeline[-1] if timeline else None
    if kind in ("process", "adjust") and metrics_after:
        master = next((st for st in plan.get("steps") or [] if st.get("tool") == "master"), None)
        measured = metrics_after.get("integrated_lufs")
        target = (master or {}).get("params", {}).get("target_lufs")
        if (
            isinstance(measured, (int, float))
            and isinstance(target, (int, float))
            and abs(measured - target) > 0.5
        ):
            notes.append(
                f"missed the {target:g} LUFS target by {abs(measured - target):.1f} LU "
                f"(measured {measured:.1f} LUFS)"
            )
        tp = metrics_after.get("true_peak_dbtp")
        if isinstance(tp, (int, float)) and tp > 0.0:
            notes.append(f"warning: true peak {tp:+.1f} dBTP is over full scale and will clip on playback")
    if kind in ("answer", "clarify", "none"):
        text = str(plan.get("answer") or " ".join(notes) or "Nothing to do.")
    elif kind == "undo" and not undone:
        text = "Nothing to undo: this is the original recording."
    elif kind == "undo":
        what = f" '{undone_request}'" if undone_request else ""
        where = "the original recording" if len(timeline) == 1 else "the version before it"
        text = f"Undone{what}: back to {where}."
    else:
        text = explain(kind, state.get("outcomes") or [], state.get("analysis"), metrics_after, notes)
    # what a confirming next turn ("yes", "do it") runs: an answer's suggestion, or a plan shown but not run
    if kind == "answer" or kind == "clarify":
        suggestion = list(plan.get("suggested_steps") or [])
    elif kind == "plan_only":
        suggestion = list(plan.get("steps") or [])
    else:
        suggestion = []
    turn: Turn = {
        "request": state.get("request", ""),
        "kind": kind,
        "source_id": state.get("source_id") or "",
        "result_id": result_id or "",
        "plan": plan,
        "outcomes": state.get("outcomes") or [],
        "metrics_before": state.get("analysis") or {},
        "metrics_after": metrics_after,
        "explanation": text,
        "answer": plan.get("answer") if kind in ("answer", "clarify", "none") else None,
        "findings": list(plan.get("findings") or []),
        "suggested_steps": list(plan.get("suggested_steps") or []),
        "checks": plan.get("checks"),
    }
    _emit({"event": "done", "result_id": result_id})
    return {
        "timeline": timeline,
        "result_id": result_id,
        "explanation": text,
        "notes": notes,
        "turns": [turn],
        "suggestion": suggestion,
        "metrics_after": metrics_after,
    }


# ------------------------------------------------------------------------------ routing


def after_analyze(state: State) -> Literal["recall", "respond"]:
    return "respond" if state.get("kind") in ("undo", "reset") else "recall"


def after_validate(state: State) -> Literal["execute", "respond"]:
    if state.get("kind") == "plan_only" or not (state.get("plan") or {}).get("steps"):
        return "respond"
    return "execute"


def build_graph(checkpointer: Any = None):
    builder = StateGraph(State, context_schema=Deps, input_schema=InputState, output_schema=OutputState)
    builder.add_node("analyze", analyze_node)
    builder.add_node("recall", recall_node)
    builder.add_node("plan", plan_node)
    builder.add_node("validate", validate_node)
    builder.add_node("execute", execute_node)
    builder.add_node("evaluate", evaluate_node)
    builder.add_node("respond", respond_node)
    builder.add_edge(START, "analyze")
    builder.add_conditional_edges("analyze", after_analyze)
    builder.add_edge("recall", "plan")
    builder.add_edge("plan", "validate")
    builder.add_conditional_edges("validate", after_validate)
    builder.add_edge("execute", "evaluate")
    builder.add_edge("evaluate", "respond")
    builder.add_edge("respond", END)
    return builder.compile(checkpointer=checkpointer, name="mixpilot")
