"""Prompts for the optional LLM planner: the system prompt and the user message, which carries the
request, the diagnosis (findings + facts), the thread's recent turns and the offline planner's draft."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

SYSTEM_PROMPT = """\
You are mixpilot's planner, an experienced audio engineer who listens before acting. A person says
something about one recording; you reply ONLY by calling tools, in exactly one of three ways:

1. Process: one call per processing tool, in the order the steps should run. Each call's arguments
   are {"params": {...}, "target": ..., "reason": ...}: params use exactly the parameter names in
   the tool's schema (omit a param to keep its default); target is "mix" (the whole recording)
   unless the person names a part ("vocals", "drums", "bass", "other"; "speech" for a spoken-word
   recording); reason is a few plain words.
2. Answer: one call to `answer` with `text`, when the person asks about the audio ("how loud is
   it?", "is it ready for Spotify?", "does it clip?", "what's wrong with my mix?") or about the
   conversation ("what did you do?", "why did you compress it?"). Nothing runs. Quote the measured
   numbers with their units from the diagnosis, and only those: never invent a measurement. Put a
   fix you recommend in `suggest` (same step shape plus "tool"); the person confirms it with "yes".
   Use "kind": "none" when there is nothing to do (a clean recording asked to be cleaned, a request
   that is not about audio) and say why in `text`.
3. Clarify: one call to `clarify` with `question`, when the request is too ambiguous to act on.

Never mix these: no `answer` or `clarify` together with processing tools.

Rules for steps (planned or suggested):
- Canonical order: repair (denoise, declip, dereverb, restore, bandwidth_extension) → separate →
  voice (pitch_correct, vocoder_enhance) → tone (eq, dynamic_eq, de_ess) → dynamics (compress,
  saturation) → mix/sidechain → space (stereo_width, reverb, delay) → genre_preset /
  reference_match → master last.
- Do no harm: a repair step only for a problem the diagnosis found (noise or hum → denoise,
  clipping → declip, reverb → dereverb, bandlimited → bandwidth_extension), or when the person
  explicitly orders it; strength scaled to the finding's severity.
- Only what was asked, plus what the diagnosis clearly needs for a generic request.
- Never add a step the person ruled out ("no reverb", "don't touch the vocals").
- Loudness targets: Spotify/YouTube/Amazon/Tidal −14 LUFS, Apple Music −16, podcasts −16,
  ACX audiobooks RMS −23 to −18 dB with peaks at most −3 dBFS and a noise floor at most −60 dBFS,
  EBU R128 broadcast −23, club −9; true peak −1 dBTP unless stated. "Louder / radio-ready"
  ≈ −10 LUFS.
- Intensity: "a touch" ≈ 0.25, "a bit" ≈ 0.4, default ≈ 0.5, "a lot" ≈ 0.85 for
  amount/strength/intensity; EQ gains ±2–4 dB, more for "a lot".
- Follow-ups ("more", "less compression", "undo") refer to the previous turns listed.
"""

#: analysis keys sent when there is no diagnosis (the diagnosis' facts supersede them)
ANALYSIS_KEYS = (
    "integrated_lufs",
    "true_peak_dbtp",
    "snr_db",
    "clipping_ratio",
    "bandwidth_hz",
    "speech_probability",
    "stereo_width",
    "spectral_tilt_db_per_octave",
    "duration_s",
)
#: how many previous turns the model sees, and how much of each answer
HISTORY_TURNS = 6
HISTORY_ANSWER_CHARS = 300


def _round(v: Any) -> Any:
    if isinstance(v, float):
        return round(v, 2)
    return v


def diagnosis_block(diagnosis: Mapping[str, Any] | None) -> list[str]:
    """The diagnosis as the model sees it: findings (problem, severity, evidence) and the facts."""
    if not diagnosis:
        return []
    parts: list[str] = []
    findings = [
        {"problem": f.get("problem"), "severity": _round(f.get("severity")), "evidence": f.get("evidence")}
        for f in diagnosis.get("findings") or []
        if isinstance(f, Mapping)
    ]
    parts.append(
        "Diagnosis findings: "
        + (json.dumps(findings, default=str) if findings else "none (nothing measured as a problem)")
    )
    facts = {k: _round(v) for k, v in (diagnosis.get("facts") or {}).items() if v is not None}
    if facts:
        parts.append("Measured facts: " + json.dumps(facts, default=str))
    return parts


def history_block(history: Sequence[Mapping[str, Any]] | None) -> list[str]:
    """The thread's last turns, oldest first: request, kind, tools run (``tools``: names, or ``steps``:
    step dicts), answer."""
    if not history:
        return []
    lines = []
    for i, turn in enumerate(list(history)[-HISTORY_TURNS:], 1):
        tools = turn.get("tools") or [
            s.get("tool") for s in turn.get("steps") or [] if isinstance(s, Mapping)
        ]
        if isinstance(tools, str):
            tools = [tools]
        item = {"request": turn.get("request"), "kind": turn.get("kind"), "tools run": list(tools)}
        answer = turn.get("answer")
        if answer:
            answer = str(answer)
            item["answer"] = (
                answer if len(answer) <= HISTORY_ANSWER_CHARS else answer[:HISTORY_ANSWER_CHARS] + "…"
            )
        lines.append(f"{i}. " + json.dumps(item, default=str))
    return ["Conversation so far (oldest first):", *lines]


def draft_block(draft: Mapping[str, Any] | None) -> list[str]:
    if not draft:
        return []
    kind = draft.get("kind") or "process"
    bits = {"kind": kind}
    if draft.get("steps"):
        bits["steps"] = draft["steps"]
    if draft.get("answer"):
        bits["answer"] = draft["answer"]
    if draft.get("suggested_steps"):
        bits["suggested_steps"] = draft["suggested_steps"]
    if draft.get("checks"):
        bits["checks"] = draft["checks"]
    if kind == "process" and not draft.get("steps"):
        return []
    return ["The offline planner's reading (improve on it if you can): " + json.dumps(bits, default=str)]


def user_message(
    request: str,
    analysis: Mapping[str, Any] | None,
    draft: Mapping[str, Any] | None,
    *,
    diagnosis: Mapping[str, Any] | None = None,
    history: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    parts = [f"Request: {request}"]
    parts += diagnosis_block(diagnosis)
    if analysis:
        have = set((diagnosis or {}).get("facts") or {})
        facts = {k: _round(analysis[k]) for k in ANALYSIS_KEYS if k in analysis and k not in have}
        if facts:
            parts.append("Analysis of the recording: " + json.dumps(facts, default=str))
    parts += history_block(history)
    parts += draft_block(draft)
    return "\n".join(parts)
