"""Answers grounded in measurements: questions about the audio (from the `Diagnosis`), platform
checks against published delivery specs, and questions about the conversation (from the thread's
turns). Every answer quotes numbers with units; where something can be fixed, the fix comes back as
``suggested_steps`` for a confirming next turn ("yes", "do it") to run. Nothing here runs a tool.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agents.plan import Plan, Step
from agents.semantic import vocabulary as V
from agents.semantic.questions import Question

# ------------------------------------------------------------------ platforms


@dataclass(frozen=True)
class PlatformSpec:
    """A delivery spec to check against. Loudness target and ceiling come from the planner's platform
    vocabulary (`agents.semantic.vocabulary.PLATFORMS`); this adds how strictly it is held."""

    key: str  # platform enum or a readable name
    name: str
    target_lufs: float
    ceiling_dbtp: float
    tolerance_lu: float = 1.0
    normalises: bool = (
        True  # the service turns loud tracks down (streaming); broadcast and ACX reject instead
    )
    acx: bool = False


PLATFORM_NAMES = {
    "spotify": "Spotify",
    "apple_music": "Apple Music",
    "youtube": "YouTube",
    "amazon": "Amazon Music",
    "tidal": "Tidal",
    "podcast": "podcast",
    "broadcast": "EBU R128 broadcast",
    "audiobook": "ACX (Audible)",
    "club": "club",
}
#: how closely a delivery must sit on its target (EBU R128 file delivery ±0.5 LU; streaming ±1 LU)
TOLERANCE_LU = {"broadcast": 0.5}
ACX_RMS_DB = (-23.0, -18.0)
ACX_PEAK_DBFS = -3.0
ACX_NOISE_FLOOR_DBFS = -60.0


def platform_spec(
    platform: tuple[str, str | None, float, float, bool] | None, text: str = ""
) -> PlatformSpec:
    if platform is None:
        return PlatformSpec("streaming", "streaming (Spotify, YouTube, Tidal)", V.STREAMING_LUFS, -1.0)
    _, key, lufs, tp, _ = platform
    name = PLATFORM_NAMES.get(key or "", (text or "this platform").strip().title())
    k = key or name
    return PlatformSpec(
        k,
        name,
        lufs,
        tp,
        TOLERANCE_LU.get(k, 1.0),
        normalises=k not in ("broadcast", "audiobook"),
        acx=k == "audiobook",
    )


def _num(facts: Mapping[str, Any], key: str) -> float | None:
    v = facts.get(key)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    return None


def _lufs_txt(v: float | None) -> str:
    return "unmeasurable (too short)" if v is None else f"{v:.1f} LUFS"


def check_platform(spec: PlatformSpec, facts: Mapping[str, Any]) -> tuple[bool, list[str], list[str]]:
    """(ready, reasons it is or is not, what the platform will do with it)."""
    lufs = _num(facts, "integrated_lufs")
    tp = _num(facts, "true_peak_dbtp")
    fails: list[str] = []
    passes: list[str] = []
    effects: list[str] = []
    if spec.acx:
        rms, peak, floor = (
            _num(facts, "rms_dbfs"),
            _num(facts, "sample_peak_dbfs"),
            _num(facts, "noise_floor_dbfs"),
        )
        lo, hi = ACX_RMS_DB
        if rms is not None:
            (passes if lo <= rms <= hi else fails).append(
                f"RMS {rms:.1f} dB {'within' if lo <= rms <= hi else 'outside'} ACX's {lo:g} to {hi:g} dB"
            )
        if peak is not None:
            (passes if peak <= ACX_PEAK_DBFS else fails).append(
                f"peaks {peak:.1f} dBFS {'at or under' if peak <= ACX_PEAK_DBFS else 'above'} ACX's "
                f"{ACX_PEAK_DBFS:g} dBFS limit"
            )
        if floor is not None:
            (passes if floor <= ACX_NOISE_FLOOR_DBFS else fails).append(
                f"noise floor {floor:.1f} dBFS {'under' if floor <= ACX_NOISE_FLOOR_DBFS else 'above'} ACX's "
                f"{ACX_NOISE_FLOOR_DBFS:g} dBFS limit"
            )
        return not fails, fails or passes, effects
    if lufs is None:
        fails.append("integrated loudness could not be measured (the clip is under 0.4 s)")
    else:
        diff = lufs - spec.target_lufs
        if abs(diff) <= spec.tolerance_lu:
            passes.append(
                f"loudness {lufs:.1f} LUFS, within {spec.tolerance_lu:g} LU of {spec.name}'s "
                f"{spec.target_lufs:g} LUFS"
            )
        elif diff > 0:
            fails.append(
                f"loudness {lufs:.1f} LUFS is {diff:.1f} dB above {spec.name}'s {spec.target_lufs:g} LUFS"
            )
            if spec.normalises:
                effects.append(f"{spec.name} will turn it down {diff:.1f} dB")
        else:
            fails.append(
                f"loudness {lufs:.1f} LUFS is {-diff:.1f} dB under {spec.name}'s {spec.target_lufs:g} LUFS"
            )
            if spec.normalises:
                effects.append(
                    f"it will play about {-diff:.1f} dB quieter than other tracks unless {spec.name} "
                    "turns it up"
                )
    if tp is not None:
        if tp <= spec.ceiling_dbtp + 0.05:
            passes.append(f"true peak {tp:+.1f} dBTP, under the {spec.ceiling_dbtp:g} dBTP ceiling")
        else:
            fails.append(
                f"true peak {tp:+.1f} dBTP is over the {spec.ceiling_dbtp:g} dBTP ceiling"
                + ("; it will clip after encoding" if spec.normalises else "")
            )
    return not fails, fails or passes, effects


def _acx_floor_after_master(spec: PlatformSpec, facts: Mapping[str, Any]) -> tuple[float, float] | None:
    """(noise floor now, after the master's gain) when the latter is over ACX's limit, else None."""
    floor, lufs = _num(facts, "noise_floor_dbfs"), _num(facts, "integrated_lufs")
    if floor is None:
        return None
    after = floor + (spec.target_lufs - lufs if lufs is not None else 0.0)
    return (floor, after) if after > ACX_NOISE_FLOOR_DBFS else None


def master_step(spec: PlatformSpec) -> Step:
    params: dict[str, Any] = {"target_lufs": spec.target_lufs, "true_peak_dbtp": spec.ceiling_dbtp}
    if spec.key in PLATFORM_NAMES:
        params["platform"] = spec.key
    return Step(
        tool="master",
        params=params,
        target="mix",
        reason=f"{spec.name} loudness: {spec.target_lufs:g} LUFS, true peak {spec.ceiling_dbtp:g} dBTP",
    )


# ------------------------------------------------------------------ repairs suggested from findings


def _sev(f: Mapping[str, Any]) -> float:
    try:
        return max(0.0, min(1.0, float(f.get("severity") or 0.0)))
    except (TypeError, ValueError):
        return 0.0


def fix_step(finding: Mapping[str, Any], *, speech: bool) -> Step | None:
    """The step that fixes one finding, at a strength scaled to its severity (None: nothing to run)."""
    p, sev = str(finding.get("problem")), _sev(finding)
    target = "speech" if speech else "mix"
    why = str(finding.get("evidence") or p)
    table: dict[str, tuple[str, dict[str, Any]]] = {
        "noise": ("denoise", {"strength": round(min(0.85 if speech else 0.6, 0.3 + 0.5 * sev), 2)}),
        "hum": ("denoise", {"strength": round(0.4 + 0.4 * sev, 2), "method": "spectral", "stationary": True}),
        "clipping": ("declip", {"strength": round(0.6 + 0.4 * sev, 2)}),
        "bandlimited": ("bandwidth_extension", {"amount": round(0.3 + 0.4 * sev, 2)}),
        "reverb": ("dereverb", {"strength": round(0.3 + 0.5 * sev, 2)}),
        "sibilance": ("de_ess", {"amount": round(0.3 + 0.4 * sev, 2)}),
        "harsh": ("dynamic_eq", {"target": "harsh", "amount": round(0.3 + 0.4 * sev, 2)}),
        "muddy": ("eq", {"mud_db": -round(1.5 + 3.0 * sev, 1)}),
        "boomy": ("eq", {"boom_db": -round(1.5 + 3.0 * sev, 1)}),
        "dull": ("eq", {"bright_db": round(1.5 + 3.0 * sev, 1)}),
        "thin": ("eq", {"warm_db": round(1.5 + 3.0 * sev, 1)}),
        "mono_compatibility": ("stereo_width", {"width": 0.8, "bass_mono_hz": 150.0}),
        "true_peak": ("master", {"true_peak_dbtp": -1.0}),
    }
    if p not in table:
        return None
    tool, params = table[p]
    if tool in ("dereverb", "denoise", "de_ess") or p in ("muddy", "boomy", "dull", "thin"):
        t = target
    else:
        t = "mix"
    return Step(tool=tool, params=params, target=t, reason=why)


def fixes(
    findings: Sequence[Mapping[str, Any]], *, speech: bool, only: Sequence[str] | None = None
) -> list[Step]:
    steps: list[Step] = []
    for f in findings:
        if only is not None and f.get("problem") not in only:
            continue
        st = fix_step(f, speech=speech)
        if st is None:
            continue
        same = next((s for s in steps if s.tool == st.tool and s.target == st.target), None)
        if same is not None:
            same.params.update({k: v for k, v in st.params.items() if k not in same.params})
            same.reason = f"{same.reason}; {st.reason}"
        else:
            steps.append(st)
    return steps


# ------------------------------------------------------------------ questions about the audio


def _f(findings: Sequence[Mapping[str, Any]], problem: str) -> Mapping[str, Any] | None:
    return next((f for f in findings if f.get("problem") == problem), None)


def _level_summary(facts: Mapping[str, Any]) -> str:
    parts = [f"integrated loudness {_lufs_txt(_num(facts, 'integrated_lufs'))}"]
    tp, lra, plr = _num(facts, "true_peak_dbtp"), _num(facts, "lra_lu"), _num(facts, "plr_db")
    if tp is not None:
        parts.append(f"true peak {tp:+.1f} dBTP")
    if lra is not None:
        parts.append(f"loudness range {lra:.1f} LU")
    if plr is not None:
        parts.append(f"peak-to-loudness ratio {plr:.1f} dB")
    return ", ".join(parts)


def _findings_text(findings: Sequence[Mapping[str, Any]]) -> str:
    return "; ".join(f"{str(f.get('problem')).replace('_', ' ')}: {f.get('evidence')}" for f in findings)


def answer_question(
    q: Question, diagnosis: Mapping[str, Any] | None, *, history: Sequence[Mapping[str, Any]] = ()
) -> Plan:
    """A non-process `Plan` (kind answer, or clarify when there is nothing to measure) for ``q``."""
    if q.topic == "history":
        return answer_history(q, history)
    if not diagnosis or not diagnosis.get("facts"):
        return Plan(
            kind="clarify",
            answer="I need to hear the recording to answer that: attach one (upload it, or "
            '`mixpilot plan "..." --audio FILE`) and ask again.',
            notes=["no recording to measure"],
        )
    facts: Mapping[str, Any] = diagnosis["facts"]
    findings: list[Mapping[str, Any]] = list(diagnosis.get("findings") or [])
    speech = str(facts.get("content")) == "speech"
    plan = Plan(kind="answer", findings=[dict(f) for f in findings])
    lufs, tp = _num(facts, "integrated_lufs"), _num(facts, "true_peak_dbtp")
    text: str
    suggested: list[Step] = []

    if q.topic == "platform":
        spec = platform_spec(q.platform, q.platform_text)
        ready, reasons, effects = check_platform(spec, facts)
        plan.checks = {"platform": spec.key, "ready": ready, "reasons": reasons}
        head = f"Yes, it meets {spec.name}'s spec" if ready else f"Not yet ready for {spec.name}"
        text = f"{head}: {'; '.join(reasons)}."
        if effects:
            text += " " + "; ".join(e[0].upper() + e[1:] for e in effects) + "."
        if not ready:
            suggested = [master_step(spec)]
            if spec.acx and _f(findings, "noise") is not None:
                suggested = fixes(findings, speech=True, only=("noise",)) + suggested
            elif spec.acx and (rise := _acx_floor_after_master(spec, facts)) is not None:
                # the floor fails ACX (or will once mastering turns it up): clean it before the master
                floor, after = rise
                st = fix_step(
                    {
                        "problem": "noise",
                        "severity": min(1.0, 0.3 + (after - ACX_NOISE_FLOOR_DBFS) / 30.0),
                        "evidence": f"noise floor {floor:.1f} dBFS, {after:.1f} dBFS after mastering",
                    },
                    speech=True,
                )
                if st is not None:
                    suggested = [st, *suggested]
                text += (
                    f" Mastering to {spec.target_lufs:g} LUFS would leave the noise floor at {after:.1f} dBFS"
                    f" (ACX allows {ACX_NOISE_FLOOR_DBFS:g}), so I would clean the noise first."
                )
            text += (
                f" I can master it to {spec.target_lufs:g} LUFS with a {spec.ceiling_dbtp:g} dBTP ceiling."
            )
    elif q.topic == "loudness":
        text = _level_summary(facts)[0].upper() + _level_summary(facts)[1:] + "."
        if lufs is not None:
            diff = lufs - V.STREAMING_LUFS
            if abs(diff) > 1.0:
                text += (
                    f" That is {abs(diff):.1f} dB {'louder' if diff > 0 else 'quieter'} than the "
                    f"{V.STREAMING_LUFS:g} LUFS "
                    "streaming target"
                    + (f" (Spotify would turn it down {diff:.1f} dB)." if diff > 0 else ".")
                )
                suggested = [master_step(platform_spec(None))]
            else:
                text += f" That sits on the {V.STREAMING_LUFS:g} LUFS streaming target."
    elif q.topic == "true_peak":
        peak = _num(facts, "sample_peak_dbfs")
        if tp is None:
            text = "The true peak could not be measured."
        else:
            room = -tp
            text = (
                f"True peak {tp:+.1f} dBTP"
                + (f", sample peak {peak:+.1f} dBFS" if peak is not None else "")
                + (
                    f": {room:.1f} dB of headroom below full scale."
                    if room > 0
                    else f": {-room:.1f} dB over full scale between samples."
                )
            )
            if tp > -1.0:
                text += " Streaming services ask for -1 dBTP or lower; over that, lossy encoding can clip."
                suggested = [
                    Step(
                        tool="master",
                        params={
                            "target_lufs": round(lufs, 1)
                            if lufs is not None and -30.0 <= lufs <= -6.0
                            else V.STREAMING_LUFS,
                            "true_peak_dbtp": -1.0,
                        },
                        target="mix",
                        reason=f"true peak {tp:+.1f} dBTP: bring it under -1 dBTP",
                    )
                ]
    elif q.topic in ("clipping", "noise", "hum", "mono", "reverb", "bandwidth", "dynamics"):
        problem = {
            "mono": "mono_compatibility",
            "bandwidth": "bandlimited",
            "dynamics": "over_compressed",
        }.get(q.topic, q.topic)
        f = _f(findings, problem)
        if f is not None:
            text = f"Yes: {f.get('evidence')}."
            suggested = fixes([f], speech=speech)
        else:
            text = _clean_evidence(problem, facts)
    elif q.topic == "tone" and q.problem in ("low_end", "boomy", "thin"):
        text, suggested = _low_end_answer(q.problem or "low_end", findings, facts, speech=speech)
    elif q.topic == "tone":
        problem = q.problem or "muddy"
        f = _f(findings, problem)
        if f is not None:
            text = f"I measure it too: {f.get('evidence')}."
            suggested = fixes([f], speech=speech)
        else:
            text, suggested = _not_measured(problem, _tone_evidence(facts), speech=speech)
    elif q.topic == "stereo":
        corr, width = _num(facts, "stereo_correlation"), _num(facts, "stereo_width")
        if int(facts.get("channels") or 1) < 2:
            text = "It is mono: one channel, no stereo width."
        else:
            text = (
                f"Stereo correlation {corr if corr is not None else 1.0:.2f}, side share of the energy "
                f"{(width or 0.0) * 100:.0f}%"
                + (" (narrow)" if (width or 0.0) < 0.05 else " (wide)" if (width or 0.0) > 0.3 else "")
                + "."
            )
            f = _f(findings, "mono_compatibility")
            if f is not None:
                text += f" {f.get('evidence')}."
                suggested = fixes([f], speech=speech)
    elif q.topic == "speech":
        p = _num(facts, "speech_probability")
        text = (
            f"It sounds like {'speech' if speech else 'music'} (speech probability {(p or 0.0) * 100:.0f}%)."
        )
    elif q.topic == "wrong":
        if findings:
            text = f"I found {len(findings)} thing{'s' if len(findings) != 1 else ''}: {_findings_text(findings)}."
            suggested = fixes(findings, speech=speech)
        else:
            text = (
                f"Nothing stands out: {_level_summary(facts)}; {_clean_evidence('noise', facts, short=True)}."
            )
    else:  # about
        content = "speech" if speech else "music"
        dur = _num(facts, "duration_s") or 0.0
        text = (
            f"{dur:.1f} s of {content}, {int(facts.get('sample_rate') or 0)} Hz, "
            f"{int(facts.get('channels') or 0)} channel(s); {_level_summary(facts)}"
        )
        bw = _num(facts, "bandwidth_hz")
        if bw is not None:
            text += f"; bandwidth {bw / 1000:.1f} kHz"
        corr = _num(facts, "stereo_correlation")
        if corr is not None and int(facts.get("channels") or 1) > 1:
            text += f"; stereo correlation {corr:.2f}"
        text += "." + (f" Findings: {_findings_text(findings)}." if findings else " No problems found.")
        suggested = fixes(findings, speech=speech)
    if suggested:
        names = ", ".join(dict.fromkeys(s.tool.replace("_", " ") for s in suggested))
        text += f' Say "do it" and I\'ll run: {names}.'
    plan.answer = text
    plan.suggested_steps = suggested
    return plan


def _clean_evidence(problem: str, facts: Mapping[str, Any], *, short: bool = False) -> str:
    floor, snr = _num(facts, "noise_floor_dbfs"), _num(facts, "snr_db")
    if problem == "noise":
        s = "no background noise to speak of"
        if floor is not None:
            s += f": noise floor {floor:.1f} dBFS"
            if snr is not None:
                s += f", {snr:.0f} dB under the programme"
        return s if short else s[0].upper() + s[1:] + "."
    if problem == "clipping":
        peak, ratio = _num(facts, "sample_peak_dbfs"), _num(facts, "clipping_ratio")
        return (
            f"No clipping found: sample peak {peak if peak is not None else float('nan'):+.1f} dBFS, "
            f"{(ratio or 0.0) * 100:.3f}% of samples in flat-topped runs."
        )
    if problem == "hum":
        return "No mains hum found: no narrow persistent peak at 50 or 60 Hz or their harmonics" + (
            f" (noise floor {floor:.1f} dBFS)." if floor is not None else "."
        )
    if problem == "mono_compatibility":
        corr, loss = _num(facts, "stereo_correlation"), _num(facts, "mono_loss_db")
        if int(facts.get("channels") or 1) < 2:
            return "It is mono already, so it folds down without loss."
        return (
            f"Yes, it is mono compatible: stereo correlation {corr if corr is not None else 1.0:.2f}"
            + (f", the mono fold-down loses {loss:.1f} dB" if loss is not None else "")
            + "."
        )
    if problem == "reverb":
        return "I don't hear much room: no long decay tails after the sounds stop."
    if problem == "bandlimited":
        bw = _num(facts, "bandwidth_hz")
        sr = _num(facts, "sample_rate") or 0.0
        return (
            f"The full frequency range is there: content reaches {(bw or 0.0) / 1000:.1f} kHz "
            f"(Nyquist {sr / 2000:.1f} kHz)."
        )
    if problem == "over_compressed":
        plr, lra = _num(facts, "plr_db"), _num(facts, "lra_lu")
        return (
            f"It is not over-compressed: peak-to-loudness ratio {plr if plr is not None else 0.0:.1f} dB, "
            f"loudness range {lra if lra is not None else 0.0:.1f} LU."
        )
    return "Nothing to report."


def _low_end_answer(
    asked: str, findings: Sequence[Mapping[str, Any]], facts: Mapping[str, Any], *, speech: bool
) -> tuple[str, list[Step]]:
    """ "Is the low end ok?" (``asked`` low_end), "is there enough bass?" (thin), "too boomy?" (boomy): what was
    found, else the 60-160 Hz level against the mids and against what is typical."""
    from tools.diagnose import tonal_band_hz, typical_band_db

    found = [f for f in (_f(findings, p) for p in ("boomy", "thin")) if f is not None]
    f = next((x for x in found if x.get("problem") == asked), found[0] if found else None)
    if f is not None:
        lead = "I measure it too" if f.get("problem") == asked else "Not quite"
        return f"{lead}: {f.get('evidence')}.", fixes([f], speech=speech)
    level = _num(facts, "low_end_db")
    lo, hi = tonal_band_hz("boom")
    content = "speech" if speech else "music"
    typical = typical_band_db(content, "boom")
    if level is None:
        where = "I could not measure the low end"
    else:
        side = (
            "heavier than typical"
            if level > typical + 6
            else "lighter than typical"
            if level < typical - 6
            else "close to typical"
        )
        where = (
            f"{lo:.0f}-{hi:.0f} Hz sits {level:+.1f} dB against the 250 Hz-4 kHz band ({side}; typical {content}: "
            f"{typical:+.0f} dB), within what suits some {content}"
        )
    if asked == "low_end":
        return f"I find it neither boomy nor thin: {where}.", []
    return _not_measured(asked, where, speech=speech)


def _not_measured(problem: str, evidence: str, *, speech: bool) -> tuple[str, list[Step]]:
    """A tonal problem the person hears and the diagnosis did not find: what was measured, and a gentle fix
    offered anyway."""
    st = fix_step(
        {"problem": problem, "severity": 0.3, "evidence": f"you hear it as {problem}"}, speech=speech
    )
    return (
        f"I don't measure it as {problem.replace('_', ' ')}: {evidence}. If you hear it, I can still adjust it.",
        [st] if st is not None else [],
    )


def _tone_evidence(facts: Mapping[str, Any]) -> str:
    c, tilt = _num(facts, "spectral_centroid_hz"), _num(facts, "spectral_tilt_db_per_octave")
    parts = []
    if c is not None:
        parts.append(f"spectral centroid {c:.0f} Hz")
    if tilt is not None:
        parts.append(f"tilt {tilt:.1f} dB/octave")
    return ", ".join(parts) or "the tonal balance is within the usual range"


# ------------------------------------------------------------------ questions about the conversation


def _asked_tool(text: str, ran: Sequence[str]) -> str | None:
    """The tool a "why did you …?" question is about, read with the planner's own vocabulary (the words
    that would ask for that tool), preferring one that ran."""
    from agents.semantic.parse import parse

    asked = re.sub(r"^.*?\bwhy (?:did|do|would) (?:you|it)\b", "", text)
    parsed = parse(asked)
    tools: list[str] = []
    for clause in parsed.clauses:
        for m in clause.matches:
            if m.kind == "genre":
                tools.append("genre_preset")
            elif m.kind == "platform":
                tools.append("master")
            else:
                tools.extend(tool for tool, _ in m.obj.steps)
    if parsed.repair:
        tools.extend(("denoise", "declip", "dereverb"))
    return next((t for t in tools if t in ran), tools[0] if tools else None)


def _step_line(o: Mapping[str, Any]) -> str:
    """A step in plain words, as the turn's explanation says it ("reverb (amount 50 %)", "master (loudness
    -14 LUFS, peaks under -1 dBTP, for Spotify)")."""
    from agents.explain import fmt_params

    shown = fmt_params(str(o.get("tool")), dict(o.get("params") or {}))
    return f"{str(o.get('tool')).replace('_', ' ')}" + (f" ({shown})" if shown else "")


def answer_history(q: Question, history: Sequence[Mapping[str, Any]]) -> Plan:
    runs = [t for t in history if t.get("kind") in ("process", "adjust") and t.get("outcomes")]
    if not runs:
        undone = [t for t in history if t.get("kind") in ("undo", "reset")]
        text = (
            "I haven't changed anything in this conversation yet."
            if not undone
            else "Nothing is applied right now: the last change was undone."
        )
        return Plan(kind="answer", answer=text, notes=[])
    last = runs[-1]
    outcomes = [o for o in last.get("outcomes") or [] if o.get("status") in ("applied", "trimmed")]
    plan_steps = {s.get("tool"): s for s in (last.get("plan") or {}).get("steps") or []}
    why = _asked_tool(q.text, [str(o.get("tool")) for o in outcomes]) if q.text.startswith("why") else None
    if why is not None:
        step = plan_steps.get(why)
        if step is None or not any(o.get("tool") == why for o in outcomes):
            ran = ", ".join(_step_line(o) for o in outcomes) or "nothing"
            return Plan(
                kind="answer",
                answer=f"I didn't use {why.replace('_', ' ')} on the last turn "
                f'("{last.get("request")}"); I ran: {ran}.',
            )
        o = next(o for o in outcomes if o.get("tool") == why)
        reason = step.get("reason") or "it was part of the plan for your request"
        return Plan(
            kind="answer", answer=f'For "{last.get("request")}" I ran {_step_line(o)}. Why: {reason}.'
        )
    before, after = last.get("metrics_before") or {}, last.get("metrics_after") or {}
    lines = [f'For "{last.get("request")}" I ran: ' + "; ".join(_step_line(o) for o in outcomes) + "."]
    skipped = [o for o in last.get("outcomes") or [] if o.get("status") in ("skipped", "rolled_back")]
    if skipped:
        lines.append(
            "Left out: "
            + "; ".join(f"{o.get('tool')} ({o.get('why') or o.get('status')})" for o in skipped)
            + "."
        )
    changes = []
    for key, label, unit in (
        ("integrated_lufs", "loudness", "LUFS"),
        ("true_peak_dbtp", "true peak", "dBTP"),
        ("lra_lu", "loudness range", "LU"),
        ("spectral_centroid_hz", "centroid", "Hz"),
        ("noise_floor_dbfs", "noise floor", "dBFS"),
        ("stereo_width", "width", ""),
    ):
        b, a = before.get(key), after.get(key)
        if isinstance(b, (int, float)) and isinstance(a, (int, float)) and abs(a - b) > 0.05:
            changes.append(f"{label} {b:.1f} → {a:.1f} {unit}".rstrip())
    if changes:
        lines.append("What changed: " + ", ".join(changes) + ".")
    return Plan(kind="answer", answer=" ".join(lines))
