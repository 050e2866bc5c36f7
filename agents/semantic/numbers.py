"""Numbers with units in a clause → params: LUFS, dBTP, Hz/kHz, dB, %, ms, s, ratios."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from agents.contract import clamp
from agents.plan import Step
from agents.semantic.chains import analysis_value
from agents.semantic.draft import AMOUNT_KEY, EQ_DB, Draft, target_for
from agents.semantic.parse import Clause, Parsed

LOWCUT_CTX = re.compile(r"low[- ]?cut|high[- ]?pass|hpf|roll[- ]?off|below|under|rumble|sub")
HIGHCUT_CTX = re.compile(r"high[- ]?cut|low[- ]?pass|lpf|above")
NOTCH_CTX = re.compile(r"\bnotch(?:es|ed|ing)?\b")
NOTCH_DB, NOTCH_Q = 12.0, 8.0  # a notch: a narrow (Q 8, ~0.18 octave) deep cut
CUT_CTX = re.compile(
    r"\b(cut|dip|reduce|lower|notch|scoop|remove|tame|attenuate|take out|too much|excess(ive)?|build-?up)\b"
)
BOOST_CTX = re.compile(r"\b(boost|add|lift|raise|increase|bump|push)\b")


def apply_numbers(
    d: Draft, clause: Clause, parsed: Parsed, analysis: Mapping[str, Any] | None = None
) -> None:
    ctools = [
        s
        for s in d.steps
        if s.tool
        in {t for m in clause.matches if m.kind == "term" for t, _ in (m.obj.steps or m.obj.inverse or ())}
    ]
    text = clause.text

    def clause_step(tool: str) -> Step | None:
        return next((s for s in ctools if s.tool == tool), None) or d.find(tool)

    def upd(tool: str, params: dict[str, Any], reason: str) -> Step:
        have = clause_step(tool)
        if have is not None:
            have.params = {**have.params, **params}
            return have
        return d.add(tool, params, target_for(tool, clause, parsed, False), reason)

    hz = [n for n in clause.numbers if n.unit == "hz"]
    dbs = [n for n in clause.numbers if n.unit == "db"]
    for n in clause.numbers:
        rel = n.start - clause.start
        before = (
            text[max(0, rel - 30) : rel] + " " + text[rel + (n.end - n.start) : rel + (n.end - n.start) + 14]
        )
        if n.unit == "lufs":
            d.add("master", {"target_lufs": -abs(n.value)}, "mix", f"loudness target {-abs(n.value):g} LUFS")
            d.explicit_tools.add("master")
        elif n.unit == "dbtp":
            d.add(
                "master",
                {"true_peak_dbtp": -abs(n.value)},
                "mix",
                f"true-peak ceiling {-abs(n.value):g} dBTP",
            )
        elif n.unit == "ratio":
            upd("compress", {"ratio": n.value}, f"{n.value:g}:1 compression")
        elif n.unit == "hz":
            if (de_ess := clause_step("de_ess")) is not None and re.search(r"de-?ess|sibil|ess", text):
                de_ess.params["low_hz"] = n.value
            elif clause_step("stereo_width") is not None or re.search(r"mono", before):
                upd("stereo_width", {"bass_mono_hz": n.value}, "bass kept mono")
            elif HIGHCUT_CTX.search(before) or (HIGHCUT_CTX.search(text) and not LOWCUT_CTX.search(text)):
                upd("eq", {"high_cut_hz": n.value}, f"low-pass at {n.value:g} Hz")
            elif LOWCUT_CTX.search(before) or (LOWCUT_CTX.search(text) and not dbs):
                upd("eq", {"low_cut_hz": n.value}, f"high-pass at {n.value:g} Hz")
            elif (dyn := clause_step("dynamic_eq")) is not None:
                dyn.params["freq_hz"] = n.value
            elif dbs or CUT_CTX.search(text) or BOOST_CTX.search(text):
                notch = NOTCH_CTX.search(text) is not None
                # a notch is narrow and deep unless a depth is said
                gain = abs(dbs[0].value) if dbs else NOTCH_DB if notch else 3.0
                if CUT_CTX.search(text) and not BOOST_CTX.search(text) or (dbs and dbs[0].value < 0):
                    gain = -gain
                kind = "peak"
                if "shelf" in text:
                    kind = (
                        "low_shelf" if re.search(r"low[- ]?shelf", text) or n.value < 1000 else "high_shelf"
                    )
                band = {
                    "type": kind,
                    "freq_hz": n.value,
                    "gain_db": gain,
                    "q": 0.707 if kind != "peak" else NOTCH_Q if notch else 1.0,
                }
                st = upd("eq", {}, f"{gain:+g} dB at {n.value:g} Hz")
                st.params["bands"] = [*st.params.get("bands", []), band]
        elif n.unit == "db":
            if hz:
                continue  # used by the band above
            comp = clause_step("compress")
            if re.search(r"thresh", before) and comp is not None:
                comp.params["threshold_db"] = -abs(n.value)
            elif re.search(r"make-?up", before) and comp is not None:
                comp.params["makeup_db"] = n.value
            elif clause_step("sidechain") is not None or re.search(r"duck", text):
                upd("sidechain", {"depth_db": abs(n.value)}, f"duck {abs(n.value):g} dB")
            elif (mix := clause_step("mix")) is not None:
                if re.search(r"headroom", before):
                    mix.params["headroom_db"] = abs(n.value)
                else:
                    mix.params["vocal_offset_db"] = n.value
            elif (
                re.search(r"\b(louder|quieter|softer|up|down)\b", before)
                and (master := clause_step("master")) is not None
            ):
                now = analysis_value(analysis, "integrated_lufs", default=-14.0) or -14.0
                sign = -1.0 if re.search(r"quieter|softer|down", before) else 1.0
                master.params["target_lufs"] = round(
                    clamp("master", "target_lufs", now + sign * abs(n.value)), 1
                )
            elif re.search(r"true[- ]?peak|ceiling|peak", before):
                d.add("master", {"true_peak_dbtp": -abs(n.value)}, "mix", "true-peak ceiling")
            else:
                eq = next((s for s in ctools if s.tool == "eq"), None)
                if eq is not None:
                    keys = [k for k in EQ_DB if k in eq.params and eq.params[k] != 0]
                    peak = max((abs(eq.params[k]) for k in keys), default=0.0)
                    for k in keys:  # the loudest move becomes the number said; the others keep their ratio
                        eq.params[k] = round(clamp("eq", k, eq.params[k] * abs(n.value) / peak), 2)
        elif n.unit == "pct":
            frac = n.value / 100.0
            pst = next((s for s in ctools if s.tool in AMOUNT_KEY or s.tool == "stereo_width"), None)
            if pst is None:
                continue
            st = pst
            if st.tool == "compress" and re.search(r"\bmix\b|\bwet\b|parallel|blend", before):
                st.params["mix"] = round(clamp("compress", "mix", frac), 3)
                continue
            if st.tool == "stereo_width":
                if re.search(r"\bby\b", before) or frac < 0.5:
                    width = 1.0 + frac if st.params.get("width", 1.3) >= 1 else 1.0 - frac
                    st.params["width"] = round(clamp("stereo_width", "width", width), 3)
                else:
                    st.params["width"] = round(clamp("stereo_width", "width", frac), 3)
            else:
                key = AMOUNT_KEY[st.tool][0]
                st.params[key] = round(clamp(st.tool, key, frac), 3)
        elif n.unit == "ms":
            if re.search(r"pre-?delay", before):
                upd("reverb", {"pre_delay_ms": n.value}, "pre-delay")
            elif re.search(r"attack", before):
                upd("compress", {"attack_ms": n.value}, "attack time")
            elif re.search(r"release", before):
                upd("compress", {"release_ms": n.value}, "release time")
            elif re.search(r"retune|tun", text):
                pc = clause_step("pitch_correct")
                if pc is not None:
                    pc.params["retune_ms"] = n.value
            elif clause_step("delay") is not None or re.search(r"delay|echo", text):
                upd("delay", {"time_ms": n.value}, f"{n.value:g} ms echo")
        elif n.unit == "s" and (clause_step("reverb") is not None or re.search(r"reverb|decay|tail", text)):
            upd("reverb", {"decay_s": n.value}, f"{n.value:g} s decay")
