"""`Plan` and `Step` (ARCHITECTURE.md) and the one validator every plan passes.

A plan is an ordered list of steps, each naming a canonical tool, its params (the names of the
tool's own ``Params`` model), the target it acts on and a reason in plain words, plus where the
plan came from (``semantic``, ``llm``, ``memory``) and notes for the person.

`validate_plan` makes any plan — the semantic planner's, an LLM's, a remembered one — safe
to run: known tools only, params parsed and clamped to bounds (noted), canonical chain order
by `Stage` (master last), nothing the user forbade, no unavailable tool (its fallback used
and noted), duplicates merged. It never raises on bad content; it repairs and notes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from agents.contract import PerTool, default, field_bounds, params_model
from tools.registry import CANONICAL, Stage

TARGETS = ("mix", "vocals", "speech", "drums", "bass", "other", "music")
STEMS = ("vocals", "drums", "bass", "other")
#: tools that act on one voice (``SPEC.voice``): "don't touch the vocals" rules them out
VOICE_TOOLS: Mapping[str, bool] = PerTool(lambda spec: spec.voice or None)
#: voice tools that only make sense on one voice (no "mix" in ``SPEC.applies_to``); never aimed at a whole
#: music mix by the validator
VOICE_ONLY: Mapping[str, bool] = PerTool(lambda spec: (spec.voice and "mix" not in spec.applies_to) or None)
#: tools that always act on the whole programme (``SPEC.whole_mix``)
WHOLE_MIX: Mapping[str, bool] = PerTool(lambda spec: spec.whole_mix or None)


class Step(BaseModel):
    """One tool run: canonical ``tool``, its ``params``, the ``target`` it acts on, and why."""

    model_config = ConfigDict(extra="ignore")

    tool: str
    params: dict[str, Any] = Field(default_factory=dict)
    target: str = "mix"
    reason: str = ""

    @field_validator("params", mode="before")
    @classmethod
    def _params_dict(cls, v: Any) -> Any:
        if v is None:
            return {}
        if isinstance(v, BaseModel):
            return v.model_dump(mode="json", exclude_unset=True)
        return v

    def to_json(self) -> dict[str, Any]:
        return {"tool": self.tool, "params": dict(self.params), "target": self.target, "reason": self.reason}


TurnKind = Literal["process", "answer", "clarify", "none"]


class Plan(BaseModel):
    """The `mixpilot plan --json` object (ARCHITECTURE.md): what kind of turn this is, the steps that
    run now (only for ``process``), an ``answer`` (for every other kind), the diagnosis ``findings``,
    ``suggested_steps`` a confirming next turn runs, platform ``checks``, the plan's source and notes."""

    model_config = ConfigDict(extra="ignore")

    kind: TurnKind = "process"
    steps: list[Step] = Field(default_factory=list)
    answer: str | None = None
    findings: list[dict[str, Any]] = Field(default_factory=list)
    suggested_steps: list[Step] = Field(default_factory=list)
    checks: dict[str, Any] | None = None
    source: Literal["semantic", "llm", "memory"] = "semantic"
    notes: list[str] = Field(default_factory=list)
    #: ("tool", "param") pairs the person said (a platform, a number, a direction word): memory never
    #: replaces them. None = not tracked (an LLM's or a remembered plan): then "open" means "at the default"
    _said: set[tuple[str, str]] | None = PrivateAttr(default=None)

    def to_json(self) -> dict[str, Any]:
        """Exactly the contract object of ARCHITECTURE.md."""
        return {
            "kind": self.kind,
            "steps": [s.to_json() for s in self.steps],
            "answer": self.answer,
            "findings": [
                {"problem": f.get("problem"), "severity": f.get("severity"), "evidence": f.get("evidence")}
                for f in self.findings
            ],
            "suggested_steps": [s.to_json() for s in self.suggested_steps],
            "checks": self.checks,
            "source": self.source,
            "notes": list(self.notes),
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), allow_nan=False)

    @property
    def tools(self) -> list[str]:
        return [s.tool for s in self.steps]

    def step(self, tool: str) -> Step | None:
        return next((s for s in self.steps if s.tool == tool), None)

    def add_note(self, note: str) -> None:
        if note and note not in self.notes:
            self.notes.append(note)


@dataclass
class Forbidden:
    """What the user ruled out: whole tools ("no reverb") and targets ("don't touch the vocals")."""

    tools: set[str] = field(default_factory=set)
    targets: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, value: Forbidden | Mapping[str, Iterable[str]] | Iterable[str] | None) -> Forbidden:
        if value is None:
            return cls()
        if isinstance(value, Forbidden):
            return value
        if isinstance(value, Mapping):
            return cls(set(value.get("tools", ())), set(value.get("targets", ())))
        return cls(set(value), set())

    def blocks(self, step: Step) -> str | None:
        if step.tool in self.tools:
            return f"left out {step.tool}: you asked for no {step.tool.replace('_', ' ')}"
        if step.target in self.targets:
            return f"left out {step.tool} on the {step.target}: you asked not to touch the {step.target}"
        if "vocals" in self.targets and step.tool in VOICE_TOOLS:
            return f"left out {step.tool}: you asked not to touch the vocals"
        return None

    def __bool__(self) -> bool:
        return bool(self.tools or self.targets)


# ------------------------------------------------------------------ fallbacks for unavailable tools


def _bwe_to_eq(p: Mapping[str, Any]) -> dict[str, Any]:
    a = float(p.get("amount") or default("bandwidth_extension", "amount"))
    return {"air_db": round(2.0 + 4.0 * a, 1), "bright_db": round(1.0 + 2.0 * a, 1)}


def _dyn_to_eq(p: Mapping[str, Any]) -> dict[str, Any]:
    a = float(p.get("amount") or default("dynamic_eq", "amount"))
    cut = -round(1.5 + 3.0 * a, 1)
    target = str(p.get("target", default("dynamic_eq", "target")))
    key = {"mud": "mud_db", "boom": "boom_db"}.get(target, "presence_db")
    return {key: cut}


def _restore_to_denoise(p: Mapping[str, Any]) -> dict[str, Any]:
    return {"strength": float(p.get("strength") or default("denoise", "strength"))}


def _vocoder_to_eq(p: Mapping[str, Any]) -> dict[str, Any]:
    return {"presence_db": 2.0, "air_db": 1.5}


#: unavailable tool → (fallback tool, param translation, what the fallback does)
FALLBACKS: dict[str, tuple[str, Callable[[Mapping[str, Any]], dict[str, Any]], str]] = {
    "restore": ("denoise", _restore_to_denoise, "noise reduction"),
    "bandwidth_extension": ("eq", _bwe_to_eq, "an air/brightness EQ boost"),
    "dynamic_eq": ("eq", _dyn_to_eq, "a static EQ cut in the same band"),
    "vocoder_enhance": ("eq", _vocoder_to_eq, "a presence EQ lift"),
}


# ------------------------------------------------------------------ params: parse and clamp


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def coerce_params(
    tool: str, model: type[BaseModel] | None, params: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """Parse ``params`` with ``model``: clamp out-of-range numbers, drop unknown or invalid keys.

    Returns the params that were given (as parsed, JSON-able) and notes on what changed.
    """
    notes: list[str] = []
    given = dict(params or {})
    if model is None:
        return given, notes
    for key in list(given):
        if key not in model.model_fields:
            notes.append(f"{tool}: dropped unknown parameter '{key}'")
            del given[key]
    # LUFS targets said as positive numbers ("14 LUFS") mean negative ones
    tl = given.get("target_lufs")
    if isinstance(tl, (int, float)) and not isinstance(tl, bool) and tl > 0:
        given["target_lufs"] = -float(tl)
    for _ in range(len(given) + 2):
        try:
            parsed = model(**given)
            break
        except ValidationError as exc:
            changed = False
            for err in exc.errors():
                loc = err.get("loc") or ()
                if not loc or loc[0] not in given:
                    continue
                key = loc[0]
                val = given[key]
                kind = err.get("type", "")
                if (
                    len(loc) == 1
                    and kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than")
                    and isinstance(val, (int, float))
                    and math.isfinite(float(val))
                ):
                    lo, hi = field_bounds(model, key)
                    new = float(val)
                    if lo is not None:
                        new = max(new, lo)
                    if hi is not None:
                        new = min(new, hi)
                    given[key] = new
                    notes.append(f"{tool}: {key} {_fmt(val)} is out of range; clamped to {_fmt(new)}")
                else:
                    notes.append(
                        f"{tool}: dropped invalid {key}={_fmt(val)!s:.40} ({err.get('msg', 'invalid')})"
                    )
                    del given[key]
                changed = True
                break
            if not changed:
                return {}, notes + [f"{tool}: params rejected; using the tool's defaults"]
    else:  # pragma: no cover - each round removes or fixes one key
        return {}, notes
    dumped = parsed.model_dump(mode="json")
    return {k: dumped[k] for k in given if k in dumped}, notes


# ------------------------------------------------------------------ the validator


def _spec_info(registry: Any, tool: str) -> tuple[bool, str, type[BaseModel] | None, Stage]:
    """(available, why, params model to check against, stage) for a canonical tool."""
    stage = CANONICAL[tool][1]
    try:
        spec = registry[tool] if registry is not None else None
    except Exception as exc:  # a tool module that fails to import is unavailable, not fatal
        return False, f"failed to load: {exc}", params_model(tool), stage
    if spec is None:
        return False, "no registry", params_model(tool), stage
    ok, why = spec.availability()
    stage = getattr(spec, "stage", stage)
    if ok and spec.params.model_fields:
        return True, "", spec.params, stage
    return ok, why, params_model(tool), stage


def validate_plan(
    plan: Plan,
    registry: Any = None,
    *,
    forbidden: Forbidden | Mapping[str, Iterable[str]] | Iterable[str] | None = None,
    allow_unavailable: bool = False,
) -> Plan:
    """Return a safe copy of ``plan`` (see module docstring); notes say what was changed.

    ``allow_unavailable=True`` keeps steps whose tool is not available here and checks their
    params against the tool's own ``Params`` model (importable without the tool's packages) — for
    planning without running.
    """
    if registry is None:
        from tools.registry import default_registry

        registry = default_registry()
    forb = Forbidden.of(forbidden)
    notes = list(plan.notes)

    def note(n: str) -> None:
        if n and n not in notes:
            notes.append(n)

    info_cache: dict[str, tuple[bool, str, type[BaseModel] | None, Stage]] = {}

    def info(tool: str) -> tuple[bool, str, type[BaseModel] | None, Stage]:
        if tool not in info_cache:
            info_cache[tool] = _spec_info(registry, tool)
        return info_cache[tool]

    kept: list[tuple[Stage, int, Step]] = []
    separate_ok = None
    for idx, raw in enumerate(plan.steps):
        step = raw if isinstance(raw, Step) else Step.model_validate(raw)
        tool = str(step.tool).strip().lower().replace("-", "_").replace(" ", "_")
        if tool not in CANONICAL:
            note(f"dropped unknown tool '{step.tool}'")
            continue
        target = step.target if step.target in TARGETS else "mix"
        if step.target not in TARGETS:
            note(f"{tool}: unknown target '{step.target}'; using the whole mix")
        if tool in WHOLE_MIX:
            target = "mix"
        step = Step(tool=tool, params=dict(step.params), target=target, reason=step.reason)
        why_blocked = forb.blocks(step)
        if why_blocked:
            note(why_blocked)
            continue
        ok, why, model, stage = info(tool)
        if not ok and not allow_unavailable:
            fb = FALLBACKS.get(tool)
            if fb and info(fb[0])[0] and fb[0] not in forb.tools:
                fb_tool, translate, what = fb
                note(f"{tool} is unavailable here ({why}); using {fb_tool} ({what}) instead")
                step = Step(
                    tool=fb_tool,
                    params=translate(step.params),
                    target=step.target,
                    reason=f"{step.reason} (fallback for {tool})".strip(),
                )
                ok, why, model, stage = info(fb_tool)
            else:
                note(f"{tool} is unavailable here ({why}); left out, no fallback")
                continue
        if step.target in STEMS and not allow_unavailable:
            if separate_ok is None:
                separate_ok = info("separate")[0]
            if not separate_ok:
                if step.tool in VOICE_ONLY:
                    note(
                        f"{step.tool}: stem separation is unavailable, so it runs on the whole recording "
                        f"(right for a solo recording of the {step.target}, not for a full mix)"
                    )
                else:
                    note(
                        f"{step.tool}: stem separation is unavailable; applied to the whole mix instead of the "
                        f"{step.target}"
                    )
                step = step.model_copy(update={"target": "mix"})
        params, pnotes = coerce_params(step.tool, model, step.params)
        for n in pnotes:
            note(n)
        if step.tool == "separate" and params.get("keep", "mix") != "mix":
            # "extract the vocals (and denoise them)": what it keeps is what every other step works on
            stage, idx = Stage.REPAIR, -1
        kept.append((stage, idx, step.model_copy(update={"params": params})))

    # merge duplicates (same tool on the same target): later params override, reasons joined
    merged: dict[tuple[str, str], tuple[Stage, int, Step]] = {}
    for stage, idx, step in kept:
        key = (step.tool, step.target)
        if key in merged:
            st, i0, first = merged[key]
            params = {**first.params, **step.params}
            reasons = [r for r in (first.reason, step.reason) if r]
            reason = "; ".join(dict.fromkeys(reasons))
            merged[key] = (st, i0, first.model_copy(update={"params": params, "reason": reason}))
        else:
            merged[key] = (stage, idx, step)
    ordered = sorted(merged.values(), key=lambda t: (int(t[0]), t[1]))
    return plan.model_copy(update={"steps": [s for _, _, s in ordered], "notes": notes})
