"""A turn's progress as one honest fraction: stages and steps weighted by what they cost.

Every surface (the CLI's bar, the API's job progress and SSE events, the UI) reads the same
number from `overall(event, current)`. Steps are weighted by `STEP_COST`, the CPU seconds each tool
spends per minute of stereo audio on a 2-core machine (`python bench/step_costs.py` measures them),
so a denoise that takes ten times an EQ also fills ten times the bar; tools that work in blocks
(denoise, separate, master) report their own fraction in between (``step_progress``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: CPU s per minute of 44.1 kHz stereo, default params, `python bench/step_costs.py --runs 1` (2 cores, load
#: ~9 from other work; only the ratios matter). Floor 0.05 (a no-op EQ still costs a pass); vocoder_enhance
#: was not installed: its figure is Vocos's mel round trip at 24 kHz estimated from separate's network size.
STEP_COST: dict[str, float] = {
    "bandwidth_extension": 0.09,
    "compress": 0.7,
    "de_ess": 1.43,
    "declip": 0.07,
    "delay": 1.25,
    "denoise": 1.02,
    "dereverb": 17.0,  # after its own WPE (bench/dereverb.py: 16-17 s per minute of 44.1 kHz stereo)
    "dynamic_eq": 0.14,
    "eq": 0.05,
    "genre_preset": 0.38,
    "master": 0.13,
    "mix": 1.27,
    "pitch_correct": 31.3,
    "reference_match": 0.58,
    "restore": 0.55,
    "reverb": 0.18,
    "saturation": 2.15,
    "separate": 15.1,
    "sidechain": 0.51,
    "stereo_width": 0.09,
    "vocoder_enhance": 5.0,
}
#: a tool the table does not know (a new one) weighs as a typical filter
DEFAULT_COST = 0.5

#: the share of a turn each stage takes before execution, and where evaluation starts (the metrics
#: of the result); execution fills the span between
STAGE_START = {"analyze": 0.0, "recall": 0.06, "plan": 0.08, "execute": 0.1, "evaluate": 0.9}
EXEC_SPAN = (STAGE_START["execute"], STAGE_START["evaluate"])


def step_spans(tools: Sequence[str]) -> list[tuple[float, float]]:
    """Each step's (start, end) share of execution (0..1), in proportion to its tool's cost."""
    costs = [max(STEP_COST.get(t, DEFAULT_COST), 0.01) for t in tools]
    total = sum(costs) or 1.0
    spans, at = [], 0.0
    for c in costs:
        spans.append((at / total, (at + c) / total))
        at += c
    if spans:
        spans[-1] = (spans[-1][0], 1.0)
    return spans


def overall(event: dict[str, Any], current: float = 0.0) -> float:
    """The turn's overall fraction (0..1, never decreasing) after a progress event.

    Step events carry ``span`` (from `step_spans`, set by the executor); without it (an older
    producer) every step weighs the same.
    """
    kind = event.get("event")
    value = current
    if kind == "stage":
        value = STAGE_START.get(str(event.get("stage")), current)
    elif kind in ("step_started", "step_progress", "step_finished"):
        frac = {"step_started": 0.0, "step_finished": 1.0}.get(str(kind), float(event.get("fraction") or 0.0))
        frac = min(max(frac, 0.0), 1.0)
        span = event.get("span")
        if span is not None and len(span) == 2:
            lo_s, hi_s = float(span[0]), float(span[1])
        else:
            total = max(1, int(event.get("total") or 1))
            index = int(event.get("index") or 0)
            lo_s, hi_s = index / total, (index + 1) / total
        lo, hi = EXEC_SPAN
        value = lo + (hi - lo) * (lo_s + (hi_s - lo_s) * frac)
    elif kind == "done":
        value = 0.98
    return round(max(current, min(value, 1.0)), 4)
