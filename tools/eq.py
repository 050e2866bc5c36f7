"""eq: static parametric EQ plus the tonal words people use (brighter, warmer, less muddy, …).

Minimum-phase: every band is an RBJ "Audio EQ Cookbook" biquad run causally (like an
analogue or a typical plug-in EQ), so there is no pre-ringing and no latency.

Tonal controls (signed dB, −12..+12, scaled by ``amount``) map to bands following the crowd
curves in VOCABULARY.md (Audealize/SocialEQ, SAFE):

* ``bright_db``: high shelf at 4 kHz by the full value plus a low shelf at 120 Hz by −1/3 of it
  (bright: +0.87 at 4.4 kHz, −1.24 at 83 Hz; SAFE "bright" ≈ +4.8 dB at 3 kHz, lows −2 dB)
* ``warm_db``: peak at 200 Hz (Q 0.8) by the value and a peak at 2 kHz (Q 1) by −1/3 of it
* ``mud_db``: peak at 300 Hz, Q 1.0 (≈200–500 Hz); ``boom_db``: peak at 120 Hz, Q 1.0 (≈80–200 Hz)
* ``box_db``: peak at 700 Hz, Q 1.0 (≈400 Hz–1.2 kHz); ``presence_db``: peak at 3 kHz, Q 1.0
* ``air_db``: high shelf at 12 kHz (moved down to 0.45·fs at low rates)
* ``low_cut_hz`` / ``high_cut_hz``: 2nd-order Butterworth high/low-pass (0 = off)

Bounds: every corner is clamped into 10 Hz … 0.45·fs (with a warning), band gains are
limited to −24..+15 dB, and the summed boost at any frequency is capped at +15 dB (the whole
curve is scaled down, with a warning) so nothing can ask for a +30 dB boost.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tools import dsp
from tools.audio import Audio
from tools.registry import Stage, ToolContext, ToolParams, ToolResult, ToolSpec

MAX_TOTAL_BOOST_DB = 15.0


class Band(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["peak", "low_shelf", "high_shelf", "highpass", "lowpass"] = Field(
        "peak", description="filter shape"
    )
    freq_hz: float = Field(
        1000.0, ge=10.0, le=40000.0, description="centre or corner frequency in Hz (clamped to 0.45·fs)"
    )
    gain_db: float = Field(
        0.0, ge=-24.0, le=15.0, description="gain in dB (peak and shelves; ignored by pass filters)"
    )
    q: float = Field(
        0.707, ge=0.1, le=18.0, description="bandwidth (Q); 0.707 for Butterworth pass filters/shelves"
    )


#: how each tonal gain tilts the balance: +1 brighter, −1 darker. The planner keeps memory from tilting
#: against a direction the person asked for ("warmer" never gains treble from memory).
TILT: dict[str, int] = {"bright_db": 1, "presence_db": 1, "air_db": 1, "warm_db": -1, "boom_db": -1}


class EqParams(ToolParams):
    amount: float = Field(1.0, ge=0.0, le=1.0, description="scales every gain (0 = bypass, 1 = as given)")
    bright_db: float = Field(
        0.0, ge=-12.0, le=12.0, description="brighter (+) / darker (−): 4 kHz shelf, lows slightly opposite"
    )
    warm_db: float = Field(
        0.0, ge=-12.0, le=12.0, description="warmer (+) / colder (−): 100–300 Hz, 1–3 kHz slightly opposite"
    )
    mud_db: float = Field(0.0, ge=-12.0, le=12.0, description="200–500 Hz; negative = less muddy")
    boom_db: float = Field(0.0, ge=-12.0, le=12.0, description="80–200 Hz; negative = less boomy")
    box_db: float = Field(0.0, ge=-12.0, le=12.0, description="400–1200 Hz; negative = less boxy")
    presence_db: float = Field(0.0, ge=-12.0, le=12.0, description="2–4 kHz presence")
    air_db: float = Field(0.0, ge=-12.0, le=12.0, description="high shelf at 12 kHz (air)")
    low_cut_hz: float = Field(0.0, ge=0.0, le=300.0, description="high-pass corner in Hz (0 = off)")
    high_cut_hz: float = Field(
        0.0, ge=0.0, le=22000.0, description="low-pass corner in Hz (0 = off; 2000–22000)"
    )
    bands: list[Band] = Field(default_factory=list, max_length=16, description="extra parametric bands")


def tonal_bands(p: EqParams) -> list[tuple[str, str, float, float, float]]:
    """(label, kind, freq, gain_db, q) for the tonal words and explicit bands, before `amount`."""
    out: list[tuple[str, str, float, float, float]] = []
    if p.bright_db:
        out += [
            ("bright", "high_shelf", 4000.0, p.bright_db, 0.707),
            ("bright(lows)", "low_shelf", 120.0, -p.bright_db / 3.0, 0.707),
        ]
    if p.warm_db:
        out += [
            ("warm", "peak", 200.0, p.warm_db, 0.8),
            ("warm(mids)", "peak", 2000.0, -p.warm_db / 3.0, 1.0),
        ]
    if p.mud_db:
        out.append(("mud", "peak", 300.0, p.mud_db, 1.0))
    if p.boom_db:
        out.append(("boom", "peak", 120.0, p.boom_db, 1.0))
    if p.box_db:
        out.append(("box", "peak", 700.0, p.box_db, 1.0))
    if p.presence_db:
        out.append(("presence", "peak", 3000.0, p.presence_db, 1.0))
    if p.air_db:
        out.append(("air", "high_shelf", 12000.0, p.air_db, 0.707))
    if p.low_cut_hz > 0:
        out.append(("low_cut", "highpass", p.low_cut_hz, 0.0, 0.707))
    if p.high_cut_hz > 0:
        out.append(("high_cut", "lowpass", max(p.high_cut_hz, 2000.0), 0.0, 0.707))
    for i, b in enumerate(p.bands):
        out.append((f"band{i + 1}", b.type, b.freq_hz, b.gain_db, b.q))
    return out


def design(
    bands: list[tuple[str, str, float, float, float]], amount: float, sample_rate: int, warnings: list[str]
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """SOS cascade for `bands` at `sample_rate`, with frequency clamping and the boost cap."""
    sections, touched = [], []
    for label, kind, freq, gain, q in bands:
        f = dsp.clamp_freq(freq, sample_rate, warnings, what=f"eq {label}")
        g = gain * amount if kind not in ("highpass", "lowpass") else 0.0
        if kind not in ("highpass", "lowpass") and abs(g) < 1e-3:
            continue
        sections.append(dsp.biquad(kind, f, sample_rate, g, q))
        touched.append({"band": label, "type": kind, "freq_hz": round(f, 1), "gain_db": round(g, 2), "q": q})
    sos = dsp.to_sos(sections)
    if sos.shape[0]:
        grid = np.geomspace(20.0, 0.45 * sample_rate, 256)
        peak_boost = float(dsp.sos_response_db(sos, grid, sample_rate).max())
        if peak_boost > MAX_TOTAL_BOOST_DB:
            scale = MAX_TOTAL_BOOST_DB / peak_boost
            warnings.append(
                f"eq: combined boost of {peak_boost:.1f} dB exceeds {MAX_TOTAL_BOOST_DB:.0f} dB; "
                f"all gains scaled by {scale:.2f}"
            )
            return design(bands, amount * scale, sample_rate, [])
    return sos, touched


def run(audio: Audio, params: EqParams, ctx: ToolContext) -> ToolResult:
    warnings: list[str] = []
    sos, touched = design(tonal_bands(params), params.amount, audio.sample_rate, warnings)
    report: dict[str, Any] = {"phase": "minimum", "bands": touched}
    if sos.shape[0] == 0:
        report["note"] = "no band has any gain; audio unchanged"
        return ToolResult(audio=audio, report=report, warnings=warnings)
    grid = np.array([60, 125, 250, 500, 1000, 2000, 4000, 8000, 12000, 16000], dtype=float)
    grid = grid[grid < 0.45 * audio.sample_rate]
    resp = dsp.sos_response_db(sos, grid, audio.sample_rate)
    report["response_db"] = {str(int(f)): round(float(r), 2) for f, r in zip(grid, resp)}
    y = dsp.apply_sos(audio.samples, sos)
    return ToolResult(audio=audio.with_samples(y), report=report, warnings=warnings)


SPEC = ToolSpec(
    name="eq",
    description="static EQ: brighter/darker, warmer, less muddy, less boomy, less boxy, presence, air, cuts, parametric bands",
    params=EqParams,
    run=run,
    stage=Stage.TONE,
    applies_to=("mix", "vocals", "speech", "music", "drums", "bass", "other"),
    verb="adjusted the tone (EQ)",
    scales=tuple((k, 0.0) for k in EqParams.model_fields if k.endswith("_db")),  # the tonal gains
)
