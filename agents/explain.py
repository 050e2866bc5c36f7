"""Plain-word explanations of what a turn did."""

from __future__ import annotations

from typing import Any

VERBS = {
    "denoise": "reduced background noise",
    "declip": "repaired clipped peaks",
    "dereverb": "reduced room reverberation",
    "restore": "restored the degraded recording",
    "bandwidth_extension": "restored missing high frequencies",
    "separate": "split the track into stems",
    "vocoder_enhance": "re-synthesised the voice through a neural vocoder",
    "pitch_correct": "tuned the voice",
    "eq": "adjusted the tone (EQ)",
    "dynamic_eq": "tamed problem frequencies only when they jump out (dynamic EQ)",
    "de_ess": "softened harsh 's' sounds (de-esser)",
    "compress": "evened out the dynamics (compression)",
    "saturation": "added gentle harmonic warmth",
    "sidechain": "ducked the music under the voice",
    "mix": "balanced the vocal against the music",
    "stereo_width": "changed the stereo width",
    "reverb": "added reverb",
    "delay": "added delay",
    "genre_preset": "shaped the tonal balance and dynamics toward the genre",
    "reference_match": "matched the reference track's tone and loudness",
    "master": "mastered to the loudness target with a true-peak limiter",
}

SHOWN_PARAMS = ("strength", "amount", "intensity", "genre", "target_lufs", "true_peak_dbtp", "platform", "width",
                "key", "scale", "bright_db", "warm_db", "mud_db", "boom_db", "box_db", "presence_db", "air_db",
                "depth_db", "time_ms", "style", "target")


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


def explain(kind: str, outcomes: list[dict[str, Any]], before: dict[str, Any] | None, after: dict[str, Any] | None,
            notes: list[str] | None = None) -> str:
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
            lines.append(f"- {verb.capitalize()}{target}" + (f" ({detail})" if detail else "") +
                         (f": {o['reason']}" if o.get("reason") else "") + ".")
        elif o["status"] == "trimmed":
            lines.append(f"- {verb.capitalize()}{target}; {o['why']}.")
        elif o["status"] == "rolled_back":
            lines.append(f"- Tried to {verb.split(' (')[0]}{target} but undid it: {o['why']}.")
        else:
            lines.append(f"- Skipped {o['tool']}: {o['why']}.")
    if before and after and applied:
        lines.append(
            "Loudness {} → {}, true peak {} → {}, loudness range {} → {}.".format(
                _num(before.get("integrated_lufs"), "LUFS"), _num(after.get("integrated_lufs"), "LUFS"),
                _num(before.get("true_peak_dbtp"), "dBTP"), _num(after.get("true_peak_dbtp"), "dBTP"),
                _num(before.get("lra_lu"), "LU"), _num(after.get("lra_lu"), "LU"),
            )
        )
    for n in notes or []:
        lines.append(f"Note: {n}")
    if applied:
        lines.append("Rate the result 1–5 so I learn what you like; say \"undo\" to go back.")
    return "\n".join(lines)
