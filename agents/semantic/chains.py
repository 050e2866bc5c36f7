"""Chains the analysis fills in for generic asks: repairs ("clean it up" on a clipped or noisy
file) and the speech chain (denoise, presence EQ, de-ess, compress, master at -16 LUFS)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from agents.semantic import vocabulary as V
from agents.semantic.draft import Draft

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


def analysis_value(analysis: Mapping[str, Any] | None, *keys: str, default: float | None = None) -> float | None:
    if not analysis:
        return default
    for k in keys:
        v = analysis.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    return default


def repairs(d: Draft, analysis: Mapping[str, Any] | None, target: str, *, default_denoise: bool) -> None:
    add = functools.partial(d.add, loose=True)
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


def speech_chain(d: Draft, analysis: Mapping[str, Any] | None, *, with_master: bool) -> None:
    t = "speech"
    repairs(d, analysis, t, default_denoise=True)

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


def is_speech(parsed_speech: bool, analysis: Mapping[str, Any] | None) -> bool:
    p = analysis_value(analysis, "speech_probability", "speech_prob")
    return parsed_speech or (p is not None and p >= 0.6)
