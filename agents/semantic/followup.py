"""Follow-up requests in a conversation: "undo", "go back to the original", "a bit more",
"less compression", "louder", "same as before but for Apple Music".

`parse_followup` says what kind of follow-up a request is (or None for a fresh request) and
the changes it asks for; `apply_followup` turns the previous plan into the new one. The graph
handles undo/reset itself (they need no plan) and calls the planner with ``previous`` for the rest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field

from agents.contract import PerTool, clamp, default
from agents.plan import Plan, Step
from agents.semantic import vocabulary as V
from agents.semantic.parse import normalize, parse

UNDO = re.compile(
    r"^(?:please |ok,? |hmm,? |no,? |nah,? )?(?:undo|revert|take (?:that|it) back|go back(?: one step| a step| once)?"
    r"(?! to)|step back|back one step|previous (?:version|one)|ctrl[- ]?z|cmd[- ]?z|cancel (?:that|the last)|"
    r"scrap that|roll ?back|i (?:liked|preferred) (?:it|the (?:last|previous) one) (?:better )?before|"
    r"that was better before|put it back|reverse (?:that|the last))\b"
)
#: "undo the reverb", "revert the eq": one step of the last plan, not the whole turn
UNDO_ONE = re.compile(
    r"^(?:please |ok,? |hmm,? |no,? |nah,? )?(?:undo|revert|take back|roll back) (?:the |that |your )?(?P<what>.+?)"
    r"(?: (?:step|change|part))?(?: please)?$"
)
#: "double the reverb", "halve the delay": a factor said as a word
FACTOR_WORDS = [
    (re.compile(r"\b(?:double|twice (?:as much|the))\b"), 2.0),
    (re.compile(r"\b(?:halve|half)\b"), 0.5),
]
RESET = re.compile(
    r"\b(?:(?:back|return|revert|go) to (?:the )?(?:original|start|beginning|raw|unprocessed|first version|source)|"
    r"start (?:over|again|from scratch)|from scratch|reset|(?:remove|undo|drop|scrap) (?:everything|all (?:of )?"
    r"(?:it|that|the changes|changes)|all effects)|the original (?:version|file|recording|audio)|clean slate|"
    r"as it was (?:at first|originally)|unprocessed version|square one|(?:bring|give me|put) (?:back )?the original(?: back)?|"
    r"restore the original|original back)\b"
)
REPEAT = re.compile(
    r"\b(?:same (?:as )?(?:before|last time|that|the last(?: one)?)|same (?:thing|chain|settings|again|processing|"
    r"plan)|do (?:that|it|the same|this) again|(?:the )?same (?:but|for|with)|like (?:before|last time)|again,? but|"
    r"now (?:for|do)|this time (?:for|with)|instead|also (?:for|do)|another version|^again\b|one more time|"
    r"(?:do|run|apply) (?:it|that|this) again|repeat (?:that|it|the last))"
)
RELATIVE = re.compile(
    r"\b(?:more|less|louder|quieter|softer|too|stronger|weaker|subtler|gentler|further|harder|back off|"
    r"tone (?:it |that )?down|dial (?:it |that )?(?:back|down|up)|turn (?:it |that |the \w+ )?(?:up|down)|bump|push|"
    r"pull (?:it |that )?back|increase|decrease|reduce|not enough|remove the|even|still|take (?:out|off) the|drop the|"
    r"get rid of the|lose the|ditch the|kill the|no more|without the|keep (?:everything|the rest)|go (?:further|harder|"
    r"easier))\b"
)
REMOVE = re.compile(
    r"\b(?:remove|no|without|drop|get rid of|take (?:out|off)|turn off|kill|lose|ditch|skip|no more)\b"
)
INSTEAD = re.compile(r"\b(?:instead|rather)\b")
BY_DB = re.compile(r"([+-]?\d+(?:\.\d+)?)\s*(?:db|lu|lufs)\b")

LEVEL_SCALE_UP = {"touch": 1.1, "bit": 1.2, "gentle": 1.15, "lot": 1.6, "max": 1.9}
LEVEL_SCALE_DOWN = {"touch": 0.9, "bit": 0.8, "gentle": 0.85, "lot": 0.45, "max": 0.3}
#: tool → (param, neutral value) pairs a "more"/"less" follow-up scales: its amount key, then ``SPEC.scales``
SCALES: Mapping[str, tuple[tuple[str, float], ...]] = PerTool(
    lambda spec: (((spec.amount_key, 0.0),) if spec.amount_key else ()) + spec.scales or None
)


class FollowUp(BaseModel):
    """A follow-up's kind and the changes it asks of the previous plan.

    - ``scale``: tool (or ``"*"`` for every non-master step) → factor for its amounts and EQ gains
    - ``deltas``: tool → param → value added (e.g. ``{"master": {"target_lufs": 1.0}}``)
    - ``set``: tool → params set outright (e.g. a new platform's master params)
    - ``remove``: tools to drop; ``add``: new steps (merged into the previous plan)
    - ``instead``: "warmer instead": an added step replaces the same tool's settings instead of adding to them
    """

    kind: Literal["undo", "reset", "adjust", "repeat_with_changes"]
    text: str = ""
    scale: dict[str, float] = Field(default_factory=dict)
    deltas: dict[str, dict[str, float]] = Field(default_factory=dict)
    set: dict[str, dict[str, Any]] = Field(default_factory=dict)
    remove: list[str] = Field(default_factory=list)
    add: list[Step] = Field(default_factory=list)
    instead: bool = False
    #: tool → the reason its step now has (a new platform's master says that platform's figures)
    reasons: dict[str, str] = Field(default_factory=dict)
    forbid: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


def parse_followup(request: str) -> FollowUp | None:
    """The follow-up a request is, or None when it reads as a fresh request."""
    text = normalize(request)
    if not text:
        return None
    if RESET.search(text):
        return FollowUp(kind="reset", text=text)
    undo_one = UNDO_ONE.match(text)
    if undo_one:  # "undo the reverb": that step out of the last plan, the rest kept
        named = [m for c in parse(undo_one.group("what")).clauses for m in c.matches if m.kind == "term"]
        tools = [t for m in named for t, _ in (m.obj.steps or m.obj.inverse or ())]
        if tools:
            return FollowUp(kind="adjust", text=text, remove=list(dict.fromkeys(tools)))
    if UNDO.search(text):
        return FollowUp(kind="undo", text=text)
    repeat = bool(REPEAT.search(text))
    factor = next((f for rx, f in FACTOR_WORDS if rx.search(text)), None)
    relative = bool(RELATIVE.search(text)) or factor is not None
    parsed = parse(text)
    matches = [m for c in parsed.clauses for m in c.matches]
    action_terms = [m for m in matches if m.kind == "term"]
    # a bare platform or genre after a turn ("for Apple Music", "now in a rock style") repeats with changes
    bare_target = bool(matches) and not action_terms and len(text.split()) <= 6 and not parsed.repair
    # "no reverb", "drop the delay" after a turn: take that step out
    negated_only = bool(action_terms) and all(m.negated and m.obj.kind != "problem" for m in action_terms)
    relative = relative or negated_only
    if not (repeat or relative or bare_target):
        return None
    # "remove the hiss" is a fresh request; "remove the reverb" (an effect we may have added) is not
    if (
        relative
        and not repeat
        and action_terms
        and all(m.obj.kind == "problem" for m in action_terms)
        and not re.search(r"\b(?:more|less|too|louder|quieter|stronger|weaker|again)\b", text)
    ):
        return None
    if (parsed.repair or parsed.improve) and not repeat:
        return None
    fu = FollowUp(
        kind="repeat_with_changes" if repeat or bare_target else "adjust",
        text=text,
        instead=INSTEAD.search(text) is not None,
    )
    level = next((c.level for c in parsed.clauses if c.level), None)

    # louder / quieter: move the master target
    loud = re.search(
        r"\b(?:louder|turn (?:it |this )?up|more volume|hotter|volume up|more level|more loud)\b", text
    )
    quiet = re.search(
        r"\b(?:quieter|softer|turn (?:it |this )?down|less loud|too loud|volume down|less volume)\b", text
    )
    if loud or quiet:
        by = BY_DB.search(text)
        step = abs(float(by.group(1))) if by else V.LOUDNESS_STEP_DB.get(level or "", V.LOUDNESS_STEP_DB[""])
        fu.deltas.setdefault("master", {})["target_lufs"] = step if loud else -step

    # per-term changes
    for clause in parsed.clauses:
        for m in clause.matches:
            if m.kind == "platform":
                _, platform, lufs, tp, _ = m.obj
                params: dict[str, Any] = {"target_lufs": lufs, "true_peak_dbtp": tp}
                if platform:
                    params["platform"] = platform
                fu.set["master"] = params
                from agents.semantic.planner import platform_reason

                master_reason = next(t.reason for t in V.TERMS if t.key == "master_tool")
                fu.reasons["master"] = f"{master_reason}; {platform_reason(m.obj, m.text)}"
                fu.deltas.pop("master", None) if not (loud or quiet) else None
                continue
            if m.kind == "genre":
                fu.set["genre_preset"] = {"genre": m.obj}
                continue
            term: V.Term = m.obj
            if term.key in ("louder", "quieter", "max_loud") and (loud or quiet):
                continue
            tools = [t for t, _ in term.steps] or [t for t, _ in (term.inverse or ())]
            lvl = clause.level or level
            if factor is not None and term.kind in ("tool", "effect") and not m.negated:
                for t in tools:  # "double the reverb", "halve the delay"
                    fu.scale[t] = factor
                continue
            before = clause.text[: max(0, m.start - clause.start)]
            removing = m.negated or (m.modifier == "less" and REMOVE.search(before[-24:]) is not None)
            if removing and term.kind != "problem":
                fu.remove.extend(t for t in tools if t not in fu.remove)
                continue
            if m.modifier == "less" and term.kind != "problem" and term.key not in ("darker",):
                if term.kind == "tool" or term.key in (
                    "reverb",
                    "delay",
                    "punch",
                    "glue",
                    "saturation",
                    "louder",
                ):
                    for t in tools:
                        fu.scale[t] = LEVEL_SCALE_DOWN.get(lvl or "", 0.6)
                    continue
                for tool, params in term.inverse or ():
                    fu.add.append(
                        Step(tool=tool, params=_gentle(tool, params, lvl), reason=f"follow-up: {m.text}")
                    )
                continue
            if m.modifier == "more" and term.kind in ("tool", "effect") and not term.key.startswith("eq"):
                for t in tools:
                    fu.scale[t] = LEVEL_SCALE_UP.get(lvl or "", 1.4)
                # also add, in case the previous plan did not have it
            for tool, params in term.steps:
                fu.add.append(
                    Step(tool=tool, params=_gentle(tool, params, lvl), reason=f"follow-up: {m.text}")
                )

    # "a bit more" / "less" / "too much" with no object: everything (but the master target) scales
    if not matches and not fu.deltas:
        if re.search(
            r"\b(?:less|too much|weaker|subtler|gentler|back off|tone (?:it |that )?down|dial (?:it |that )?"
            r"(?:back|down)|pull (?:it |that )?back|overdone|too strong|easier)\b",
            text,
        ):
            fu.scale["*"] = LEVEL_SCALE_DOWN.get(level or "", 0.7)
        elif re.search(r"\b(?:more|stronger|further|harder|not enough|push|go (?:further|harder))\b", text):
            fu.scale["*"] = LEVEL_SCALE_UP.get(level or "", 1.3)
    if fu.kind == "adjust" and not (fu.scale or fu.deltas or fu.set or fu.remove or fu.add):
        return None
    return fu


def _gentle(tool: str, params: dict[str, Any], level: str | None) -> dict[str, Any]:
    """A follow-up nudge is half a fresh request's EQ move (then scaled by its own intensity word);
    a new tool gets its usual amount."""
    from agents.semantic.planner import scaled

    p = {k: (v * 0.5 if k.endswith("_db") and isinstance(v, (int, float)) else v) for k, v in params.items()}
    return scaled(tool, p, level)


def _scale_params(tool: str, params: dict[str, Any], factor: float) -> dict[str, Any]:
    """What "more" / "less" moves (the tool's ``SPEC.amount_key`` and ``SPEC.scales``), scaled around each
    param's neutral value and kept inside the tool's bounds. A param the step leaves out is scaled from the
    tool's default when that default is not neutral (an absent amount is the tool's usual amount)."""
    p = dict(params)
    for key, neutral in SCALES.get(tool, ()):
        base = default(tool, key)
        if key not in p and base == neutral:
            continue
        value = neutral + (float(p.get(key, base)) - neutral) * factor
        p[key] = round(clamp(tool, key, value), 2 if key.endswith("_db") else 3)
    return p


def apply_followup(previous: Plan, fu: FollowUp) -> Plan:
    """The previous plan changed as the follow-up asks (not yet validated)."""
    from agents.semantic.planner import EQ_DB

    steps = [s.model_copy(deep=True) for s in previous.steps]
    notes: list[str] = []
    if fu.remove:
        kept = [s for s in steps if s.tool not in fu.remove]
        gone = sorted({s.tool for s in steps} - {s.tool for s in kept})
        notes.append(
            f"removed {', '.join(gone)}" if gone else f"there was no {', '.join(fu.remove)} to remove"
        )
        steps = kept
    moved: set[str] = set()  # tools whose settings scaling changed ("more width" at width 1.0 does not)
    for s in steps:
        factor = fu.scale.get(s.tool) or (fu.scale.get("*") if s.tool != "master" else None)
        if factor:
            scaled_params = _scale_params(s.tool, s.params, factor)
            if scaled_params != s.params:
                moved.add(s.tool)
            s.params = scaled_params
        if s.tool in fu.set:
            s.params = {**s.params, **fu.set[s.tool]}
            s.reason = fu.reasons.get(s.tool, s.reason)
        for k, dv in fu.deltas.get(s.tool, {}).items():
            base = float(s.params.get(k, default("master", k) if k == "target_lufs" else 0.0))
            s.params[k] = round(base + dv, 2)
    have = {s.tool for s in steps}
    for tool, params in fu.set.items():
        if tool not in have:
            steps.append(Step(tool=tool, params=dict(params), reason=fu.reasons.get(tool, "follow-up")))
            have.add(tool)
    if "master" in fu.deltas and "master" not in have:
        target = default("master", "target_lufs") + fu.deltas["master"].get("target_lufs", 0.0)
        steps.append(
            Step(
                tool="master",
                params={"target_lufs": target, "true_peak_dbtp": default("master", "true_peak_dbtp")},
                reason="follow-up: loudness",
            )
        )
        have.add("master")
    for new in fu.add:
        same = next((s for s in steps if s.tool == new.tool), None)
        if same is None:
            steps.append(new)
            continue
        if new.tool in moved:
            continue  # already scaled; a setting at its neutral value (nothing to scale) gets the step instead
        merged = dict(same.params)
        if fu.instead:  # "less bright" then "warmer instead": the tonal move is replaced, not added to
            merged = {k: v for k, v in merged.items() if k not in EQ_DB} if new.tool == "eq" else {}
            same.reason = new.reason
        for k, v in new.params.items():
            if k in EQ_DB and isinstance(v, (int, float)):
                merged[k] = round(clamp("eq", k, float(merged.get(k, 0.0)) + v), 2)
            else:
                merged[k] = v
        same.params = merged
    what = {"adjust": "adjusted the last plan", "repeat_with_changes": "the last plan again, with changes"}
    notes.insert(0, f"{what.get(fu.kind, fu.kind)}: '{fu.text}'")
    return Plan(
        steps=steps,
        source=previous.source if previous.source != "llm" else "semantic",
        notes=notes + list(fu.notes),
    )
