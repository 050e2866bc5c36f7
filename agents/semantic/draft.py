"""The semantic planner's working draft: steps in the order asked, what was ruled out, notes;
and how intensity words scale a step's params."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agents.contract import PerTool, clamp, default
from agents.plan import WHOLE_MIX, Forbidden, Plan, Step
from agents.semantic import vocabulary as V
from agents.semantic.parse import Clause, Parsed
from tools.registry import get_tool

#: tool → (the param its overall "how much" lives in, the tool's default): each tool's ``SPEC.amount_key``
AMOUNT_KEY: Mapping[str, tuple[str, float]] = PerTool(
    lambda spec: (spec.amount_key, float(default(spec.name, spec.amount_key))) if spec.amount_key else None
)
#: the eq tool's tonal gains, the params its ``SPEC.scales`` names ("bright_db", "warm_db", …, "air_db")
EQ_DB: tuple[str, ...] = tuple(key for key, _ in get_tool("eq").scales)


@dataclass
class Draft:
    """Steps in the order they were asked for, plus what was ruled out and notes."""

    steps: list[Step] = field(default_factory=list)
    forbidden: Forbidden = field(default_factory=Forbidden)
    notes: list[str] = field(default_factory=list)
    explicit_tools: set[str] = field(default_factory=set)
    platform: tuple | None = None  # the first platform named (its target wins)
    platform_text: str = ""
    said: set[tuple[str, str]] = field(default_factory=set)  # (tool, param) the words set (see Plan._said)

    def mark_said(self) -> None:
        """Everything in the steps so far came from the person's words (not from a chain's defaults)."""
        self.said |= {(s.tool, k) for s in self.steps for k in s.params}

    def note(self, n: str) -> None:
        if n and n not in self.notes:
            self.notes.append(n)

    def find(self, tool: str, target: str | None = None) -> Step | None:
        for s in self.steps:
            if s.tool == tool and (target is None or s.target == target):
                return s
        return None

    def add(
        self,
        tool: str,
        params: Mapping[str, Any],
        target: str,
        reason: str,
        *,
        merge_db: bool = False,
        loose: bool = False,
    ) -> Step:
        """Add a step or merge into the same tool's step. ``loose``: the target was not said, so an
        existing step of this tool on any target takes the params."""
        if tool in WHOLE_MIX:
            target = "mix"
        have = self.find(tool, target) or (self.find(tool) if loose else None)
        if have is not None:
            merged = dict(have.params)
            for k, v in params.items():
                if merge_db and k in EQ_DB and k in merged:
                    a = float(merged[k])
                    # two words for the same move ("muddy ... the low end") don't stack; opposite ones net out
                    merged[k] = max(a, v, key=abs) if a * v > 0 else clamp("eq", k, a + v)
                else:
                    merged[k] = v
            have.params = merged
            if reason and reason not in have.reason:
                have.reason = f"{have.reason}; {reason}" if have.reason else reason
            return have
        step = Step(tool=tool, params=dict(params), target=target, reason=reason)
        self.steps.append(step)
        return step

    def to_plan(self) -> Plan:
        plan = Plan(steps=self.steps, source="semantic", notes=self.notes)
        plan._said = set(self.said)
        return plan


# ------------------------------------------------------------------ scaling by intensity


def scaled(tool: str, params: Mapping[str, Any], level: str | None) -> dict[str, Any]:
    """Apply an intensity level to a step's base params (amount keys, EQ gains, width)."""
    p = dict(params)
    if tool in AMOUNT_KEY:
        key, default = AMOUNT_KEY[tool]
        base = float(p.get(key, default))
        if level in V.LEVEL_AMOUNT:
            target = V.LEVEL_AMOUNT[level]
            if level in ("touch", "bit", "gentle"):
                # "a little reverb" is less than "reverb", never more: the default scaled down, at most the
                # level's own amount
                base = min(target, base * V.LEVEL_FACTOR[level])
            else:
                base = (
                    max(base, target)
                    if level in ("lot", "max")
                    else min(base, target)
                    if base > target
                    else target
                )
        p[key] = round(base, 3)
    factor = V.LEVEL_FACTOR.get(level or "", 1.0)
    for k in EQ_DB:
        if k in p:
            p[k] = round(clamp("eq", k, float(p[k]) * factor), 2)
    if tool == "stereo_width" and "width" in p and p["width"] > 0:
        p["width"] = round(clamp("stereo_width", "width", 1.0 + (float(p["width"]) - 1.0) * factor), 3)
    if tool == "master" and "target_lufs" in p and level:
        t = float(p["target_lufs"])
        if (
            t > -14.0 or t < -14.0 and t != -16.0 and t != -23.0 and t != -20.0
        ):  # louder than the streaming default: intensity moves it further or back
            p["target_lufs"] = round(clamp("master", "target_lufs", -14.0 + (t + 14.0) * factor), 1)
    return p


def target_for(tool: str, clause: Clause, parsed: Parsed, term_voice: bool) -> str:
    if tool in WHOLE_MIX:
        return "mix"
    scope = clause.scope if clause.scope and not clause.scope_negated else None
    if scope is None and term_voice and clause.prev_scope == "vocals":
        scope = "vocals"  # "denoise the voice, de-ess it"
    if scope == "vocals" and parsed.speech:
        return "speech"
    if scope:
        return scope
    if term_voice and parsed.speech:
        return "speech"
    return "mix"
