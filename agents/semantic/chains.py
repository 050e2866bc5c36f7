"""Chains the analysis fills in for generic asks: repairs ("clean it up" on a clipped or noisy
file) and the speech chain (denoise, presence EQ, de-ess, compress, master at -16 LUFS)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from agents.semantic import vocabulary as V
from agents.semantic.draft import Draft
from tools.analysis import SPEECH_THRESHOLD
from tools.genres import genre_loudness

__all__ = ["analysis_value", "genre_loudness", "is_speech", "repairs", "speech_chain"]


def analysis_value(
    analysis: Mapping[str, Any] | None, *keys: str, default: float | None = None
) -> float | None:
    if not analysis:
        return default
    for k in keys:
        v = analysis.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    return default


def repairs(
    d: Draft,
    analysis: Mapping[str, Any] | None,
    target: str,
    *,
    default_denoise: bool,
    diagnosis: Mapping[str, Any] | None = None,
) -> bool:
    """Add the repair steps the recording needs; True when something was found to repair.

    With a diagnosis (the audio was heard), only its repair findings are planned, each at a strength
    scaled to its severity: nothing is repaired that is not broken. Without one (planning from words
    alone), the analysis figures decide, and a plain "clean it up" gets a moderate denoise."""
    add = functools.partial(d.add, loose=True)
    if diagnosis is not None:
        from agents.answers import fixes
        from tools.diagnose import REPAIR_PROBLEMS

        steps = fixes(list(diagnosis.get("findings") or []), speech=target == "speech", only=REPAIR_PROBLEMS)
        for st in steps:
            if st.tool in d.forbidden.tools:
                continue
            add(st.tool, st.params, "mix" if st.tool == "bandwidth_extension" else target, st.reason)
        return bool(steps)
    clip = analysis_value(analysis, "clipping_ratio", "clip_ratio")
    snr = analysis_value(analysis, "snr_db", "snr_estimate_db")
    bw = analysis_value(analysis, "bandwidth_hz", "effective_bandwidth_hz")
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
    return found


def speech_chain(
    d: Draft,
    analysis: Mapping[str, Any] | None,
    *,
    with_master: bool,
    diagnosis: Mapping[str, Any] | None = None,
) -> None:
    t = "speech"
    repairs(d, analysis, t, default_denoise=True, diagnosis=diagnosis)

    def add(tool: str, params: dict[str, Any], reason: str) -> None:
        have = d.find(tool)
        if tool in d.forbidden.tools:
            return
        if have is None:
            d.add(tool, params, t, reason)
        else:  # what the person said outright wins over the chain's defaults
            have.params = {**params, **have.params}

    if d.find("denoise") is None and diagnosis is None:  # heard and found clean: no denoise
        add("denoise", {"strength": 0.4}, "gentle noise clean-up for speech")
    add("eq", dict(V.SPEECH_EQ), "speech EQ: rumble cut, less mud, more presence")
    add("de_ess", {"amount": 0.4}, "tame sibilance")
    add(
        "compress",
        {"amount": 0.5, "ratio": 3.0, "attack_ms": 10.0, "release_ms": 120.0},
        "even out the voice",
    )
    if with_master and d.find("master") is None:
        d.add(
            "master",
            {"target_lufs": -16.0, "true_peak_dbtp": -1.0, "platform": "podcast"},
            "mix",
            "podcast loudness: -16 LUFS, true peak -1 dBTP",
        )


def is_speech(parsed_speech: bool, analysis: Mapping[str, Any] | None) -> bool:
    p = analysis_value(analysis, "speech_probability", "speech_prob")
    return parsed_speech or (p is not None and p >= SPEECH_THRESHOLD)
