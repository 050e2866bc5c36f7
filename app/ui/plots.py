"""Pictures for the chat UI: waveform, spectrogram, loudness over time, tonal balance.

Every function takes `Audio` (before and after) and returns a matplotlib `Figure` built
without pyplot (so it is safe from the UI's worker threads). Nothing here touches files.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tools.audio import Audio

BEFORE_COLOR = "#9aa5b1"
AFTER_COLOR = "#e8590c"
TARGET_COLOR = "#2b8a3e"

# Bands for the tonal-balance chart: (label, low Hz, high Hz).
BANDS: list[tuple[str, float, float]] = [
    ("sub", 20.0, 60.0),
    ("bass", 60.0, 250.0),
    ("low mid", 250.0, 500.0),
    ("mid", 500.0, 2000.0),
    ("high mid", 2000.0, 4000.0),
    ("presence", 4000.0, 6000.0),
    ("air", 6000.0, 20000.0),
]


def _figure(width: float = 9.0, height: float = 3.0, ncols: int = 1, nrows: int = 1, **kw: Any):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def _mono(audio: Audio) -> np.ndarray:
    return audio.samples.mean(axis=0) if audio.channels > 1 else audio.samples[0]


# ------------------------------------------------------------------------------ waveform


def envelope(audio: Audio, points: int = 1200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Min/max envelope of the mono mix over `points` bins: (times_s, low, high)."""
    x = _mono(audio)
    n = max(1, x.size // points)
    usable = (x.size // n) * n
    blocks = x[:usable].reshape(-1, n)
    t = (np.arange(blocks.shape[0]) * n + n / 2) / audio.sample_rate
    return t, blocks.min(axis=1), blocks.max(axis=1)


def waveform_figure(before: Audio, after: Audio | None = None):
    rows = [("before", before, BEFORE_COLOR)] + ([("after", after, AFTER_COLOR)] if after is not None else [])
    fig, axes = _figure(9.0, 1.6 * len(rows) + 0.6, nrows=len(rows), sharex=True, sharey=True)
    for ax, (label, audio, color) in zip(axes[:, 0], rows):
        t, lo, hi = envelope(audio)
        ax.fill_between(t, lo, hi, color=color, linewidth=0)
        ax.set_ylim(-1.05, 1.05)
        ax.set_ylabel(label)
        ax.axhline(0.0, color="#555", linewidth=0.4)
        ax.margins(x=0)
    axes[-1, 0].set_xlabel("time (s)")
    fig.suptitle("Waveform")
    return fig


# ------------------------------------------------------------------------------ spectrogram


def spectrogram_db(
    audio: Audio, n_fft: int = 2048, max_frames: int = 900
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Magnitude spectrogram of the mono mix in dBFS: (times_s, freqs_hz, S_db[freq, time])."""
    from scipy.signal import stft

    x = _mono(audio).astype(np.float64)
    sr = audio.sample_rate
    hop = max(n_fft // 4, int(math.ceil(x.size / max_frames)))
    f, t, z = stft(x, fs=sr, nperseg=n_fft, noverlap=max(0, n_fft - hop), boundary=None, padded=False)
    mag = np.abs(z) * 2.0  # scipy scales by 1/sum(window): a full-scale sine reads 0 dBFS
    with np.errstate(divide="ignore"):
        s = 20.0 * np.log10(np.maximum(mag, 1e-9))
    return t, f, s


def spectrogram_figure(before: Audio, after: Audio | None = None):
    rows = [("before", before)] + ([("after", after)] if after is not None else [])
    fig, axes = _figure(9.0, 3.0, ncols=len(rows), sharey=True)
    specs = [spectrogram_db(audio) for _, audio in rows]
    top = max(float(s.max()) for _, _, s in specs)  # one colour scale for both, 90 dB deep
    mesh = None
    for ax, (label, audio), (t, f, s) in zip(axes[0], rows, specs):
        keep = f >= 20.0
        mesh = ax.pcolormesh(
            t, f[keep], s[keep], shading="auto", cmap="magma", vmin=top - 90.0, vmax=top, rasterized=True
        )
        ax.set_yscale("log")
        ax.set_ylim(20.0, audio.sample_rate / 2)
        ax.set_title(label)
        ax.set_xlabel("time (s)")
    axes[0, 0].set_ylabel("frequency (Hz)")
    if mesh is not None:
        fig.colorbar(mesh, ax=axes[0, :].tolist(), label="dBFS", shrink=0.9)
    fig.suptitle("Spectrogram")
    return fig


# ------------------------------------------------------------------------------ loudness


def short_term_lufs(audio: Audio) -> tuple[np.ndarray, np.ndarray]:
    """EBU R128 short-term loudness (3 s window) every 100 ms: (times_s at window end, LUFS)."""
    from tools.loudness import SHORT_TERM_S, k_weighted_blocks, power_to_lufs

    blocks = k_weighted_blocks(audio)
    per_hop = blocks.hop // blocks.chunk
    window_hops = int(round(SHORT_TERM_S / 0.1))
    power = blocks.window_mean_power(window_hops, per_hop)
    if power.size == 0:
        return np.empty(0), np.empty(0)
    lufs = power_to_lufs(power)
    t = SHORT_TERM_S + np.arange(power.size) * 0.1
    return t, lufs


def loudness_figure(before: Audio, after: Audio | None = None, target_lufs: float | None = None):
    fig, axes = _figure(9.0, 2.8)
    ax = axes[0, 0]
    lows = []
    for label, audio, color in [("before", before, BEFORE_COLOR), ("after", after, AFTER_COLOR)]:
        if audio is None:
            continue
        t, lufs = short_term_lufs(audio)
        if t.size == 0:
            continue
        shown = np.where(np.isfinite(lufs), lufs, np.nan)
        ax.plot(t, shown, color=color, label=f"{label} (short-term)", linewidth=1.6)
        if np.isfinite(shown).any():
            lows.append(float(np.nanmin(shown)))
    if target_lufs is not None and math.isfinite(target_lufs):
        ax.axhline(
            target_lufs,
            color=TARGET_COLOR,
            linestyle="--",
            linewidth=1.4,
            label=f"target {target_lufs:g} LUFS",
        )
    floor = max(-60.0, min(lows + [target_lufs if target_lufs is not None else 0.0]) - 6.0) if lows else -60.0
    ax.set_ylim(floor, 0.0)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("LUFS")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    ax.set_title("Loudness over time (3 s short-term)")
    if not lows:
        ax.text(0.5, 0.5, "too short for a 3 s short-term loudness", transform=ax.transAxes, ha="center")
    return fig


# ------------------------------------------------------------------------------ tonal balance


def band_levels_db(audio: Audio) -> list[float]:
    """Energy per band of `BANDS` in dB relative to the total (so it does not depend on loudness)."""
    from scipy.signal import welch

    x = _mono(audio).astype(np.float64)
    sr = audio.sample_rate
    f, p = welch(x, fs=sr, nperseg=min(8192, max(256, x.size)))
    total = float(p[(f >= BANDS[0][1]) & (f < BANDS[-1][2])].sum()) or 1e-20
    out = []
    for _, lo, hi in BANDS:
        e = float(p[(f >= lo) & (f < min(hi, sr / 2))].sum())
        out.append(10.0 * math.log10(max(e, 1e-20) / total))
    return out


def genre_target(genre: str | None) -> list[float] | None:
    """A genre's tonal balance on `BANDS` (dB relative to total) from its preset (`tools.genres.load_preset`).

    The presets describe the long-term spectrum as a power-density tilt (`tilt_db_per_octave`,
    pink noise = -3) plus `low_end_db` on 40-120 Hz relative to that line; this integrates that
    spectrum over each band. None when there is no such genre.
    """
    if not genre:
        return None
    from tools.genres import load_preset

    try:
        preset = load_preset(genre.lower().replace(" ", "_").replace("-", "_"))
    except ValueError:
        return None
    return tilt_band_levels(preset.tilt_db_per_octave, preset.low_end_db)


def tilt_band_levels(tilt_db_per_octave: float, low_end_db: float = 0.0) -> list[float]:
    """Band shares (dB re total) of a spectrum whose power density falls `tilt` dB per octave."""
    f = np.geomspace(BANDS[0][1], BANDS[-1][2], 4000)
    psd_db = tilt_db_per_octave * np.log2(f / 1000.0) + np.where((f >= 40.0) & (f <= 120.0), low_end_db, 0.0)
    psd = 10.0 ** (psd_db / 10.0)
    df = np.gradient(f)
    total = float((psd * df).sum())
    return [
        float(10.0 * math.log10(max((psd * df)[(f >= lo) & (f < hi)].sum(), 1e-30) / total))
        for _, lo, hi in BANDS
    ]


def band_levels_flat() -> list[float]:
    """Band levels of pink noise (equal energy per octave) relative to total: the neutral reference."""
    octaves = np.array([math.log2(hi / lo) for _, lo, hi in BANDS])
    share = octaves / octaves.sum()
    return [float(10.0 * math.log10(s)) for s in share]


def tonal_balance_figure(
    before: Audio, after: Audio | None = None, genre: str | None = None, target: list[float] | None = None
):
    labels = [b[0] for b in BANDS]
    series = [("before", band_levels_db(before), BEFORE_COLOR)]
    if after is not None:
        series.append(("after", band_levels_db(after), AFTER_COLOR))
    target = target if target is not None else genre_target(genre)
    fig, axes = _figure(9.0, 2.8)
    ax = axes[0, 0]
    x = np.arange(len(labels))
    width = 0.8 / len(series)
    floor = (
        min(min(v) for _, v, _ in series)
        if target is None
        else min(min(min(v) for _, v, _ in series), min(target))
    )
    floor = 5.0 * math.floor((floor - 3.0) / 5.0)  # bars rise from below the quietest band
    for i, (label, levels, color) in enumerate(series):
        ax.bar(
            x + (i - (len(series) - 1) / 2) * width,
            np.asarray(levels) - floor,
            width,
            bottom=floor,
            color=color,
            label=label,
        )
    if target is not None:
        ax.plot(x, target, color=TARGET_COLOR, marker="o", linestyle="--", label=f"{genre or 'genre'} target")
    ax.set_xticks(
        x,
        [f"{n}\n{int(lo)}–{int(hi) if hi < 1000 else f'{hi / 1000:g}k'}" for n, lo, hi in BANDS],
        fontsize="small",
    )
    ax.set_ylabel("dB re total")
    ax.set_ylim(floor, 0.0)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(loc="upper right", fontsize="small")
    title = "Tonal balance per band"
    if genre and target is None:
        title += f" (no {genre} target available)"
    ax.set_title(title)
    return fig
