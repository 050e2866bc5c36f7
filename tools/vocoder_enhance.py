"""vocoder_enhance: re-synthesise a voice through the Vocos neural vocoder's mel spectrogram.

The voice is analysed into Vocos's 100-band log-mel spectrogram at 24 kHz and rebuilt by the
vocoder, which replaces phase and fine structure with what the network learned from clean
speech: it smooths codec artefacts, phasiness and some noise. Above 11.5 kHz (beyond what a
24 kHz vocoder can produce) the original signal is kept, crossed over with a linear-phase
filter, so a 44.1/48 kHz file keeps its air. ``amount`` blends the re-synthesis (wet) with
the original (dry); both are time-aligned (Vocos's "center" analysis has no delay).

Weights are never bundled or downloaded here: ``models/weights.py`` resolves them
(``mixpilot models pull vocos`` installs ``charactr/vocos-mel-24khz``). Without them the tool
is listed unavailable with the reason (which names that command) and the planner uses its
DSP chain instead.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from tools import dsp
from tools.audio import Audio, resample
from tools.dsp import peak_warning
from tools.registry import Stage, ToolContext, ToolError, ToolParams, ToolResult, ToolSpec

CROSSOVER_HZ = 11_500.0
_MODEL_CACHE: dict[str, Any] = {}


class VocoderEnhanceParams(ToolParams):
    amount: float = Field(
        1.0, ge=0.0, le=1.0, description="wet share of the re-synthesised voice, 0 = dry, 1 = all vocoder"
    )


def check_available() -> tuple[bool, str]:
    if importlib.util.find_spec("torch") is None:
        return False, "needs PyTorch (pip install 'mixpilot[neural]')"
    from models.weights import ModelLoadingError, find_vocos

    try:
        find_vocos()
    except ModelLoadingError as exc:
        return False, str(exc)
    return True, ""


def _model() -> tuple[Any, Path]:
    """The Vocos model for the current weight folder, loaded once per folder."""
    from models.vocos import load_vocos
    from models.weights import find_vocos

    folder = find_vocos()
    key = str(folder.resolve())
    if key not in _MODEL_CACHE:
        _MODEL_CACHE.clear()
        _MODEL_CACHE[key] = load_vocos(folder)
    return _MODEL_CACHE[key], folder


def _linear_phase_lowpass(x: np.ndarray, sr: int, cutoff_hz: float, taps: int = 255) -> np.ndarray:
    from scipy.signal import firwin, oaconvolve

    h = firwin(taps, cutoff_hz, fs=sr).astype(np.float32)
    y: np.ndarray = oaconvolve(x, h[None, :], mode="full", axes=-1)
    d = (taps - 1) // 2
    return y[:, d : d + x.shape[-1]].astype(np.float32)


def vocode(samples: np.ndarray, sr: int, model: Any, device: str = "cpu") -> np.ndarray:
    """(channels, frames) at ``sr`` → Vocos re-synthesis at ``sr``, same shape."""
    import torch

    vsr = model.sample_rate
    x = resample(samples.astype(np.float32), sr, vsr) if sr != vsr else samples.astype(np.float32)
    with torch.inference_mode():
        y = model.to(device)(torch.from_numpy(np.ascontiguousarray(x)).to(device)).cpu().numpy()
    n = x.shape[-1]
    y = dsp.fit_length(y, n)
    y = resample(y.astype(np.float32), vsr, sr) if sr != vsr else y
    m = samples.shape[-1]
    return dsp.fit_length(y, m).astype(np.float32)


def run(audio: Audio, params: VocoderEnhanceParams, ctx: ToolContext) -> ToolResult:
    from models.weights import ModelLoadingError

    t0 = time.perf_counter()
    try:
        model, folder = _model()
    except ModelLoadingError as exc:
        raise ToolError(f"vocoder_enhance: {exc}") from None
    dry = audio.samples
    warnings: list[str] = []
    if params.amount == 0.0:
        return ToolResult(audio, {"model": "vocos-mel", "amount": 0.0, "changed": False}, warnings)
    ctx.report_progress(0.1, "vocoding")
    wet = vocode(dry, audio.sample_rate, model, ctx.device)
    kept_top = False
    if audio.sample_rate / 2 > CROSSOVER_HZ + 500:
        # what the 24 kHz vocoder cannot make: keep the original's top band
        low_wet = _linear_phase_lowpass(wet, audio.sample_rate, CROSSOVER_HZ)
        high_dry = dry - _linear_phase_lowpass(dry, audio.sample_rate, CROSSOVER_HZ)
        wet = low_wet + high_dry
        kept_top = True
    if audio.sample_rate < model.sample_rate:
        warnings.append(
            f"input is {audio.sample_rate} Hz; the vocoder works at {model.sample_rate} Hz and cannot add "
            "the missing top band (use bandwidth_extension)"
        )
    out = params.amount * wet + (1.0 - params.amount) * dry
    if not np.isfinite(out).all():
        raise ToolError("vocoder_enhance produced non-finite samples; the weights may be corrupt")
    warnings += peak_warning("vocoder_enhance", out)
    diff = out - dry
    change_db = 10 * np.log10((np.sum(diff**2) + 1e-20) / (np.sum(dry**2) + 1e-20))
    report = {
        "model": "vocos-mel",
        "weights": str(folder),
        "vocoder_sample_rate": model.sample_rate,
        "amount": params.amount,
        "kept_original_above_hz": CROSSOVER_HZ if kept_top else None,
        "difference_db": round(float(change_db), 2),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    ctx.report_progress(1.0, "done")
    return ToolResult(audio.with_samples(out.astype(np.float32)), report, warnings)


SPEC = ToolSpec(
    name="vocoder_enhance",
    description="re-synthesise a voice through the Vocos neural vocoder (smooths codec artefacts, phasiness)",
    params=VocoderEnhanceParams,
    run=run,
    stage=Stage.VOICE,
    applies_to=("vocals", "speech"),
    check_available=check_available,
    amount_key="amount",
    verb="re-synthesised the voice through a neural vocoder",
    voice=True,
)
