"""genre_preset: move a track toward a genre's tonal balance, dynamics and width.

Each genre is a data file, ``tools/presets/<genre>.toml``, read by `tools.genres.load_preset`
(sources for the figures in its comments): target spectral tilt (dB/octave of third-octave
power density, 50 Hz–16 kHz), low-end level (40–120 Hz relative to the tilt line),
compression amount, stereo width with bass-mono crossover, and a typical loudness (reported
for `master`, not applied here).

The tool measures the track first and moves it by a bounded share of the difference:
tilt by ``intensity·clip(target − measured, ±2 dB/oct)``, low end by
``intensity·clip(target − measured, ±4 dB)`` (low end judged against the tilt line
fitted from 150 Hz up), with a linear-phase FIR (the tilt pivots at
1 kHz, held flat outside 40 Hz–16 kHz, and the whole curve is capped at ±9 dB). So the same
preset brightens a dull track and darkens a bright one. Compression (amount
``preset·intensity``) and width (``1 + (preset − 1)·intensity``) follow, then the result is
matched to the input's integrated loudness (level-neutral; loudness is `master`'s job).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from pydantic import Field

from tools import dsp
from tools.audio import Audio
from tools.dsp import peak_warning
from tools.genres import Genre, load_preset
from tools.registry import Stage, ToolContext, ToolParams, ToolResult, ToolSpec

MAX_TILT_MOVE = 2.0
MAX_LOW_MOVE = 4.0
MAX_CURVE_DB = 9.0


class GenrePresetParams(ToolParams):
    genre: Genre = Field("pop", description="genre whose profile to move toward")
    intensity: float = Field(0.6, ge=0.0, le=1.0, description="share of the way toward the genre's targets")


def tone_profile(x: np.ndarray, sr: int, pool: ThreadPoolExecutor | None = None) -> tuple[float, float]:
    """(tilt dB/oct, low-end dB relative to the tilt line) of the long-term spectrum.

    With `pool`, each channel's levels are measured in a thread of its own and their band powers
    averaged: the channel-averaged density's band means, summed in another order.
    """
    if pool is None or x.shape[0] < 2:
        c, lev = dsp.third_octave_levels(x, sr)
    else:
        per_channel = list(pool.map(lambda row: dsp.third_octave_levels(row[None, :], sr), x))
        c = per_channel[0][0]
        lev = 10.0 * np.log10(np.mean([10.0 ** (lc / 10.0) for _, lc in per_channel], axis=0))
    ok = lev > lev.max() - 90.0
    fit = np.polyfit(np.log2(c[ok & (c >= 50.0)]), lev[ok & (c >= 50.0)], 1)
    # the low end is judged against the line through the bands above it (150 Hz up), extrapolated
    upper = np.polyfit(np.log2(c[ok & (c >= 150.0)]), lev[ok & (c >= 150.0)], 1)
    low = c < 120.0
    low_db = float((lev[low] - np.polyval(upper, np.log2(c[low]))).mean())
    return float(fit[0]), low_db


def tone_curve(tilt_db: float, low_db: float, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """(freqs, gains dB) of the tilt+low-end correction, flat outside 40 Hz–16 kHz, capped."""
    f = np.geomspace(20.0, sr / 2, 200)
    lf = np.log2(np.clip(f, 40.0, 16000.0) / 1000.0)
    g = tilt_db * lf
    # low-end bump: full below 80 Hz, raised-cosine to 0 at 240 Hz
    w = np.clip(np.log2(f / 80.0) / np.log2(3.0), 0.0, 1.0)
    g = g + low_db * (0.5 + 0.5 * np.cos(np.pi * w))
    return f, np.clip(g, -MAX_CURVE_DB, MAX_CURVE_DB)


def run(audio: Audio, params: GenrePresetParams, ctx: ToolContext) -> ToolResult:
    # the measurements and the FIR are per channel or independent of each other: two threads (numpy's
    # and scipy's FFTs and filters release the GIL); the same maths as one after the other. scipy is
    # imported here first: a first import of it from two threads at once fails
    import scipy.fft
    import scipy.signal  # noqa: F401

    with ThreadPoolExecutor(max_workers=2) as pool:
        return _run(audio, params, pool)


def _run(audio: Audio, params: GenrePresetParams, pool: ThreadPoolExecutor) -> ToolResult:
    from tools.loudness import integrated_lufs

    preset = load_preset(params.genre)
    sr = audio.sample_rate
    x = audio.samples
    k = params.intensity
    tilt0, low0 = tone_profile(x, sr, pool)
    d_tilt = k * float(np.clip(preset.tilt_db_per_octave - tilt0, -MAX_TILT_MOVE, MAX_TILT_MOVE))
    d_low = k * float(np.clip(preset.low_end_db - low0, -MAX_LOW_MOVE, MAX_LOW_MOVE))
    warnings: list[str] = []
    report: dict[str, Any] = {
        "genre": params.genre,
        "intensity": k,
        "target": {
            key: getattr(preset, key) for key in ("tilt_db_per_octave", "low_end_db", "compression", "width")
        },
        "tilt_before_db_per_octave": round(tilt0, 2),
        "low_end_before_db": round(low0, 2),
        "tilt_change_db_per_octave": round(d_tilt, 2),
        "low_end_change_db": round(d_low, 2),
        "loudness_target_lufs": preset.loudness_lufs,
    }
    if k <= 0:
        report["note"] = "intensity is 0; audio unchanged"
        return ToolResult(audio=audio, report=report)
    f, g = tone_curve(d_tilt, d_low, sr)
    h = dsp.fir_from_curve(f, g, sr)
    y = np.empty_like(x, dtype=np.float32)

    def fir(c: int) -> None:
        y[c : c + 1] = dsp.apply_fir(x[c : c + 1], h)

    list(pool.map(fir, range(audio.channels)))
    # the input's loudness beside the compressor and the width, which run on one thread
    loudness_in = pool.submit(integrated_lufs, audio)
    comp_amount = float(preset.compression) * k
    if comp_amount > 0.01:
        y, cinfo = dsp.compress(y, sr, comp_amount)
        report["compression"] = {
            "amount": round(comp_amount, 3),
            "ratio": cinfo["ratio"],
            "mean_gain_reduction_db": cinfo["gain_reduction_db"]["mean"],
        }
    if audio.channels >= 2:
        width = 1.0 + (float(preset.width) - 1.0) * k
        y, wreport = dsp.stereo_width(y, sr, width, min(float(preset.bass_mono_hz), 300.0), warnings)
        report["width"] = {"factor": round(width, 3), "correlation_after": wreport.get("correlation_after")}
    # level-neutral: tone and dynamics change, loudness is `master`'s job. The tone after is measured
    # beside the loudness, before the level match (a gain moves neither the tilt nor the low end).
    # (read-only views: `Audio` copies a writable array, and y is the tool's own)
    loudness_out = pool.submit(integrated_lufs, audio.with_samples(_read_only(y)))
    tilt1, low1 = tone_profile(y, sr, pool)
    l_in, l_out = loudness_in.result(), loudness_out.result()
    if np.isfinite(l_in) and np.isfinite(l_out):
        y *= np.float32(10.0 ** ((l_in - l_out) / 20.0))
        report["level_match_db"] = round(l_in - l_out, 2)
    report["tilt_after_db_per_octave"] = round(tilt1, 2)
    report["low_end_after_db"] = round(low1, 2)
    if max(float(y.max()), -float(y.min())) > 1.0:  # (no |y| copy for the common case under full scale)
        warnings += peak_warning("genre_preset", y)
    return ToolResult(audio=audio.with_samples(_read_only(y)), report=report, warnings=warnings)


def _read_only(x: np.ndarray) -> np.ndarray:
    v = x.view()
    v.flags.writeable = False
    return v


SPEC = ToolSpec(
    name="genre_preset",
    description="apply a genre's tonal balance (spectral tilt, low end), compression and width, bounded by intensity",
    params=GenrePresetParams,
    run=run,
    stage=Stage.GENRE,
    applies_to=("mix", "music", "speech"),
    amount_key="intensity",
    verb="shaped the tonal balance and dynamics toward the genre",
    whole_mix=True,
)
