"""dereverb: weighted prediction error (WPE, `nara_wpe`) late-reverb removal, with strength.

WPE (Nakatani/Yoshioka) predicts each STFT frame's late reverberation from frames
3 or more hops in the past with a per-bin linear filter weighted by the estimated
clean power, and subtracts it. It leaves the direct sound and early reflections alone,
so speech stays natural. Multi-channel input is dereverberated jointly (the filter uses
all channels), which is how WPE works best.

STFT: ~64 ms sqrt-Hann window (1024 at 16 kHz, 4096 at 44.1/48 kHz), hop a quarter of
it, prediction delay 2 hops (~32 ms: early reflections are kept). ``strength`` sets how
much of the predicted late reverb is removed (``min(1, 2·strength)``: 0.5 and up remove
all of it) and the prediction filter length (``8 + 24·strength`` taps: more taps reach
later tails; 0.5 → 20 taps ≈ 320 ms).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np
from pydantic import Field

from tools import dsp
from tools.audio import Audio
from tools.dsp import peak_warning
from tools.registry import Stage, ToolContext, ToolParams, ToolResult, ToolSpec


class DereverbParams(ToolParams):
    strength: float = Field(0.5, ge=0.0, le=1.0, description="how much late reverberation to remove")
    iterations: int = Field(4, ge=1, le=10, description="WPE iterations (3 is the usual choice)")


def _available() -> tuple[bool, str]:
    if importlib.util.find_spec("nara_wpe") is None:
        return False, "needs the Python package 'nara_wpe' (pip install 'mixpilot[neural]')"
    return True, ""


#: frequency bins dereverberated at a time: WPE's filter is per bin, so blocks of bins give the same result
#: while its statistics (bins x frames x channels*taps, complex) stay small (60 s stereo: 7 GB -> ~0.3 GB)
BINS_PER_BLOCK = 64


def dereverb_array(
    x: np.ndarray,
    sr: int,
    strength: float = 0.5,
    iterations: int = 3,
    progress: Callable[[float, str], None] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """(channels, frames) float → dereverberated, info. ``progress(fraction, message)`` per block of bins."""
    from nara_wpe.wpe import wpe

    n_fft = 1 << int(np.round(np.log2(0.064 * sr)))
    hop = n_fft // 4
    taps = int(round(8 + 24 * strength))
    delay = 2
    c, n = x.shape
    pad = n_fft
    xp = dsp.stft_pad(x, n_fft, hop)
    total = xp.shape[-1]
    z = dsp.tight_stft(xp, n_fft, hop)  # (C, T, F)
    y = z.transpose(2, 0, 1)  # (F, C, T) as nara_wpe expects
    alpha = min(1.0, 2.0 * strength)
    out_y = np.empty_like(y)
    e_in = e_late = 0.0
    bins = y.shape[0]
    for lo in range(0, bins, BINS_PER_BLOCK):
        hi = min(bins, lo + BINS_PER_BLOCK)
        block = np.ascontiguousarray(y[lo:hi])
        d = wpe(block, taps=taps, delay=delay, iterations=iterations, statistics_mode="full")
        late = alpha * (block - d)
        out_y[lo:hi] = block - late
        e_in += float(np.sum(np.abs(block) ** 2))
        e_late += float(np.sum(np.abs(late) ** 2))
        if progress is not None:
            progress(hi / bins, f"{hi}/{bins} frequency bins")
    out_z = out_y.transpose(1, 2, 0)
    out = dsp.tight_istft(out_z, n_fft, hop, total)[:, pad : pad + n]
    return out, {
        "n_fft": n_fft,
        "hop": hop,
        "taps": taps,
        "delay_frames": delay,
        "removed_to_input_db": round(10 * np.log10(max(e_late, 1e-20) / max(e_in, 1e-20)), 2),
    }


def run(audio: Audio, params: DereverbParams, ctx: ToolContext) -> ToolResult:
    if params.strength == 0.0:
        return ToolResult(audio=audio, report={"strength": 0.0, "note": "strength 0: unchanged"})
    x = audio.samples.astype(np.float64)
    y, info = dereverb_array(x, audio.sample_rate, params.strength, params.iterations, progress=ctx.progress)
    report = {
        "strength": params.strength,
        "method": "WPE (nara_wpe)",
        "iterations": params.iterations,
        **info,
    }
    warnings = peak_warning("dereverb", y)
    return ToolResult(audio=audio.with_samples(y.astype(np.float32)), report=report, warnings=warnings)


SPEC = ToolSpec(
    name="dereverb",
    description="reduce room reverberation (WPE late-reverb prediction and removal), with strength",
    params=DereverbParams,
    run=run,
    stage=Stage.REPAIR,
    applies_to=("speech", "vocals", "mix"),
    check_available=_available,
    amount_key="strength",
    verb="reduced room reverberation",
    repairs=("reverb",),
)
