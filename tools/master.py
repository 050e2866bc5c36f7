"""master: loudness to a target (LUFS), true-peak ceiling (dBTP), optional glue, verified.

Steps:

1. optional glue: gentle bus compression (`tools.dsp.compress`, as the `compress` tool, with ratio ``1.5 + glue``, 30 ms attack,
   200 ms release, 6 dB knee, threshold ``L95 − (2 + 8·glue)`` dB, automatic makeup);
2. gain toward the target measured with our BS.1770-4 meter (`tools.loudness`), at most
   ``MAX_GAIN_DB`` (+20 dB): a quieter input is raised by 20 dB only, and the shortfall is
   reported with a warning (raising a very quiet recording further mostly raises its noise);
3. a look-ahead peak limiter with oversampled detection linked across channels
   (`tools.dsp.true_peak_limit`: our own, because pedalboard 0.9.26's
   ``BrickwallLimiter(true_peak=True)`` took ~3.5 s per pass on a 3-minute track here and its
   documentation says it does not guarantee the ceiling); limiting lowers loudness, so the
   pre-gain is re-solved (secant steps on measured loudness) until the output is within 0.05 LU;
   when that would take more than 20 dB of limiting with a slow release, the release is made
   faster (÷3, down to 10 ms) and the search repeated — peaky material then keeps its loudness;
   ``mode="loud"`` (dense material mastered loud: club, competitive, CD) puts a soft clipper
   (`tools.dsp.soft_clip`, asymptote ``CLIP_OVER_DB`` over the limiter's ceiling) between the
   gain and the limiter: it shaves the sharpest peaks sample by sample where the limiter would
   duck the whole signal over its look-ahead and release (drum-and-bass loop at −9 LUFS: SI-SDR
   against the input 5.0 → 12.4 dB). The clipper is not in the loudness model, so every candidate
   gain is an exact pass there (a few passes more);
4. verification: true peak with the 4x meter of `tools.loudness`; if above the ceiling (minus
   a 0.05 dB safety margin for other meters' resamplers; the limiter itself aims 0.15 dB under),
   the limiter's ceiling is lowered by the excess and step 3 is repeated (corrective pass,
   reported). ffmpeg's ebur128 (192 kHz resampling) read at or below our meter on every
   fixture clip we tried.

Speed: where numba is installed, the input's K-weighted power and the limiter's detector peaks
come from one compiled pass (`dsp.k_power_and_block_peak`), and each exact pass makes the output
and measures its loudness in one more (`dsp.apply_block_gain_k_power`); the values are numpy's.

Dither: `master` returns float audio; `tools.audio.save` applies TPDF dither when the export
is 16- or 24-bit. Platform presets give the target (and −3 dBTP for ACX audiobooks) unless
``target_lufs`` / ``true_peak_dbtp`` are given explicitly.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import Field

from tools import dsp
from tools.audio import Audio
from tools.registry import Stage, ToolContext, ToolParams, ToolResult, ToolSpec

MAX_GAIN_DB = 20.0
TP_MARGIN_DB = 0.05  # verified true peak must sit this far under the ceiling
LIMITER_MARGIN_DB = 0.15  # the limiter aims this far under (its 2x detector can overshoot ~0.1 dB)
MAX_LIMITING_DB = 20.0
LU_TOLERANCE = 0.05
PLATFORMS: dict[str, tuple[float, float]] = {  # target LUFS, true-peak ceiling dBTP
    "spotify": (-14.0, -1.0),
    "apple_music": (-16.0, -1.0),
    "youtube": (-14.0, -1.0),
    "amazon": (-14.0, -1.0),
    "tidal": (-14.0, -1.0),
    "podcast": (-16.0, -1.0),
    "audiobook": (-20.0, -3.0),
    "broadcast": (-23.0, -1.0),
    "club": (-9.0, -1.0),
}


class MasterParams(ToolParams):
    target_lufs: float = Field(-14.0, ge=-30.0, le=-6.0, description="integrated loudness target in LUFS")
    true_peak_dbtp: float = Field(-1.0, ge=-9.0, le=0.0, description="true-peak ceiling in dBTP")
    platform: (
        Literal[
            "spotify",
            "apple_music",
            "youtube",
            "amazon",
            "tidal",
            "podcast",
            "audiobook",
            "broadcast",
            "club",
        ]
        | None
    ) = Field(None, description="platform preset (supplies the target unless target_lufs is given)")
    glue: float = Field(0.0, ge=0.0, le=1.0, description="gentle bus compression before limiting (0 = none)")
    release_ms: float = Field(
        80.0, ge=10.0, le=1000.0, description="limiter release (ms per 6 dB of recovery)"
    )
    mode: Literal["transparent", "loud"] = Field(
        "transparent",
        description="transparent: the true-peak limiter alone; loud: a soft-clip stage shaves the "
        "sharpest peaks before the limiter (dense material mastered loud: club, competitive, CD)",
    )


def resolve_targets(p: MasterParams) -> tuple[float, float]:
    target, ceiling = p.target_lufs, p.true_peak_dbtp
    if p.platform is not None:
        pt, pc = PLATFORMS[p.platform]
        if "target_lufs" not in p.model_fields_set:
            target = pt
        if "true_peak_dbtp" not in p.model_fields_set:
            ceiling = pc
    return target, ceiling


def _frozen(x: np.ndarray) -> np.ndarray:
    """`x` read-only, so that `Audio` wraps it without a copy (master owns every array it freezes)."""
    x.flags.writeable = False
    return x


def _lufs(x: np.ndarray, sr: int) -> float:
    from tools.loudness import integrated_lufs

    return integrated_lufs(Audio(_frozen(x), sr))


def _tp(x: np.ndarray, sr: int) -> float:
    from tools.loudness import true_peak_dbtp

    return true_peak_dbtp(Audio(_frozen(x), sr))


class _LoudnessModel:
    """Loudness of the limiter's output estimated without running it: the input's K-weighted power per
    ~1 ms chunk times the mean squared limiter gain over the chunk (the gain is smooth over >= 2 ms, so
    ``K(g·x) ≈ g·K(x)``). Off by a few hundredths of an LU where the limiter works; `master_array`
    learns that offset from each exact measurement, and only exact measurements decide."""

    def __init__(self, x: np.ndarray, sr: int) -> None:
        from tools.loudness import (
            KBlocks,
            channel_weights,
            integrated_lufs,
            k_weighted_blocks,
            k_weighting_sos,
        )

        self.audio = Audio(x, sr)  # a copy only when `x` is writeable (the caller's, never frozen here)
        x = self.audio.samples
        # the chunk layout of `k_weighted_blocks`, from a second of audio
        layout = k_weighted_blocks(self.audio.with_samples(_frozen(x[:, :sr])))
        fused = dsp.k_power_and_block_peak(x, k_weighting_sos(sr), layout.chunk, _LIMITER_BLOCK)
        if fused is None:
            self.blocks = k_weighted_blocks(self.audio)
            self.peak = dsp.block_peak(x, _LIMITER_BLOCK)
        else:
            power, self.peak = fused
            self.blocks = KBlocks(channel_weights(x.shape[0]) @ power, layout.chunk, layout.hop, sr)
        self.input_lufs = integrated_lufs(self.audio, self.blocks)
        self._gain: tuple[tuple[float, float, float], np.ndarray] | None = None

    def gain(self, gain_db: float, ceiling_dbtp: float, release_ms: float) -> np.ndarray:
        """The limiter's gain per detector block at this pre-gain and setting (the last one kept: the
        exact pass that confirms a candidate reuses the model's)."""
        key = (gain_db, ceiling_dbtp, release_ms)
        if self._gain is None or self._gain[0] != key:
            g = dsp.limiter_gain(
                self.peak * 10.0 ** (gain_db / 20.0),
                10.0 ** (ceiling_dbtp / 20.0),
                _LIMITER_BLOCK / self.audio.sample_rate,
                release_ms=release_ms,
            )
            self._gain = (key, g)
        return self._gain[1]

    def limit(
        self, gain_db: float, ceiling_dbtp: float, release_ms: float
    ) -> tuple[np.ndarray, dict[str, float], float]:
        """The limiter's output at this pre-gain and setting, its report, and the output's measured
        integrated loudness (BS.1770, gated): in one pass over the samples where numba is installed
        (`dsp.apply_block_gain_k_power`), else `dsp.true_peak_limit` then `tools.loudness`."""
        from tools.loudness import KBlocks, channel_weights, integrated_lufs, k_weighting_sos

        x, sr = self.audio.samples, self.audio.sample_rate
        g = self.gain(gain_db, ceiling_dbtp, release_ms)
        report = dsp.limiter_report(g)  # before the output exists: its temporaries are gone by then
        b = self.blocks
        fused = dsp.apply_block_gain_k_power(
            x, g, _LIMITER_BLOCK, 10.0 ** (gain_db / 20.0), k_weighting_sos(sr), b.chunk
        )
        if fused is None:
            y, linfo = dsp.true_peak_limit(
                x,
                sr,
                ceiling_dbtp,
                peak=self.peak,
                pre_gain_lin=10.0 ** (gain_db / 20.0),
                release_ms=release_ms,
                block=_LIMITER_BLOCK,
            )
            return y, linfo, _lufs(y, sr)
        y, power = fused
        blocks = KBlocks(channel_weights(x.shape[0]) @ power, b.chunk, b.hop, sr)
        return y, report, integrated_lufs(Audio(_frozen(y), sr), blocks)

    def __call__(self, gain_db: float, ceiling_dbtp: float, release_ms: float) -> tuple[float, float]:
        """(estimated output loudness LUFS, mean gain reduction dB) at this pre-gain and limiter setting."""
        from tools.loudness import KBlocks, integrated_lufs

        g_lin = 10.0 ** (gain_db / 20.0)
        g = self.gain(gain_db, ceiling_dbtp, release_ms)
        # in place (the same values): one temporary of the blocks' length besides the cumulative sum
        t = np.maximum(g, 1e-9)
        np.log10(t, out=t)
        t *= -20.0
        mean_gr = float(np.mean(t))
        # the gain as the samples get it: the minimum of each block and its neighbours, squared
        np.copyto(t, g)
        np.minimum(t[1:], g[:-1], out=t[1:])
        np.minimum(t[:-1], g[1:], out=t[:-1])
        np.square(t, out=t)
        t *= _LIMITER_BLOCK
        cum = np.empty(t.size + 1)
        cum[0] = 0.0
        np.cumsum(t, out=cum[1:])
        del t
        # the edges are made here, not kept: two arrays fewer beside the output of an exact pass
        edges = np.arange(cum.size, dtype=np.float64)
        edges *= _LIMITER_BLOCK
        chunk_edges = np.arange(self.blocks.chunk_power.size + 1, dtype=np.float64) * self.blocks.chunk
        cum = np.interp(chunk_edges, edges, cum)
        del edges, chunk_edges
        b = self.blocks
        power = b.chunk_power * (g_lin * g_lin) * (np.diff(cum) / b.chunk)
        return integrated_lufs(self.audio, KBlocks(power, b.chunk, b.hop, b.sample_rate)), mean_gr


_LIMITER_BLOCK = 16  # `dsp.true_peak_limit`'s detector block
# loud mode's soft clipper (`dsp.soft_clip`): its asymptote sits this far over the limiter's ceiling, and it
# is linear up to this fraction of it. Chosen by SI-SDR against the input at -9 and -12 LUFS on four music
# fixtures (drum-and-bass, Vibe Ace, solo trumpet, ragtime): over 0-1 dB beat 2-4 dB by 1-4 dB; a knee of
# 0.7 is within 0.5 dB of the best (0.85, nearly a hard clip) and gentler on sustained tones
CLIP_OVER_DB = 0.5
CLIP_KNEE = 0.7


def _loud_pass(
    x: np.ndarray, sr: int, gain_db: float, lim_ceiling: float, release_ms: float
) -> tuple[np.ndarray, dict[str, float], float, float]:
    """Loud mode's chain at one pre-gain: soft clipper (asymptote ``CLIP_OVER_DB`` over the limiter's
    ceiling, after the gain), then the true-peak limiter (detected, applied and measured as in
    transparent mode: `_LoudnessModel.limit`). Returns (output, limiter info, output LUFS, clipped share)."""
    g_lin = 10.0 ** (gain_db / 20.0)
    thr = 10.0 ** ((lim_ceiling + CLIP_OVER_DB) / 20.0) / g_lin  # in the input's scale
    clipped = _frozen(dsp.soft_clip(x, thr, CLIP_KNEE))
    frac = float(np.count_nonzero(np.abs(x) > CLIP_KNEE * thr)) / x.size
    y, linfo, loud = _LoudnessModel(clipped, sr).limit(gain_db, lim_ceiling, release_ms)
    return y, linfo, loud, frac


def master_array(
    x: np.ndarray,
    sr: int,
    target: float,
    ceiling: float,
    glue: float = 0.0,
    release_ms: float = 80.0,
    mode: str = "transparent",
) -> tuple[np.ndarray, dict[str, Any], list[str]]:
    if mode not in ("transparent", "loud"):
        raise ValueError(f"master: mode must be 'transparent' or 'loud', got {mode!r}")
    warnings: list[str] = []
    info: dict[str, Any] = {"target_lufs": target, "ceiling_dbtp": ceiling, "mode": mode}
    if glue > 0:
        x, ginfo = dsp.compress(
            x, sr, 0.5 * glue, ratio=1.5 + glue, attack_ms=30.0, release_ms=200.0, knee_db=6.0
        )
        info["glue"] = {"ratio": ginfo["ratio"], "mean_gain_reduction_db": ginfo["gain_reduction_db"]["mean"]}
    model = _LoudnessModel(x, sr)
    x = model.audio.samples
    l_in = model.input_lufs
    info["input_lufs"] = round(l_in, 2) if math.isfinite(l_in) else None
    if not math.isfinite(l_in):
        warnings.append(
            "master: the input is silent or shorter than 0.4 s; loudness cannot be measured, audio unchanged"
        )
        return x, info, warnings
    need = target - l_in
    aim = target
    if need > MAX_GAIN_DB:
        aim = l_in + MAX_GAIN_DB
        warnings.append(
            f"master: the input ({l_in:.1f} LUFS) needs {need:.1f} dB to reach {target:.1f} LUFS; "
            f"gain limited to +{MAX_GAIN_DB:.0f} dB (more would mostly raise noise). Record louder, "
            "or denoise first and master again."
        )
        info["gain_limited"] = True
    lim_ceiling = ceiling - LIMITER_MARGIN_DB
    gain = min(need, MAX_GAIN_DB)
    history: list[tuple[float, float]] = []  # (gain, modelled loudness)
    passes = 0
    corrective = 0
    linfo: dict[str, float] = {}
    y, loud = x, l_in
    release = release_ms
    bias = 0.0  # measured minus modelled loudness, learnt at every exact pass
    exact_at: tuple[float, float, float] | None = None  # (gain, ceiling, release) of `y`

    def limit() -> None:
        nonlocal y, linfo, loud, passes, exact_at
        passes += 1
        y = x  # let the previous output go before the next one is made (one output in memory, not two)
        if mode == "loud":
            y, linfo, loud, clipped = _loud_pass(x, sr, gain, lim_ceiling, release)
            info["soft_clip"] = {"over_ceiling_db": CLIP_OVER_DB, "clipped_fraction": round(clipped, 5)}
        else:
            y, linfo, loud = model.limit(gain, lim_ceiling, release)
        exact_at = (gain, lim_ceiling, release)

    rounds = 4
    for round_ in range(rounds):  # corrective rounds on true peak
        for _ in range(12):  # loudness iterations, on the model; an exact pass confirms each candidate
            if mode == "loud":  # the clipper is not in the model: every candidate is an exact pass
                limit()
                modelled, mean_gr = loud, linfo["mean_gr_db"]
            else:
                modelled, mean_gr = model(gain, lim_ceiling, release)
            err = aim - (modelled + bias)
            if abs(err) <= LU_TOLERANCE or info.get("gain_limited"):
                if exact_at != (gain, lim_ceiling, release):
                    limit()
                err = aim - loud
                if abs(err) <= LU_TOLERANCE or info.get("gain_limited"):
                    break
                bias = loud - modelled
                y, exact_at = x, None  # the next exact pass makes its own output: hold one at a time
            history.append((gain, modelled))
            if len(history) >= 2 and abs(history[-1][0] - history[-2][0]) > 1e-6:
                (g0, l0), (g1, l1) = history[-2], history[-1]
                slope = min(max((l1 - l0) / (g1 - g0), 0.2), 1.0)
            else:
                slope = 1.0 if mean_gr < 0.5 else 0.7
            gain += err / slope
            if gain - min(need, MAX_GAIN_DB) > MAX_LIMITING_DB:
                if release > 12.0:
                    # a slow release holds the gain down between hits and costs loudness on very
                    # peaky material: retry with a faster (program-dependent) release
                    release = max(10.0, release / 3.0)
                    gain = min(need, MAX_GAIN_DB) + MAX_LIMITING_DB / 2
                    history.clear()
                    continue
                gain = min(need, MAX_GAIN_DB) + MAX_LIMITING_DB
                if not any("of limiting; stopped" in w for w in warnings):
                    warnings.append(
                        f"master: reaching the target needs more than {MAX_LIMITING_DB:.0f} dB of "
                        "limiting; stopped there"
                    )
                limit()
                break
        if exact_at != (gain, lim_ceiling, release):  # the search ran out: measure where it stopped
            limit()
        tp = _tp(y, sr)
        if tp <= ceiling - TP_MARGIN_DB:
            break
        corrective += 1
        lim_ceiling -= tp - (ceiling - TP_MARGIN_DB) + 0.03
        history.clear()
        if round_ + 1 < rounds:  # the next round makes its own output: let this one go first
            y, exact_at = x, None
    info["release_ms_used"] = round(release, 1)
    info.update(
        {
            "gain_db": round(gain, 2),
            "output_lufs": round(loud, 2),
            "true_peak_dbtp": round(tp, 2),
            "limiter": {k: round(v, 3) for k, v in linfo.items()},
            "passes": passes,
            "corrective_passes": corrective,
            "loudness_error_lu": round(loud - target, 2),
        }
    )
    if abs(loud - target) > 0.5 and not info.get("gain_limited"):
        warnings.append(f"master: output is {loud:.1f} LUFS, {loud - target:+.1f} LU from the target")
    if linfo.get("max_gr_db", 0.0) > 8.0:
        warnings.append(
            f"master: up to {linfo['max_gr_db']:.1f} dB of limiting was needed; transients are squashed "
            "(a lower target would keep more punch)"
        )
    return y, info, warnings


def run(audio: Audio, params: MasterParams, ctx: ToolContext) -> ToolResult:
    target, ceiling = resolve_targets(params)
    y, info, warnings = master_array(
        audio.samples, audio.sample_rate, target, ceiling, params.glue, params.release_ms, params.mode
    )
    if params.platform:
        info["platform"] = params.platform
    if params.platform == "audiobook":
        rms = 10 * np.log10(max(float(np.mean(np.square(y, dtype=np.float64))), 1e-20))
        info["rms_dbfs"] = round(rms, 2)
        if not -23.0 <= rms <= -18.0:
            warnings.append(f"master: RMS {rms:.1f} dBFS is outside ACX's −23…−18 dB")
    info["dither"] = "TPDF dither is applied on export at 16/24-bit (tools.audio.save)"
    return ToolResult(audio=audio.with_samples(y), report=info, warnings=warnings)


SPEC = ToolSpec(
    name="master",
    description="final loudness to a target (LUFS) or platform, true-peak ceiling (dBTP) with a limiter, optional glue",
    params=MasterParams,
    run=run,
    stage=Stage.MASTER,
    applies_to=("mix", "music", "speech"),
    verb="mastered to the loudness target with a true-peak limiter",
    scales=(("glue", 0.0),),
    whole_mix=True,
)
