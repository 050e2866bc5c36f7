"""Plain-word explanations of what a turn did."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agents.contract import PerTool

#: tool → what it did, in plain words: each tool's ``SPEC.verb``
VERBS: Mapping[str, str] = PerTool(lambda spec: spec.verb or None)

SHOWN_PARAMS = (
    "strength",
    "amount",
    "intensity",
    "genre",
    "target_lufs",
    "true_peak_dbtp",
    "platform",
    "width",
    "key",
    "scale",
    "bright_db",
    "warm_db",
    "mud_db",
    "boom_db",
    "box_db",
    "presence_db",
    "air_db",
    "depth_db",
    "time_ms",
    "style",
    "target",
)


def _fmt_params(tool: str, params: dict[str, Any]) -> str:
    bits = []
    for k in SHOWN_PARAMS:
        if k in params and params[k] not in (None, 0, 0.0, "") or (k in ("target_lufs",) and k in params):
            v = params[k]
            if isinstance(v, float):
                v = f"{v:g}"
            bits.append(f"{k.replace('_', ' ')} {v}")
    return ", ".join(bits[:4])


def _num(v: Any, unit: str) -> str:
    if v is None:
        return "—"
    try:
        return f"{float(v):.1f} {unit}"
    except (TypeError, ValueError):
        return str(v)


def explain(
    kind: str,
    outcomes: list[dict[str, Any]],
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    notes: list[str] | None = None,
) -> str:
    if kind == "undo":
        return "Undone: back to the previous version."
    if kind == "reset":
        return "Back to the original recording."
    if kind == "plan_only":
        return "Here is the plan; attach a recording to run it."
    lines: list[str] = []
    applied = [o for o in outcomes if o["status"] in ("applied", "trimmed")]
    if not outcomes:
        lines.append("I didn't find anything to change in that request.")
    for o in outcomes:
        verb = VERBS.get(o["tool"], o["tool"])
        detail = _fmt_params(o["tool"], o.get("params") or {})
        target = f" on the {o['target']}" if o.get("target") not in (None, "mix", "music", "speech") else ""
        if o["status"] == "applied":
            lines.append(
                f"- {verb.capitalize()}{target}"
                + (f" ({detail})" if detail else "")
                + (f": {o['reason']}" if o.get("reason") else "")
                + "."
            )
        elif o["status"] == "trimmed":
            lines.append(f"- {verb.capitalize()}{target}; {o['why']}.")
        elif o["status"] == "rolled_back":
            lines.append(f"- Tried to {verb.split(' (')[0]}{target} but undid it: {o['why']}.")
        else:
            lines.append(f"- Skipped {o['tool']}: {o['why']}.")
    if before and after and applied:
        lines.append(
            "Loudness {} → {}, true peak {} → {}, loudness range {} → {}.".format(
                _num(before.get("integrated_lufs"), "LUFS"),
                _num(after.get("integrated_lufs"), "LUFS"),
                _num(before.get("true_peak_dbtp"), "dBTP"),
                _num(after.get("true_peak_dbtp"), "dBTP"),
                _num(before.get("lra_lu"), "LU"),
                _num(after.get("lra_lu"), "LU"),
            )
        )
    for o in (
        applied
    ):  # a tool (or the split before it) that ran its fallback says so, and how to get the real thing
        report = o.get("report") or {}
        if report.get("fallback") or (report.get("separation") or {}).get("fallback"):
            lines.extend(f"Note: {w}" for w in o.get("warnings") or [])
    for n in notes or []:
        lines.append(f"Note: {n}")
    if applied:
        lines.append('Rate the result 1–5 so I learn what you like; say "undo" to go back.')
    return "\n".join(lines)
