"""The offline semantic planner: vocabulary + numbers + analysis → a `Plan` (not yet validated).

Fast path: regexes over the vocabulary (no model). Only clauses the vocabulary cannot explain
go to the sentence embedder (`agents.semantic.intents`), loaded once on first need.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from agents.contract import REPAIRS_FOR
from agents.plan import VOICE_TOOLS, Forbidden, Plan
from agents.semantic import vocabulary as V
from agents.semantic.chains import analysis_value, genre_loudness, is_speech, repairs, speech_chain
from agents.semantic.draft import AMOUNT_KEY, EQ_DB, Draft, scaled, target_for
from agents.semantic.numbers import apply_numbers
from agents.semantic.parse import Clause, Match, Parsed, _compiled, bare_lufs, parse

__all__ = ["AMOUNT_KEY", "EQ_DB", "Draft", "genre_loudness", "plan_semantic", "scaled"]

REVERB_SIZE = [
    (r"short(er)?|tight(er)?|smaller|less (long|tail)", {"decay_s": 0.8, "room_size": 0.3}),
    (r"long(er)?|bigger|huge|massive|endless", {"decay_s": 3.0, "room_size": 0.85}),
]
REVERB_STYLES = [
    (r"cathedral|church", {"style": "church", "room_size": 0.9, "decay_s": 4.0, "damping": 0.6}),
    (
        r"(concert )?hall|stadium|arena|big room|large room|huge",
        {"style": "hall", "room_size": 0.8, "decay_s": 2.5},
    ),
    (r"plate", {"style": "plate", "room_size": 0.5}),
    (r"small room|booth|tight room|small space|small", {"style": "small", "room_size": 0.2, "decay_s": 0.5}),
    (r"room", {"style": "room", "room_size": 0.4}),
]
DELAY_STYLES = [
    (r"slap[- ]?back", {"style": "slapback", "time_ms": 120.0, "feedback": 0.0}),
    (r"ping[- ]?pong", {"style": "ping_pong", "time_ms": 375.0, "feedback": 0.35}),
]
PLATFORM_NAMES = {
    "apple_music": "Apple Music",
    "youtube": "YouTube",
    "broadcast": "EBU R128 broadcast",
    "audiobook": "ACX audiobook",
    "club": "club",
}

GENRE_CONTEXT = re.compile(
    r"\b(?:my|our|for (?:my|our|the|a)) [\w&\- ]{0,14}?\b(?:song|track|tune|record|beat|album|demo|"
    r"vocals?|verse|singer|band|artist|podcast|project|cover|ep|single)\b"
)
#: "master this pop song", "mix the rock track": the genre names what the recording is (only a style word,
#: not "master" or "make it", turns it into a style request there)
GENRE_NOUN = re.compile(
    r"\b(?:this|that|the|his|her|their|your)\s+[\w&\- ]{0,14}?\b(?:song|track|tune|record|beat|demo|single|cover|"
    r"mix|recording|album|ep)\b"
)
EXPLICIT_STYLE = re.compile(r"\b(?:style|vibe|feel|preset|genre|flavou?r|sounds? like|like a)\b")
STYLE_CUE = re.compile(
    r"\b(?:style|vibe|feel|preset|genre|flavou?r|sound like|sounds like|like a|master(?:ing|ed)?|"
    r"make it|turn it|give it|into)\b"
)
MAX_REQUEST_CHARS = 2000
WHOLE_OBJECT = re.compile(
    r"\b(?:the (?:whole |entire |full )?(?:mix|track|song|master|thing)|everything|all of it)\b"
)
CONSTRAINT_CUES = {"not", "don't", "dont", "do not", "never", "doesn't", "does not", "shouldn't", "mustn't"}
CAPABILITIES = (
    "mixpilot works on audio: cleaning (noise, clipping, room echo), tone (brighter, warmer, less "
    "muddy, less harsh, de-essing), dynamics (compression, punch, glue), space (reverb, delay, width), "
    "tuning vocals to a key, genre styles, and mastering to a loudness target (Spotify, Apple Music, "
    "YouTube, podcasts, broadcast). Try e.g. 'clean this up and master it for Spotify'."
)


# ------------------------------------------------------------------ the planner


def _separation_keeps(d: Draft, text: str) -> None:
    """What a separation hands on (`separate`'s ``keep``): "extract the vocals" → the vocal stem, which the
    steps after it then work on as a whole; "karaoke" → the mix without the vocals; else the mix."""
    st = d.find("separate")
    if st is None or "keep" in st.params:
        return
    keep = next((k for pat, k in _KEEP if pat.search(text)), "mix")
    if keep == "mix":
        return
    st.params["keep"] = keep
    if keep in STEM_NAMES:  # the stem is the audio from here on: separate first, its steps on the whole
        d.steps.remove(st)
        d.steps.insert(0, st)
        for other in d.steps[1:]:
            if other.target == keep:
                other.target = "mix"


_KEEP = [(re.compile(rf"\b(?:{pat})\b"), keep) for pat, keep in V.SEPARATE_KEEP]
STEM_NAMES = ("vocals", "drums", "bass", "other")


#: a part of the song's form (no step works on a time range: the whole recording is processed)
SECTION = re.compile(
    r"\b(?:the|in|on|during)\s+(?:\w+\s+)?(chorus|verse|intro|outro|bridge|drop|breakdown|hook)(?:es|s)?\b"
)
#: "not so bright", "make it not as boomy": an ask for less (the words before it are only how one asks;
#: "it's not that noisy" describes, and asks for nothing)
NOT_SO = re.compile(
    r"^(?:please |just |ok,? |okay,? |hmm,? )?(?:(?:can|could) you |)(?:make (?:it|this) |keep (?:it|this) |a (?:bit|little) )?"
    r"not (?:so|as|that|too|quite so)(?: much| many)?\s+$"
)
#: the loudest a plain "louder" takes a measured recording (LUFS)
LOUDEST_LUFS = -8.0
#: the reasons the "louder" / "quieter" words give their master step (how `_relative_to_heard` knows it)
_LOUDER_REASON, _QUIETER_REASON = (
    next(t.reason for t in V.TERMS if t.key == k) for k in ("louder", "quieter")
)


def _relative_to_heard(st: Any, measured: float | None, speech: bool, level: str | None) -> None:
    """ "Louder" / "too quiet" on a recording that was measured: up by the intensity's step
    (`V.LOUDNESS_STEP_DB`, as a follow-up moves it), and at least to the reference (-16 LUFS spoken word, the
    streaming reference otherwise); "quieter" / "too loud": down by the step. Without a measurement the
    words' fixed figures stay."""
    if measured is None or st.reason not in (_LOUDER_REASON, _QUIETER_REASON):
        return
    step = V.LOUDNESS_STEP_DB.get(level or "", V.LOUDNESS_STEP_DB[""])
    reference = V.SPOKEN_LUFS if speech else V.STREAMING_LUFS
    if st.reason == _LOUDER_REASON:
        target = min(max(measured + step, reference), max(LOUDEST_LUFS, measured))
    else:
        target = max(measured - step, -30.0)
    st.params["target_lufs"] = round(target, 1)
    st.reason = f"{st.reason}: {measured:.1f} → {target:.1f} LUFS"


def _inverse_reason(term: V.Term) -> str:
    """Why a term's inverse runs ("too quiet" runs the louder master): the reason of the term whose steps the
    inverse is, else the inverse's settings in plain words."""
    from agents.explain import fmt_params

    inverse = tuple(term.inverse or ())
    same = next((t for t in V.TERMS if t is not term and tuple(t.steps) == inverse), None)
    if same is not None:
        return same.reason
    said = "; ".join(fmt_params(tool, dict(params)) for tool, params in inverse)
    return said or f"less: {term.reason}"  # in plain words: "leaner by 3.0 dB (100-300 Hz)"


def _platform_params(pl: tuple[str, str | None, float, float, bool]) -> dict[str, Any]:
    _, platform, lufs, tp, _ = pl
    p: dict[str, Any] = {"target_lufs": lufs, "true_peak_dbtp": tp}
    if platform:
        p["platform"] = platform
    return p


def platform_reason(pl: tuple[str, str | None, float, float, bool], text: str) -> str:
    raw = (pl[1] or text).replace("_", " ")
    name = PLATFORM_NAMES.get(pl[1] or "", raw.upper() if len(raw) <= 3 else raw.title())  # CD, TV
    return f"{name} loudness: {pl[2]:g} LUFS, true peak {pl[3]:g} dBTP"


def _apply_match(d: Draft, m: Match, clause: Clause, parsed: Parsed) -> None:
    if m.kind == "genre":
        around = parsed.text[max(0, m.start - 12) : m.end + 12]
        if (GENRE_CONTEXT.search(around) and not STYLE_CUE.search(clause.text)) or (
            GENRE_NOUN.search(around) and not EXPLICIT_STYLE.search(clause.text)
        ):
            return  # "clean up the vocals for my rap song", "master this pop song": context, not a style request
        if m.negated:
            d.note(f"no {m.obj.replace('_', '-')} styling, as asked")
            return
        d.add(
            "genre_preset",
            scaled("genre_preset", {"genre": m.obj}, clause.level),
            "mix",
            f"{m.obj.replace('_', '-')} tonal balance, dynamics and width",
        )
        d.explicit_tools.add("genre_preset")
        return
    if m.kind == "platform":
        if m.negated:
            return
        strong = (
            m.obj[4]
            or any(x.kind == "term" and x.obj.key == "master_tool" for x in clause.matches)
            or re.search(
                r"\bfor (a |the |my )?podcast|podcast[- ](ready|standard|loudness|level|spec|master)",
                parsed.text,
            )
            is not None
        )
        if strong:
            if d.platform is not None:
                if d.platform[2] != m.obj[2]:
                    d.note(
                        f"one loudness target per plan: kept {d.platform_text} ({d.platform[2]:g} LUFS), "
                        f"not {m.text} ({m.obj[2]:g} LUFS)"
                    )
                return
            d.platform, d.platform_text = m.obj, m.text
            d.add("master", _platform_params(m.obj), "mix", platform_reason(m.obj, m.text))
            d.explicit_tools.add("master")
        return
    term: V.Term = m.obj
    tools = [t for t, _ in term.steps]
    if (
        term.key in ("louder", "quieter", "max_loud")
        and clause.scope in ("drums", "bass", "other")
        and not clause.scope_negated
    ):
        d.note(
            f"I can't change the {clause.scope}' level on its own in a mixed recording; I left the loudness as is"
        )
        return
    if (
        m.negated
        and (term.inverse or (term.kind == "problem" and term.steps))
        and NOT_SO.search(parsed.text[: m.start])
        and sum(len(c.matches) for c in parsed.clauses) == 1
    ):
        # "not so bright", "not as boomy please" said on its own is an ask for less of it ("brighter, but not
        # too bright" keeps the constraint: there the words ask for something else too)
        m.negated, m.modifier = False, (None if term.kind == "problem" else "less")
    if m.negated:
        if term.kind == "problem" and term.steps and m.neg_cue in CONSTRAINT_CUES:
            d.note(f"keeping clear of '{m.text}', as asked")  # "less harsh but not dull"
            return
        if term.kind == "problem" and term.steps:
            pass  # "no hiss", "without the hum": still means remove it
        elif term.kind == "tool" or term.forbids or term.key in ("reverb", "delay", "wide", "saturation"):
            for t in term.forbids or tools:
                d.forbidden.tools.add(t)
            d.note(f"leaving out {', '.join(x.replace('_', ' ') for x in (term.forbids or tools))}, as asked")
            return
        else:
            d.note(f"not making it {m.text}, as asked")
            return
    steps = term.steps
    reason = term.reason
    if m.modifier == "less" and term.kind != "problem":
        if term.inverse is None:
            steps = term.steps if term.kind == "tool" and term.key != "compress_tool" else ()
            if not steps:
                d.note(
                    f"I can't take away '{m.text}' as such; say what you'd like instead (e.g. warmer, softer)"
                )
        else:
            steps = term.inverse
            reason = _inverse_reason(term)
            if not steps:
                for t in tools:
                    d.forbidden.tools.add(t)
                if term.note:
                    d.note(term.note)
                return
    if term.forbids:
        for t in term.forbids:
            d.forbidden.tools.add(t)
    if term.note and term.kind == "problem":
        d.note(term.note)
    for tool, params in steps:
        params = dict(params)
        if tool == "reverb":
            for table in (REVERB_STYLES, REVERB_SIZE):
                for rx, extra in table:
                    if re.search(rf"\b(?:{rx})\b", clause.text):
                        params.update(extra)
                        break
        elif tool == "compress" and term.key == "compress_tool":
            for what, key, fast, slow in (
                ("attack", "attack_ms", 5.0, 40.0),
                ("release", "release_ms", 60.0, 400.0),
            ):
                if re.search(rf"\b(fast|quick|short)(er)? {what}", clause.text):
                    params[key] = fast
                elif re.search(rf"\b(slow|long)(er)? {what}", clause.text):
                    params[key] = slow
        elif tool == "delay":
            for rx, extra in DELAY_STYLES:
                if re.search(rf"\b(?:{rx})\b", m.text):
                    params.update(extra)
                    break
            if re.search(r"\bfeedback|repeats|trails?\b", clause.text) and clause.level:
                params["feedback"] = {
                    "touch": 0.15,
                    "bit": 0.2,
                    "gentle": 0.2,
                    "half": 0.45,
                    "lot": 0.6,
                    "max": 0.75,
                }[clause.level]
                d.add(tool, params, target_for(tool, clause, parsed, False), reason, loose=True)
                d.explicit_tools.add(tool)
                continue
        elif tool == "pitch_correct":
            if parsed.key:
                params.update({"key": parsed.key[0], "scale": parsed.key[1]})
            if re.search(r"t-?pain|hard[- ]?tun\w*|robotic|heavy auto-?tune|obvious auto-?tune", parsed.text):
                params.update({"strength": 1.0, "retune_ms": 5.0})
            elif re.search(r"natural|subtle|transparent|gentle", clause.text):
                params.update({"strength": 0.6, "retune_ms": 120.0})
        target = term.target or target_for(tool, clause, parsed, term.voice)
        if target == "vocals" and parsed.speech:
            target = "speech"
        loose = (
            term.target is None
            and not (clause.scope and not clause.scope_negated)
            and not WHOLE_OBJECT.search(clause.text)
        )
        d.add(tool, scaled(tool, params, clause.level), target, reason, merge_db=True, loose=loose)
        d.explicit_tools.add(tool)


def plan_semantic(
    request: str,
    *,
    analysis: Mapping[str, Any] | None = None,
    intents: Any = None,
    diagnosis: Mapping[str, Any] | None = None,
) -> tuple[Plan, Forbidden]:
    """Plan ``request`` offline. ``intents`` is an `IntentMatcher` (or None to skip embedding).

    ``diagnosis`` (`tools.diagnose.Diagnosis.to_dict()`): the recording was heard, so repairs are
    planned only for its findings, and an explicit repair order on clean audio says so."""
    speech_a = is_speech(False, analysis)
    d = Draft()
    request = request or ""
    if len(request) > MAX_REQUEST_CHARS:
        request = request[:MAX_REQUEST_CHARS]
        d.note(f"that was a long request; I read the first {MAX_REQUEST_CHARS} characters")
    parsed = parse(request, speech_hint=speech_a)
    d.forbidden.targets |= parsed.forbidden_targets
    if not parsed.text:
        d.note("Say what you would like done to the recording. " + CAPABILITIES)
        return d.to_plan(), d.forbidden

    for clause in parsed.clauses:
        for m in clause.matches:
            _apply_match(d, m, clause, parsed)
    for clause in parsed.clauses:  # numbers said outright win over what words implied
        apply_numbers(d, clause, parsed, analysis)
    d.mark_said()  # what the words set; chains and defaults below are unsaid (memory may fill them)

    text = parsed.text
    v = bare_lufs(text)
    lufs_said = any(n.unit == "lufs" for c in parsed.clauses for n in c.numbers)
    if v is not None and not lufs_said and re.search(r"master|loud|quiet|target|lufs|normali|level", text):
        d.add("master", {"target_lufs": v}, "mix", f"loudness target {v:g} LUFS")
    transposing = any(w.startswith("transpose") for w in parsed.unsupported)
    if (
        parsed.key
        and d.find("pitch_correct") is None
        and re.search(r"\b(key|scale|tune|pitch)", text)
        and not transposing
    ):
        d.add("pitch_correct", {"key": parsed.key[0], "scale": parsed.key[1]}, "vocals", "tune the voice")
    if parsed.keep_dry:
        d.forbidden.tools |= {"reverb", "delay"}
        d.note("keeping it dry: no reverb or delay")
    if parsed.keep_dynamic:
        d.forbidden.tools.add("compress")
        st = d.find("master")
        if st is not None:
            st.params["glue"] = 0.0

    for what in parsed.unsupported:
        d.note(
            f"mixpilot can't {what}; it plans audio processing (cleaning, tone, dynamics, space, tuning, "
            "genre styles, mastering)"
        )
    if parsed.unsupported and all(st.tool == "genre_preset" for st in d.steps):
        d.steps.clear()  # "play some jazz", "make a trap beat": the genre was the object of what we can't do
        return d.to_plan(), d.forbidden

    # generic asks: the analysis fills the gaps
    speech = parsed.speech or speech_a
    generic = parsed.repair or parsed.improve or parsed.mixdown
    explicit = {s.tool for s in d.steps}
    if generic:
        rep_target = "speech" if speech else "mix"
        repair_scope = next(
            (
                c.scope
                for c in parsed.clauses
                if c.scope and not c.scope_negated and re.search(r"clean|fix|repair|tidy", c.text)
            ),
            None,
        )
        if repair_scope and not speech:
            rep_target = repair_scope
        # heard and asked only to clean: repair what was found, not the whole speech chain
        if speech and (parsed.improve or (parsed.repair and diagnosis is None)) and not parsed.only:
            with_master = parsed.improve or "master" in explicit or bool(re.search(r"podcast", text))
            speech_chain(d, analysis, with_master=with_master, diagnosis=diagnosis)
        else:
            repairs(d, analysis, rep_target, default_denoise=parsed.repair, diagnosis=diagnosis)
            if (parsed.improve or parsed.mixdown) and not parsed.only:
                if d.find("eq") is None:
                    d.add("eq", dict(V.EQ_GENTLE), "mix", "gentle tonal balance")
                if d.find("compress") is None and "compress" not in d.forbidden.tools:
                    d.add(
                        "compress",
                        {"amount": 0.35, "ratio": 2.0, "attack_ms": 30.0, "release_ms": 200.0},
                        "mix",
                        "gentle glue compression",
                    )
                if d.find("master") is None:
                    d.add(
                        "master",
                        {"target_lufs": V.STREAMING_LUFS, "true_peak_dbtp": -1.0},
                        "mix",
                        f"finish at the streaming loudness of {V.STREAMING_LUFS:g} LUFS",
                    )
    elif analysis and not parsed.only:
        clip = analysis_value(analysis, "clipping_ratio")
        snr = analysis_value(analysis, "snr_db")
        if clip is not None and clip >= 1e-3 and "declip" not in explicit:
            d.note("the recording has clipped peaks; ask to 'fix the clipping' to repair them")
        speechy = (analysis_value(analysis, "speech_probability") or 0.0) >= 0.5
        if snr is not None and snr < 15 and speechy and "denoise" not in explicit:
            d.note(
                f"the recording is noisy (SNR about {snr:.0f} dB); ask to 'clean it up' to reduce the noise"
            )

    if diagnosis is not None:
        _listened(d, diagnosis, repair_asked=parsed.repair)

    section = SECTION.search(text)
    if section and d.steps:  # "make the chorus wider": there is no section editing; say what happens instead
        d.note(f"I can't work on the {section.group(1)} alone: this applies to the whole recording")

    _separation_keeps(d, text)

    # master defaults: a master step always carries its target and ceiling
    st = d.find("master")
    if st is not None:
        genre = d.find("genre_preset")
        if "target_lufs" not in st.params and genre is not None and genre.params.get("genre") != "speech":
            # a genre word shapes tone and dynamics; loudness follows the release: every major platform
            # turns louder masters down, so the genre's own figure needs a loudness word ("loud", "club",
            # "for CD": those set the target above) or a number
            g = genre.params["genre"]
            name = g.replace("_", "-")
            typical = genre_loudness(g)
            # quieter genres (jazz, classical) keep their own figure: nothing turns them up without limiting
            st.params["target_lufs"] = min(typical, V.STREAMING_LUFS)
            st.reason = (
                f"{st.reason}; the streaming reference of {V.STREAMING_LUFS:g} LUFS"
                if typical >= V.STREAMING_LUFS
                else f"{st.reason}; {name} masters sit near {typical:g} LUFS"
            )
            if typical > V.STREAMING_LUFS:
                d.note(
                    f"{name} masters often sit near {typical:g} LUFS, but streaming services turn them "
                    f"down to about {V.STREAMING_LUFS:g}, so this one masters to {V.STREAMING_LUFS:g} LUFS; "
                    f"say 'loud' or give a number (e.g. '{typical:g} LUFS') for the louder figure"
                )
        if "target_lufs" not in st.params:
            st.params["target_lufs"] = (
                V.SPOKEN_LUFS if speech else V.STREAMING_LUFS
            )  # spoken word: the podcast convention
        st.params.setdefault("true_peak_dbtp", -1.0)
        if (
            re.search(r"\b(natural|transparent|dynamic|gentle)\b", text)
            and st.params["target_lufs"] > V.STREAMING_LUFS
            and not re.search(r"loud|hot|competitive|radio", text)
        ):
            st.params["target_lufs"] = V.STREAMING_LUFS
        db_said = any(n.unit == "db" for c in parsed.clauses for n in c.numbers)
        if not (lufs_said or db_said) and d.platform is None:
            level = next((c.level for c in parsed.clauses if c.level), None)
            measured = analysis_value(analysis, "integrated_lufs") if analysis else None
            _relative_to_heard(st, measured, speech, level)
        louder_by = float(st.params["target_lufs"]) - V.STREAMING_LUFS
        if louder_by > 0.5:
            d.note(
                f"streaming services (Spotify, YouTube, Tidal) play at about {V.STREAMING_LUFS:g} LUFS and will "
                f"turn a {float(st.params['target_lufs']):g} LUFS master down about {louder_by:.0f} dB; "
                "the extra loudness only costs dynamics there"
            )

    # a positive, explicit ask wins over a negated mention elsewhere ("no limiting, just normalize it")
    revived = d.forbidden.tools & d.explicit_tools
    if revived:
        d.forbidden.tools -= revived
        d.notes = [n for n in d.notes if not any(f"leaving out {t.replace('_', ' ')}" in n for t in revived)]
    eq = d.find("eq")
    if eq is not None and not eq.params:
        if re.search(r"\beq (?:out|away|down)\b", text) and any(
            st.tool in ("dynamic_eq", "de_ess") for st in d.steps
        ):
            d.steps.remove(eq)  # "EQ out the harshness at 3k": the word named the means of the other step
        else:
            eq.params = dict(V.EQ_GENTLE)

    if parsed.info_question:
        d.steps.clear()
        d.note("I plan and run audio processing rather than answer questions. " + CAPABILITIES)
        return d.to_plan(), d.forbidden

    # a question or chat that names no audio work is out of scope (no need to embed it)
    if re.search(
        r"^(?:so,? |hi,? |hey,? )?(?:what can you do|what do you do|help|how does this work|what are you)\b",
        text,
    ):
        d.steps.clear()
        d.note(CAPABILITIES)
        return d.to_plan(), d.forbidden
    if (
        parsed.question
        and not generic
        and not any(m.kind == "term" for c in parsed.clauses for m in c.matches)
    ):
        d.steps.clear()
        d.note("That is outside what I can do. " + CAPABILITIES)
        return d.to_plan(), d.forbidden

    # nearest intent for what the vocabulary could not explain
    comp = _compiled()
    unexplained = [
        c
        for c in parsed.clauses
        if not c.matches
        and not c.numbers
        and c.content
        and not any(comp[k].search(c.text) for k in ("repair", "improve", "mixdown"))
    ]
    matched_any = any(c.matches for c in parsed.clauses)
    nothing = not d.steps and not d.forbidden and not generic and not matched_any
    if intents is not None and (nothing or unexplained):
        queries = [parsed.text] if nothing else [c.text for c in unexplained if len(c.content) >= 1]
        _nearest(d, queries, intents, parsed, analysis, whole=nothing, diagnosis=diagnosis)
    if not d.steps and not d.notes and not d.forbidden:
        if parsed.audio_words:
            d.note(
                "I am not sure what to change. Could you say what you'd like, e.g. 'brighter', 'less muddy', "
                "'remove the noise', 'more punch' or 'master for Spotify'?"
            )
        else:
            d.note("That is outside what I can do. " + CAPABILITIES)
    if parsed.only and d.steps:
        d.note("only what you asked for; nothing added")
    return d.to_plan(), d.forbidden


def nothing_to_repair(diagnosis: Mapping[str, Any]) -> str:
    """Plain words with the numbers that show the recording needs no repair."""
    facts = diagnosis.get("facts") or {}
    parts = []
    floor, snr = facts.get("noise_floor_dbfs"), facts.get("snr_db")
    if isinstance(floor, (int, float)):
        parts.append(
            f"noise floor {floor:.0f} dBFS"
            + (f" ({snr:.0f} dB under the programme)" if isinstance(snr, (int, float)) else "")
        )
    peak = facts.get("sample_peak_dbfs")
    if isinstance(peak, (int, float)):
        parts.append(f"no clipping (sample peak {peak:+.1f} dBFS)")
    bw = facts.get("bandwidth_hz")
    if isinstance(bw, (int, float)):
        parts.append(f"content up to {bw / 1000:.1f} kHz")
    return (
        "I listened and found nothing to repair: "
        + ", ".join(parts or ["no noise, hum, clipping or band limit"])
        + "."
    )


def _listened(d: Draft, diagnosis: Mapping[str, Any], *, repair_asked: bool) -> None:
    """Notes from having heard the recording: nothing to repair, or an order for a repair it doesn't need."""
    found = {str(f.get("problem")) for f in diagnosis.get("findings") or []}
    repair_steps = [s for s in d.steps if s.tool in REPAIRS_FOR]
    if repair_asked and not repair_steps:
        d.note(nothing_to_repair(diagnosis))
    for st in repair_steps:
        wanted = REPAIRS_FOR[st.tool]
        if not found.intersection(wanted):
            d.note(
                f"you asked for {st.tool.replace('_', ' ')}; I measured little "
                f"{' or '.join(w.replace('_', ' ') for w in wanted[:2])} to remove, so expect a small change "
                f"({nothing_to_repair(diagnosis).split(': ', 1)[-1].rstrip('.')})"
            )


def _nearest(
    d: Draft,
    queries: list[str],
    intents: Any,
    parsed: Parsed,
    analysis: Mapping[str, Any] | None,
    *,
    whole: bool,
    diagnosis: Mapping[str, Any] | None = None,
) -> None:
    try:
        results = intents.match(queries)
    except Exception as exc:  # the embedder is optional: say so, never fail the plan
        d.note(f"nearest-intent matching unavailable ({exc})")
        return
    levels = {c.text: c.level for c in parsed.clauses}
    for q, res in zip(queries, results):
        if res is None:
            continue
        level = levels.get(q) if not whole else next((c.level for c in parsed.clauses if c.level), None)
        intent, score, status = res
        if status == "out_of_scope":
            if whole:
                d.note("That is outside what I can do. " + CAPABILITIES)
            continue
        if status == "none":
            if whole:
                d.note(
                    "I am not sure what to change. Could you say what you'd like, e.g. 'brighter', 'less muddy', "
                    "'remove the noise', 'more punch' or 'master for Spotify'?"
                    if parsed.audio_words
                    else "That is outside what I can do. " + CAPABILITIES
                )
            continue
        if status == "unsure":
            if whole:
                d.note(
                    f"I am not sure what you mean by '{q}'. Did you mean '{intent.example}'? Please say it in "
                    "other words, e.g. 'brighter', 'less muddy', 'remove the noise' or 'master for Spotify'."
                )
            continue
        for tool, params in intent.steps:
            if tool in d.forbidden.tools:
                continue
            if tool == "__repair__":
                repairs(
                    d,
                    analysis,
                    "speech" if parsed.speech else "mix",
                    default_denoise=True,
                    diagnosis=diagnosis,
                )
                continue
            if tool == "__speech__":
                speech_chain(d, analysis, with_master=True, diagnosis=diagnosis)
                continue
            target = "speech" if parsed.speech and tool in VOICE_TOOLS else "mix"
            if tool in ("pitch_correct", "vocoder_enhance") and not parsed.speech:
                target = "vocals"
            d.add(tool, scaled(tool, params, level), target, intent.reason, merge_db=True)
        d.note(f"read '{q}' as '{intent.example}' (similarity {score:.2f})")
