"""The offline semantic planner: vocabulary + numbers + analysis → a `Plan` (not yet validated).

Fast path: regexes over the vocabulary (no model). Only clauses the vocabulary cannot explain
go to the sentence embedder (`agents.semantic.intents`), loaded once on first need.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agents.plan import WHOLE_MIX, Forbidden, Plan, Step
from agents.semantic import vocabulary as V
from agents.semantic.parse import Clause, Match, Parsed, _compiled, bare_lufs, parse

#: the param each tool's overall "how much" lives in, and the contract default
AMOUNT_KEY: dict[str, tuple[str, float]] = {
    "denoise": ("strength", 0.6), "declip": ("strength", 0.8), "dereverb": ("strength", 0.5),
    "restore": ("strength", 0.7), "bandwidth_extension": ("amount", 0.5), "vocoder_enhance": ("amount", 1.0),
    "pitch_correct": ("strength", 0.8), "dynamic_eq": ("amount", 0.5), "de_ess": ("amount", 0.5),
    "compress": ("amount", 0.5), "saturation": ("amount", 0.3), "reverb": ("amount", 0.25),
    "delay": ("amount", 0.25), "genre_preset": ("intensity", 0.6), "reference_match": ("intensity", 0.7),
}
EQ_DB = ("bright_db", "warm_db", "mud_db", "boom_db", "box_db", "presence_db", "air_db")
VOICE_TOOLS = ("pitch_correct", "vocoder_enhance", "de_ess")

REVERB_SIZE = [
    (r"short(er)?|tight(er)?|smaller|less (long|tail)", {"decay_s": 0.8, "room_size": 0.3}),
    (r"long(er)?|bigger|huge|massive|endless", {"decay_s": 3.0, "room_size": 0.85}),
]
REVERB_STYLES = [
    (r"cathedral|church", {"style": "church", "room_size": 0.9, "decay_s": 4.0, "damping": 0.6}),
    (r"(concert )?hall|stadium|arena|big room|large room|huge", {"style": "hall", "room_size": 0.8, "decay_s": 2.5}),
    (r"plate", {"style": "plate", "room_size": 0.5}),
    (r"small room|booth|tight room|small space|small", {"style": "small", "room_size": 0.2, "decay_s": 0.5}),
    (r"room", {"style": "room", "room_size": 0.4}),
]
DELAY_STYLES = [
    (r"slap[- ]?back", {"style": "slapback", "time_ms": 120.0, "feedback": 0.0}),
    (r"ping[- ]?pong", {"style": "ping_pong", "time_ms": 375.0, "feedback": 0.35}),
]
LOWCUT_CTX = re.compile(r"low[- ]?cut|high[- ]?pass|hpf|roll[- ]?off|below|under|rumble|sub")
HIGHCUT_CTX = re.compile(r"high[- ]?cut|low[- ]?pass|lpf|above")
CUT_CTX = re.compile(r"\b(cut|dip|reduce|lower|notch|scoop|remove|tame|attenuate|take out)\b")
BOOST_CTX = re.compile(r"\b(boost|add|lift|raise|increase|bump|push)\b")
PLATFORM_NAMES = {"apple_music": "Apple Music", "youtube": "YouTube", "broadcast": "EBU R128 broadcast",
                  "audiobook": "ACX audiobook", "club": "club"}

GENRE_CONTEXT = re.compile(r"\b(?:my|our|for (?:my|our|the|a)) [\w&\- ]{0,14}?\b(?:song|track|tune|record|beat|album|demo|"
                           r"vocals?|verse|singer|band|artist|podcast|project|cover|ep|single)\b")
STYLE_CUE = re.compile(r"\b(?:style|vibe|feel|preset|genre|flavou?r|sound like|sounds like|like a|master(?:ing|ed)?|"
                       r"make it|turn it|give it|into)\b")
CONSTRAINT_CUES = {"not", "don't", "dont", "do not", "never", "doesn't", "does not", "shouldn't", "mustn't"}
CAPABILITIES = ("mixpilot works on audio: cleaning (noise, clipping, room echo), tone (brighter, warmer, less "
                "muddy, less harsh, de-essing), dynamics (compression, punch, glue), space (reverb, delay, width), "
                "tuning vocals to a key, genre styles, and mastering to a loudness target (Spotify, Apple Music, "
                "YouTube, podcasts, broadcast). Try e.g. 'clean this up and master it for Spotify'.")


#: typical integrated loudness of a genre's masters, when tools/presets/<genre>.toml cannot be read
GENRE_LUFS = {"pop": -9.0, "rock": -9.0, "hip_hop": -8.5, "edm": -8.0, "rnb": -10.0, "jazz": -16.0,
              "classical": -20.0, "acoustic": -14.0, "lofi": -14.0, "metal": -8.0, "country": -10.0, "speech": -16.0}


@functools.lru_cache(maxsize=32)
def genre_loudness(genre: str) -> float:
    """The genre preset's ``loudness_lufs`` (tools/presets/<genre>.toml), the master target for "in a pop style"."""
    import tomllib
    from pathlib import Path

    import tools

    try:
        path = Path(tools.__file__).with_name("presets") / f"{genre}.toml"
        value = float(tomllib.loads(path.read_text())["loudness_lufs"])
        return max(-30.0, min(-6.0, value))
    except (OSError, KeyError, ValueError, tomllib.TOMLDecodeError):
        return GENRE_LUFS.get(genre, -14.0)


@dataclass
class Draft:
    """Steps in the order they were asked for, plus what was ruled out and notes."""

    steps: list[Step] = field(default_factory=list)
    forbidden: Forbidden = field(default_factory=Forbidden)
    notes: list[str] = field(default_factory=list)
    explicit_tools: set[str] = field(default_factory=set)
    platform: tuple | None = None  # the first platform named (its target wins)
    platform_text: str = ""

    def note(self, n: str) -> None:
        if n and n not in self.notes:
            self.notes.append(n)

    def find(self, tool: str, target: str | None = None) -> Step | None:
        for s in self.steps:
            if s.tool == tool and (target is None or s.target == target):
                return s
        return None

    def add(self, tool: str, params: Mapping[str, Any], target: str, reason: str, *, merge_db: bool = False,
            loose: bool = False) -> Step:
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
                    merged[k] = max(a, v, key=abs) if a * v > 0 else max(-12.0, min(12.0, a + v))
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
        return Plan(steps=self.steps, source="semantic", notes=self.notes)


# ------------------------------------------------------------------ scaling by intensity


def scaled(tool: str, params: Mapping[str, Any], level: str | None) -> dict[str, Any]:
    """Apply an intensity level to a step's base params (amount keys, EQ gains, width)."""
    p = dict(params)
    if tool in AMOUNT_KEY:
        key, default = AMOUNT_KEY[tool]
        base = float(p.get(key, default))
        if level in V.LEVEL_AMOUNT:
            target = V.LEVEL_AMOUNT[level]
            base = max(base, target) if level in ("lot", "max") else min(base, target) if base > target else target
            if level in ("touch", "bit", "gentle"):
                base = target
        p[key] = round(base, 3)
    factor = V.LEVEL_FACTOR.get(level or "", 1.0)
    for k in EQ_DB:
        if k in p:
            p[k] = round(max(-12.0, min(12.0, float(p[k]) * factor)), 2)
    if tool == "stereo_width" and "width" in p and p["width"] > 0:
        p["width"] = round(max(0.0, min(2.0, 1.0 + (float(p["width"]) - 1.0) * factor)), 3)
    if tool == "master" and "target_lufs" in p and level:
        t = float(p["target_lufs"])
        if t > -14.0:  # louder than the streaming default: intensity moves it further or back
            p["target_lufs"] = round(max(-30.0, min(-6.0, -14.0 + (t + 14.0) * factor)), 1)
        elif t < -14.0 and t != -16.0 and t != -23.0 and t != -20.0:
            p["target_lufs"] = round(max(-30.0, min(-6.0, -14.0 + (t + 14.0) * factor)), 1)
    return p


# ------------------------------------------------------------------ the planner


def _target(tool: str, clause: Clause, parsed: Parsed, term_voice: bool) -> str:
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


def _platform_params(pl: tuple[str, str | None, float, float, bool]) -> dict[str, Any]:
    _, platform, lufs, tp, _ = pl
    p: dict[str, Any] = {"target_lufs": lufs, "true_peak_dbtp": tp}
    if platform:
        p["platform"] = platform
    return p


def _platform_reason(pl: tuple[str, str | None, float, float, bool], text: str) -> str:
    name = PLATFORM_NAMES.get(pl[1] or "", (pl[1] or text).replace("_", " ").title())
    return f"{name} loudness: {pl[2]:g} LUFS, true peak {pl[3]:g} dBTP"


def _apply_match(d: Draft, m: Match, clause: Clause, parsed: Parsed) -> None:
    if m.kind == "genre":
        if GENRE_CONTEXT.search(parsed.text[max(0, m.start - 12):m.end + 12]) and not STYLE_CUE.search(clause.text):
            return  # "clean up the vocals for my rap song": the genre is context, not a style request
        if m.negated:
            d.note(f"no {m.obj.replace('_', '-')} styling, as asked")
            return
        d.add("genre_preset", scaled("genre_preset", {"genre": m.obj}, clause.level), "mix",
              f"{m.obj.replace('_', '-')} tonal balance, dynamics and width")
        d.explicit_tools.add("genre_preset")
        return
    if m.kind == "platform":
        if m.negated:
            return
        strong = m.obj[4] or any(x.kind == "term" and x.obj.key == "master_tool" for x in clause.matches) \
            or re.search(r"\bfor (a |the |my )?podcast|podcast[- ](ready|standard|loudness|level|spec|master)",
                         parsed.text) is not None
        if strong:
            if d.platform is not None:
                if d.platform[2] != m.obj[2]:
                    d.note(f"one loudness target per plan: kept {d.platform_text} ({d.platform[2]:g} LUFS), "
                           f"not {m.text} ({m.obj[2]:g} LUFS)")
                return
            d.platform, d.platform_text = m.obj, m.text
            d.add("master", _platform_params(m.obj), "mix", _platform_reason(m.obj, m.text))
            d.explicit_tools.add("master")
        return
    term: V.Term = m.obj
    tools = [t for t, _ in term.steps]
    if term.key in ("louder", "quieter", "max_loud") and clause.scope in ("drums", "bass", "other") \
            and not clause.scope_negated:
        d.note(f"I can't change the {clause.scope}' level on its own in a mixed recording; I left the loudness as is")
        return
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
    if m.modifier == "less" and term.kind != "problem":
        if term.inverse is None:
            steps = term.steps if term.kind == "tool" and term.key != "compress_tool" else ()
            if not steps:
                d.note(f"I can't take away '{m.text}' as such; say what you'd like instead (e.g. warmer, softer)")
        else:
            steps = term.inverse
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
            for what, key, fast, slow in (("attack", "attack_ms", 5.0, 40.0), ("release", "release_ms", 60.0, 400.0)):
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
                params["feedback"] = {"touch": 0.15, "bit": 0.2, "gentle": 0.2, "half": 0.45, "lot": 0.6,
                                      "max": 0.75}[clause.level]
                d.add(tool, params, _target(tool, clause, parsed, False), term.reason, loose=True)
                d.explicit_tools.add(tool)
                continue
        elif tool == "pitch_correct":
            if parsed.key:
                params.update({"key": parsed.key[0], "scale": parsed.key[1]})
            if re.search(r"t-?pain|hard[- ]?tun\w*|robotic|heavy auto-?tune|obvious auto-?tune", parsed.text):
                params.update({"strength": 1.0, "retune_ms": 5.0})
            elif re.search(r"natural|subtle|transparent|gentle", clause.text):
                params.update({"strength": 0.6, "retune_ms": 120.0})
        target = term.target or _target(tool, clause, parsed, term.voice)
        if target == "vocals" and parsed.speech:
            target = "speech"
        loose = term.target is None and not (clause.scope and not clause.scope_negated)
        d.add(tool, scaled(tool, params, clause.level), target, term.reason, merge_db=True, loose=loose)
        d.explicit_tools.add(tool)


def _apply_numbers(d: Draft, clause: Clause, parsed: Parsed, analysis: Mapping[str, Any] | None = None) -> None:
    ctools = [s for s in d.steps if s.tool in {t for m in clause.matches if m.kind == "term" for t, _ in
                                               (m.obj.steps or m.obj.inverse or ())}]
    text = clause.text

    def clause_step(tool: str) -> Step | None:
        return next((s for s in ctools if s.tool == tool), None) or d.find(tool)

    def upd(tool: str, params: dict[str, Any], reason: str) -> Step:
        have = clause_step(tool)
        if have is not None:
            have.params = {**have.params, **params}
            return have
        return d.add(tool, params, _target(tool, clause, parsed, False), reason)

    hz = [n for n in clause.numbers if n.unit == "hz"]
    dbs = [n for n in clause.numbers if n.unit == "db"]
    for n in clause.numbers:
        rel = n.start - clause.start
        before = text[max(0, rel - 30): rel] + " " + text[rel + (n.end - n.start): rel + (n.end - n.start) + 14]
        if n.unit == "lufs":
            d.add("master", {"target_lufs": -abs(n.value)}, "mix", f"loudness target {-abs(n.value):g} LUFS")
            d.explicit_tools.add("master")
        elif n.unit == "dbtp":
            d.add("master", {"true_peak_dbtp": -abs(n.value)}, "mix", f"true-peak ceiling {-abs(n.value):g} dBTP")
        elif n.unit == "ratio":
            upd("compress", {"ratio": n.value}, f"{n.value:g}:1 compression")
        elif n.unit == "hz":
            if clause_step("de_ess") is not None and re.search(r"de-?ess|sibil|ess", text):
                clause_step("de_ess").params["low_hz"] = n.value
            elif clause_step("stereo_width") is not None or re.search(r"mono", before):
                upd("stereo_width", {"bass_mono_hz": n.value}, "bass kept mono")
            elif HIGHCUT_CTX.search(before) or (HIGHCUT_CTX.search(text) and not LOWCUT_CTX.search(text)):
                upd("eq", {"high_cut_hz": n.value}, f"low-pass at {n.value:g} Hz")
            elif LOWCUT_CTX.search(before) or (LOWCUT_CTX.search(text) and not dbs):
                upd("eq", {"low_cut_hz": n.value}, f"high-pass at {n.value:g} Hz")
            elif clause_step("dynamic_eq") is not None:
                clause_step("dynamic_eq").params["freq_hz"] = n.value
            elif dbs or CUT_CTX.search(text) or BOOST_CTX.search(text):
                gain = abs(dbs[0].value) if dbs else 3.0
                if CUT_CTX.search(text) and not BOOST_CTX.search(text) or (dbs and dbs[0].value < 0):
                    gain = -gain
                kind = "peak"
                if "shelf" in text:
                    kind = "low_shelf" if re.search(r"low[- ]?shelf", text) or n.value < 1000 else "high_shelf"
                band = {"type": kind, "freq_hz": n.value, "gain_db": gain, "q": 0.707 if kind != "peak" else 1.0}
                st = upd("eq", {}, f"{gain:+g} dB at {n.value:g} Hz")
                st.params["bands"] = [*st.params.get("bands", []), band]
        elif n.unit == "db":
            if hz:
                continue  # used by the band above
            if re.search(r"thresh", before) and clause_step("compress") is not None:
                clause_step("compress").params["threshold_db"] = -abs(n.value)
            elif re.search(r"make-?up", before) and clause_step("compress") is not None:
                clause_step("compress").params["makeup_db"] = n.value
            elif clause_step("sidechain") is not None or re.search(r"duck", text):
                upd("sidechain", {"depth_db": abs(n.value)}, f"duck {abs(n.value):g} dB")
            elif clause_step("mix") is not None:
                if re.search(r"headroom", before):
                    clause_step("mix").params["headroom_db"] = abs(n.value)
                else:
                    clause_step("mix").params["vocal_offset_db"] = n.value
            elif re.search(r"\b(louder|quieter|softer|up|down)\b", before) and clause_step("master") is not None:
                now = _analysis_value(analysis, "integrated_lufs", default=-14.0)
                sign = -1.0 if re.search(r"quieter|softer|down", before) else 1.0
                clause_step("master").params["target_lufs"] = round(max(-30.0, min(-6.0, now + sign * abs(n.value))), 1)
            elif re.search(r"true[- ]?peak|ceiling|peak", before):
                d.add("master", {"true_peak_dbtp": -abs(n.value)}, "mix", "true-peak ceiling")
            else:
                eq = next((s for s in ctools if s.tool == "eq"), None)
                if eq is not None:
                    keys = [k for k in EQ_DB if k in eq.params and eq.params[k] != 0]
                    peak = max((abs(eq.params[k]) for k in keys), default=0.0)
                    for k in keys:  # the loudest move becomes the number said; the others keep their ratio
                        eq.params[k] = round(max(-12.0, min(12.0, eq.params[k] * abs(n.value) / peak)), 2)
        elif n.unit == "pct":
            frac = n.value / 100.0
            st = next((s for s in ctools if s.tool in AMOUNT_KEY or s.tool == "stereo_width"), None)
            if st is None:
                continue
            if st.tool == "compress" and re.search(r"\bmix\b|\bwet\b|parallel|blend", before):
                st.params["mix"] = round(min(1.0, max(0.0, frac)), 3)
                continue
            if st.tool == "stereo_width":
                if re.search(r"\bby\b", before) or frac < 0.5:
                    st.params["width"] = round(min(2.0, 1.0 + frac) if st.params.get("width", 1.3) >= 1 else
                                               max(0.0, 1.0 - frac), 3)
                else:
                    st.params["width"] = round(min(2.0, frac), 3)
            else:
                st.params[AMOUNT_KEY[st.tool][0]] = round(min(1.0, max(0.0, frac)), 3)
        elif n.unit == "ms":
            if re.search(r"pre-?delay", before):
                upd("reverb", {"pre_delay_ms": n.value}, "pre-delay")
            elif re.search(r"attack", before):
                upd("compress", {"attack_ms": n.value}, "attack time")
            elif re.search(r"release", before):
                upd("compress", {"release_ms": n.value}, "release time")
            elif re.search(r"retune|tun", text):
                st = clause_step("pitch_correct")
                if st is not None:
                    st.params["retune_ms"] = n.value
            elif clause_step("delay") is not None or re.search(r"delay|echo", text):
                upd("delay", {"time_ms": n.value}, f"{n.value:g} ms echo")
        elif n.unit == "s":
            if clause_step("reverb") is not None or re.search(r"reverb|decay|tail", text):
                upd("reverb", {"decay_s": n.value}, f"{n.value:g} s decay")


def _analysis_value(analysis: Mapping[str, Any] | None, *keys: str, default: float | None = None) -> float | None:
    if not analysis:
        return default
    for k in keys:
        v = analysis.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    return default


def _repairs(d: Draft, analysis: Mapping[str, Any] | None, target: str, *, default_denoise: bool) -> None:
    add = functools.partial(d.add, loose=True)
    clip = _analysis_value(analysis, "clipping_ratio", "clip_ratio")
    snr = _analysis_value(analysis, "snr_db", "snr_estimate_db")
    bw = _analysis_value(analysis, "bandwidth_hz", "effective_bandwidth_hz")
    found = False
    if clip is not None and clip >= 1e-4:
        add("declip", {"strength": 0.8}, target, f"the recording clips ({clip * 100:.2g}% of samples)")
        found = True
    if snr is not None and snr < 30.0:
        strength = 0.75 if snr < 15 else 0.6 if snr < 22 else 0.45
        if target != "speech" and strength > 0.6:  # SNR estimates on music run low: stay moderate
            strength = 0.6
        add("denoise", {"strength": strength}, target, f"audible noise (SNR about {snr:.0f} dB)")
        found = True
    if bw is not None and bw < 11000.0:
        add("bandwidth_extension", {"amount": 0.5}, "mix", f"the top end stops near {bw / 1000:.1f} kHz")
        found = True
    if not found and (analysis is None or not analysis) and default_denoise:
        add("denoise", {"strength": 0.5}, target, "clean up noise")


def _speech_chain(d: Draft, analysis: Mapping[str, Any] | None, *, with_master: bool) -> None:
    t = "speech"
    _repairs(d, analysis, t, default_denoise=True)

    def add(tool: str, params: dict[str, Any], reason: str) -> None:
        have = d.find(tool)
        if tool in d.forbidden.tools:
            return
        if have is None:
            d.add(tool, params, t, reason)
        else:  # what the person said outright wins over the chain's defaults
            have.params = {**params, **have.params}

    if d.find("denoise") is None:
        add("denoise", {"strength": 0.4}, "gentle noise clean-up for speech")
    add("eq", dict(V.SPEECH_EQ), "speech EQ: rumble cut, less mud, more presence")
    add("de_ess", {"amount": 0.4}, "tame sibilance")
    add("compress", {"amount": 0.5, "ratio": 3.0, "attack_ms": 10.0, "release_ms": 120.0}, "even out the voice")
    if with_master and d.find("master") is None:
        d.add("master", {"target_lufs": -16.0, "true_peak_dbtp": -1.0, "platform": "podcast"}, "mix",
              "podcast loudness: -16 LUFS, true peak -1 dBTP")


def _is_speech(parsed_speech: bool, analysis: Mapping[str, Any] | None) -> bool:
    p = _analysis_value(analysis, "speech_probability", "speech_prob")
    return parsed_speech or (p is not None and p >= 0.6)


def plan_semantic(request: str, *, analysis: Mapping[str, Any] | None = None, intents: Any = None) -> tuple[Plan, Forbidden]:
    """Plan ``request`` offline. ``intents`` is an `IntentMatcher` (or None to skip embedding)."""
    speech_a = _is_speech(False, analysis)
    parsed = parse(request, speech_hint=speech_a)
    d = Draft()
    d.forbidden.targets |= parsed.forbidden_targets
    if not parsed.text:
        d.note("Say what you would like done to the recording. " + CAPABILITIES)
        return d.to_plan(), d.forbidden

    for clause in parsed.clauses:
        for m in clause.matches:
            _apply_match(d, m, clause, parsed)
    for clause in parsed.clauses:  # numbers said outright win over what words implied
        _apply_numbers(d, clause, parsed, analysis)

    text = parsed.text
    v = bare_lufs(text)
    lufs_said = any(n.unit == "lufs" for c in parsed.clauses for n in c.numbers)
    if v is not None and not lufs_said and re.search(r"master|loud|quiet|target|lufs|normali|level", text):
        d.add("master", {"target_lufs": v}, "mix", f"loudness target {v:g} LUFS")
    transposing = any(w.startswith("transpose") for w in parsed.unsupported)
    if parsed.key and d.find("pitch_correct") is None and re.search(r"\b(key|scale|tune|pitch)", text) \
            and not transposing:
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
        d.note(f"mixpilot can't {what}; it plans audio processing (cleaning, tone, dynamics, space, tuning, "
               "genre styles, mastering)")
    if parsed.unsupported and all(st.tool == "genre_preset" for st in d.steps):
        d.steps.clear()  # "play some jazz", "make a trap beat": the genre was the object of what we can't do
        return d.to_plan(), d.forbidden

    # generic asks: the analysis fills the gaps
    speech = parsed.speech or speech_a
    generic = parsed.repair or parsed.improve or parsed.mixdown
    explicit = {s.tool for s in d.steps}
    if generic:
        rep_target = "speech" if speech else "mix"
        repair_scope = next((c.scope for c in parsed.clauses if c.scope and not c.scope_negated
                             and re.search(r"clean|fix|repair|tidy", c.text)), None)
        if repair_scope and not speech:
            rep_target = repair_scope
        if speech and (parsed.improve or parsed.repair) and not parsed.only:
            with_master = parsed.improve or "master" in explicit or bool(re.search(r"podcast", text))
            _speech_chain(d, analysis, with_master=with_master)
        else:
            _repairs(d, analysis, rep_target, default_denoise=parsed.repair)
            if (parsed.improve or parsed.mixdown) and not parsed.only:
                if d.find("eq") is None:
                    d.add("eq", dict(V.EQ_GENTLE), "mix", "gentle tonal balance")
                if d.find("compress") is None and "compress" not in d.forbidden.tools:
                    d.add("compress", {"amount": 0.35, "ratio": 2.0, "attack_ms": 30.0, "release_ms": 200.0}, "mix",
                          "gentle glue compression")
                if d.find("master") is None:
                    d.add("master", {"target_lufs": -14.0, "true_peak_dbtp": -1.0}, "mix",
                          "finish at the streaming loudness of -14 LUFS")
    elif analysis and not parsed.only:
        clip = _analysis_value(analysis, "clipping_ratio")
        snr = _analysis_value(analysis, "snr_db")
        if clip is not None and clip >= 1e-3 and "declip" not in explicit:
            d.note("the recording has clipped peaks; ask to 'fix the clipping' to repair them")
        speechy = (_analysis_value(analysis, "speech_probability") or 0.0) >= 0.5
        if snr is not None and snr < 15 and speechy and "denoise" not in explicit:
            d.note(f"the recording is noisy (SNR about {snr:.0f} dB); ask to 'clean it up' to reduce the noise")

    # master defaults: a master step always carries its target and ceiling
    st = d.find("master")
    if st is not None:
        genre = d.find("genre_preset")
        if "target_lufs" not in st.params and genre is not None and genre.params.get("genre") != "speech":
            g = genre.params["genre"]
            st.params["target_lufs"] = genre_loudness(g)
            st.reason = f"{st.reason}; {g.replace('_', '-')} masters sit near {st.params['target_lufs']:g} LUFS"
        if "target_lufs" not in st.params:
            st.params["target_lufs"] = -16.0 if speech else -14.0  # spoken word: the podcast convention
        st.params.setdefault("true_peak_dbtp", -1.0)
        if re.search(r"\b(natural|transparent|dynamic|gentle)\b", text) and st.params["target_lufs"] > -14.0 \
                and not re.search(r"loud|hot|competitive|radio", text):
            st.params["target_lufs"] = -14.0

    # a positive, explicit ask wins over a negated mention elsewhere ("no limiting, just normalize it")
    revived = d.forbidden.tools & d.explicit_tools
    if revived:
        d.forbidden.tools -= revived
        d.notes = [n for n in d.notes if not any(f"leaving out {t.replace('_', ' ')}" in n for t in revived)]
    eq = d.find("eq")
    if eq is not None and not eq.params:
        eq.params = dict(V.EQ_GENTLE)

    if parsed.info_question:
        d.steps.clear()
        d.note("I plan and run audio processing rather than answer questions. " + CAPABILITIES)
        return d.to_plan(), d.forbidden

    # a question or chat that names no audio work is out of scope (no need to embed it)
    if re.search(r"^(?:so,? |hi,? |hey,? )?(?:what can you do|what do you do|help|how does this work|what are you)\b",
                 text):
        d.steps.clear()
        d.note(CAPABILITIES)
        return d.to_plan(), d.forbidden
    if parsed.question and not generic and not any(m.kind == "term" for c in parsed.clauses for m in c.matches):
        d.steps.clear()
        d.note("That is outside what I can do. " + CAPABILITIES)
        return d.to_plan(), d.forbidden

    # nearest intent for what the vocabulary could not explain
    comp = _compiled()
    unexplained = [c for c in parsed.clauses if not c.matches and not c.numbers and c.content
                   and not any(comp[k].search(c.text) for k in ("repair", "improve", "mixdown"))]
    matched_any = any(c.matches for c in parsed.clauses)
    nothing = not d.steps and not d.forbidden and not generic and not matched_any
    if intents is not None and (nothing or unexplained):
        queries = [parsed.text] if nothing else [c.text for c in unexplained if len(c.content) >= 1]
        _nearest(d, queries, intents, parsed, analysis, whole=nothing)
    if not d.steps and not d.notes and not d.forbidden:
        if parsed.audio_words:
            d.note("I am not sure what to change. Could you say what you'd like, e.g. 'brighter', 'less muddy', "
                   "'remove the noise', 'more punch' or 'master for Spotify'?")
        else:
            d.note("That is outside what I can do. " + CAPABILITIES)
    if parsed.only and d.steps:
        d.note("only what you asked for; nothing added")
    return d.to_plan(), d.forbidden


def _nearest(d: Draft, queries: list[str], intents: Any, parsed: Parsed, analysis: Mapping[str, Any] | None,
             *, whole: bool) -> None:
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
                d.note("I am not sure what to change. Could you say what you'd like, e.g. 'brighter', 'less muddy', "
                       "'remove the noise', 'more punch' or 'master for Spotify'?" if parsed.audio_words
                       else "That is outside what I can do. " + CAPABILITIES)
            continue
        if status == "unsure":
            if whole:
                d.note(f"I am not sure what you mean by '{q}'. Did you mean '{intent.example}'? Please say it in "
                       "other words, e.g. 'brighter', 'less muddy', 'remove the noise' or 'master for Spotify'.")
            continue
        for tool, params in intent.steps:
            if tool in d.forbidden.tools:
                continue
            if tool == "__repair__":
                _repairs(d, analysis, "speech" if parsed.speech else "mix", default_denoise=True)
                continue
            if tool == "__speech__":
                _speech_chain(d, analysis, with_master=True)
                continue
            target = "speech" if parsed.speech and tool in VOICE_TOOLS else "mix"
            if tool in ("pitch_correct", "vocoder_enhance") and not parsed.speech:
                target = "vocals"
            d.add(tool, scaled(tool, params, level), target, intent.reason, merge_db=True)
        d.note(f"read '{q}' as '{intent.example}' (similarity {score:.2f})")
