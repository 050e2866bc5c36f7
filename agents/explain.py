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
    "mode",
    "keep",
)


def _db(v: float, up: str, down: str, band: str) -> str:
    return f"{up if v > 0 else down} by {abs(v):.1f} dB ({band})"


#: a param in plain words with its unit ("brighter by 1.2 dB (3-8 kHz)", "loudness -14 LUFS")
PHRASES: dict[str, Any] = {
    "target_lufs": lambda v: f"loudness {v:g} LUFS",
    "true_peak_dbtp": lambda v: f"peaks under {v:g} dBTP",
    "platform": lambda v: f"for {str(v).replace('_', ' ').title()}",
    "bright_db": lambda v: _db(v, "brighter", "darker", "3-8 kHz"),
    "warm_db": lambda v: _db(v, "warmer", "leaner", "100-300 Hz"),
    "mud_db": lambda v: _db(v, "more body", "less mud", "200-500 Hz"),
    "boom_db": lambda v: _db(v, "more bass", "less boom", "80-200 Hz"),
    "box_db": lambda v: _db(v, "more mids", "less boxiness", "400 Hz-1.2 kHz"),
    "presence_db": lambda v: _db(v, "more presence", "less presence", "2-4 kHz"),
    "air_db": lambda v: _db(v, "more air", "less air", "above 10 kHz"),
    "width": lambda v: f"width {v * 100:.0f} % of the original",
    "depth_db": lambda v: f"ducking {v:g} dB",
    "time_ms": lambda v: f"{v:g} ms",
    "decay_s": lambda v: f"{v:g} s decay",
    "strength": lambda v: f"strength {v * 100:.0f} %",
    "amount": lambda v: f"amount {v * 100:.0f} %",
    "intensity": lambda v: f"intensity {v * 100:.0f} %",
    "ratio": lambda v: f"{v:g}:1",
    "mode": lambda v: "loud mode: soft clipping before the limiter" if v == "loud" else f"{v} mode",
    "keep": lambda v: (
        f"kept everything but the {v[3:]}"
        if str(v).startswith("no_")
        else f"kept the {v}"
        if v != "mix"
        else "kept the mix"
    ),
}


#: params whose value is a word, phrased as such
TEXT_PARAMS = ("platform", "mode", "keep")


def fmt_params(tool: str, params: dict[str, Any]) -> str:
    bits = []
    for k in SHOWN_PARAMS:
        if k in params and params[k] not in (None, 0, 0.0, "") or (k in ("target_lufs",) and k in params):
            v = params[k]
            phrase = PHRASES.get(k)
            if phrase is not None and isinstance(v, (int, float)) == (k not in TEXT_PARAMS):
                try:
                    bits.append(phrase(v))
                    continue
                except (TypeError, ValueError):
                    pass
            bits.append(
                f"{k.replace('_', ' ')} {v:g}" if isinstance(v, float) else f"{k.replace('_', ' ')} {v}"
            )
    return ", ".join(bits[:4])


def side_effects(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Large changes a person should hear about even when they were not the point of the request."""
    out: list[str] = []
    wb, wa = before.get("stereo_width"), after.get("stereo_width")
    if (
        isinstance(wb, (int, float))
        and isinstance(wa, (int, float))
        and wb > 0.02
        and abs(wa - wb) / wb >= 0.4
    ):
        out.append(f"stereo width {wb:.2f} → {wa:.2f} ({(wa - wb) / wb * 100:+.0f} %)")
    lb, la = before.get("lra_lu"), after.get("lra_lu")
    if isinstance(lb, (int, float)) and isinstance(la, (int, float)) and lb >= 1.0 and la <= lb / 2:
        out.append(f"loudness range halved or more: {lb:.1f} → {la:.1f} LU")
    return out


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
        detail = fmt_params(o["tool"], o.get("params") or {})
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
            # the verbs are past tense ("added reverb"): what was done, then taken back
            lines.append(f"- {verb.split(' (')[0].capitalize()}{target}, then took it back: {o['why']}.")
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
    if before and after and applied:
        for effect in side_effects(before, after):
            lines.append(f"Side effect: {effect}.")
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
