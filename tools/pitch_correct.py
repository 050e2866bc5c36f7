"""pitch_correct: tune a monophonic voice to a key/scale (torchcrepe f0 + WORLD resynthesis).

1. f0 with torchcrepe (``tiny`` every 20 ms on the CPU, ``full`` every 10 ms on CUDA; Viterbi),
   voiced where the median-filtered periodicity passes ``voicing_threshold`` and the frame
   is within 45 dB of the loudest.
2. Within each voiced run the pitch is split into a slow *note centre* (a 200 ms moving
   average, which cancels 5–7 Hz vibrato) and the wobble around it. The centre is snapped
   to the nearest note of the key/scale (with 30-cent hysteresis so a note held between
   two does not flicker); the snapped target glides with a one-pole of ``retune_ms``
   (0 = instant, robotic; 200+ = gentle).
3. New pitch = sung pitch + ``strength`` × (target − centre) − flatten × (sung − centre),
   where flatten = ((strength − 0.5)/0.5)² above 0.5, else 0: at low strength the note
   centre moves part of the way and vibrato is kept whole; at strength 1 the pitch sits
   on the note (vibrato removed).
4. Resynthesis with WORLD (pyworld: CheapTrick envelope, D4C aperiodicity) from the
   analysed spectral envelope at the new f0, so formants stay where they were. Unvoiced
   stretches (consonants, breaths) keep the original samples, cross-faded over 10 ms, and
   the resynthesis follows the original's 50 ms level envelope.

On input that does not look like one voice (low CREPE periodicity and little energy on the
f0 harmonic comb, as in a full mix or a chord; see `_monophony`), the tool leaves the audio unchanged and warns that it needs
`separate` first (``force=true`` overrides).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import time
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from tools import dsp
from tools.audio import Audio, resample
from tools.intonation import (
    CREPE_SR,
    allowed_pitch_classes,
    crepe_activations,
    decode_activations,
    hz_to_midi,
    nearest_scale_note,
    parse_key,
)
from tools.registry import Stage, ToolContext, ToolError, ToolParams, ToolResult, ToolSpec

HOP_S_CPU = 0.02  # CREPE frames every 20 ms on the CPU (cost), 10 ms on CUDA
HOP_S_GPU = 0.01
WORLD_FRAME_MS = 10.0  # 5 ms doubles the D4C/CheapTrick cost for no audible gain at a 20 ms f0 hop
CENTRE_WINDOW_S = 0.2
HYSTERESIS_SEMITONES = 0.3
MIN_VOICED_S = 0.05
MONOPHONY_MIN = 0.5  # below this the input looks polyphonic (a mix); see _monophony


class PitchCorrectParams(ToolParams):
    key: str = Field("C", description="key root as a note name: C, C#, Db, D, … B")
    scale: Literal["major", "minor", "chromatic"] = Field(
        "chromatic", description="notes allowed: the key's major or natural minor scale, or all 12"
    )
    strength: float = Field(
        0.8,
        ge=0.0,
        le=1.0,
        description="how far notes move to the target, 0 = none, 1 = exactly (vibrato removed)",
    )
    retune_ms: float = Field(
        50.0, ge=0.0, le=500.0, description="how fast the pitch glides to a new target note, 0 = instant"
    )
    reference_hz: float = Field(
        440.0, ge=415.0, le=466.0, description="tuning reference: the frequency of A4"
    )
    voicing_threshold: float = Field(
        0.45, ge=0.1, le=0.9, description="CREPE periodicity above which a frame counts as sung"
    )
    force: bool = Field(
        False, description="correct even if the input looks like a full mix rather than one voice"
    )

    @field_validator("key")
    @classmethod
    def _key_ok(cls, v: str) -> str:
        parse_key(v)
        return v


# ---------------------------------------------------------------------------- WORLD


_PYWORLD: Any = None


def pyworld_module() -> Any:
    """pyworld's compiled module. pyworld ≤ 0.3.5's ``__init__`` imports ``pkg_resources`` (gone
    from setuptools ≥ 81) only to read its version; load the extension directly then."""
    global _PYWORLD
    if _PYWORLD is not None:
        return _PYWORLD
    try:
        import pyworld

        _PYWORLD = pyworld
        return pyworld
    except ModuleNotFoundError as exc:
        if exc.name != "pkg_resources":
            raise
    spec = importlib.util.find_spec("pyworld")
    if spec is None:
        raise ModuleNotFoundError("No module named 'pyworld'", name="pyworld")
    folder = list(spec.submodule_search_locations or [])[0]
    so = next(f for f in os.listdir(folder) if f.startswith("pyworld.") and f.endswith((".so", ".pyd")))
    loader = importlib.machinery.ExtensionFileLoader("pyworld.pyworld", os.path.join(folder, so))
    ext_spec = importlib.util.spec_from_file_location("pyworld.pyworld", loader.path, loader=loader)
    if ext_spec is None:
        raise ModuleNotFoundError(f"cannot load pyworld's extension {loader.path}", name="pyworld")
    mod = importlib.util.module_from_spec(ext_spec)
    loader.exec_module(mod)
    _PYWORLD = mod
    return mod


def check_available() -> tuple[bool, str]:
    for pkg in ("torch", "torchcrepe", "pyworld"):
        if importlib.util.find_spec(pkg) is None:
            return False, f"needs the Python package '{pkg}' (pip install 'mixpilot[neural]')"
    return True, ""


# ---------------------------------------------------------------------------- analysis


def track_pitch(
    x16: np.ndarray, capacity: str, device: str, voicing_threshold: float, hop_s: float = HOP_S_CPU
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """f0 (Hz), periodicity, voiced mask and the analysed frames, every ``hop_s`` of 16 kHz mono."""
    from scipy.ndimage import median_filter

    hop = int(round(hop_s * CREPE_SR))
    win = 1024
    padded = np.pad(x16, (win // 2, win // 2))
    n = 1 + (padded.size - win) // hop
    idx = np.arange(win)[None, :] + hop * np.arange(n)[:, None]
    frames = padded[idx]
    f0, per = decode_activations(
        crepe_activations(frames, capacity, device).numpy(), 65.0, 1050.0, viterbi=True
    )
    per = median_filter(per, size=3, mode="nearest")
    rms_db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    voiced = (per >= voicing_threshold) & (rms_db > rms_db.max() - 45.0)
    voiced = _drop_short_runs(voiced, max(1, int(round(MIN_VOICED_S / hop_s))))
    return f0, per, voiced, frames


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def _drop_short_runs(mask: np.ndarray, min_len: int) -> np.ndarray:
    out = mask.copy()
    for a, b in _runs(mask):
        if b - a < min_len:
            out[a:b] = False
    return out


def _monophony(
    frames: np.ndarray, per: np.ndarray, f0: np.ndarray, voiced: np.ndarray
) -> tuple[float, float, float]:
    """(score, periodicity, harmonicity): how much the input looks like one pitched voice.

    periodicity = median CREPE periodicity over frames within 30 dB of the loudest (a voice or
    a solo instrument: 0.6–0.9; a full mix: 0.0–0.7), harmonicity = `_harmonicity`; the
    score is their product. On the shared fixtures every solo vocal, speech and solo-instrument
    clip scored 0.54–0.91 and every full mix (MUSDB mixtures, the music/ folder) 0.0–0.48.
    """
    rms_db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    active = rms_db > rms_db.max() - 30.0
    periodicity = float(np.median(per[active])) if active.any() else 0.0
    harmonicity = _harmonicity(frames, f0, voiced)
    return periodicity * harmonicity, periodicity, harmonicity


def _harmonicity(frames: np.ndarray, f0: np.ndarray, voiced: np.ndarray) -> float:
    """Median share of 60–4000 Hz energy lying on the f0 harmonic comb, over voiced frames.

    One voice puts most of its energy within ±10 % of f0 around its harmonics (0.8–1.0 on
    the solo vocals in ../shared/fixtures); a mix spreads it over other partials (0.45–0.8).
    """
    sel = np.flatnonzero(voiced)
    if sel.size == 0:
        return 0.0
    sel = sel[np.linspace(0, sel.size - 1, min(sel.size, 200)).round().astype(int)]
    n_fft = 4096
    spec = np.abs(np.fft.rfft(frames[sel] * np.hanning(frames.shape[1]), n=n_fft)) ** 2
    freqs = np.fft.rfftfreq(n_fft, 1 / CREPE_SR)
    band = (freqs >= 60) & (freqs <= 4000)
    shares = []
    for row, f in zip(spec, f0[sel]):
        k = np.round(freqs / f)
        near = (k >= 1) & (np.abs(freqs - k * f) <= np.maximum(0.1 * f, 12.0))
        total = row[band].sum()
        shares.append(row[band & near].sum() / total if total > 0 else 0.0)
    return float(np.median(shares))


# ---------------------------------------------------------------------------- correction curve


def _moving_average(x: np.ndarray, n: int) -> np.ndarray:
    """Moving average of width ``n``, centred, with the window slid inside at the edges
    (so the first and last values still average a whole vibrato cycle); same length."""
    x = np.asarray(x, dtype=np.float64)
    n = min(int(n), x.size)
    if n <= 1:
        return x.copy()
    c = np.concatenate([[0.0], np.cumsum(x)])
    start = np.clip(np.arange(x.size) - n // 2, 0, x.size - n)
    return np.asarray((c[start + n] - c[start]) / n)


def correction_semitones(
    midi: np.ndarray,
    voiced: np.ndarray,
    pcs: np.ndarray,
    strength: float,
    retune_ms: float,
    hop_s: float = HOP_S_CPU,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame shift (semitones) and the target note per frame (NaN where unvoiced)."""
    shift = np.zeros_like(midi)
    target_out = np.full_like(midi, np.nan)
    flatten = ((strength - 0.5) / 0.5) ** 2 if strength > 0.5 else 0.0
    alpha = 0.0 if retune_ms <= 0 else float(np.exp(-hop_s * 1000.0 / retune_ms))
    win = max(1, int(round(CENTRE_WINDOW_S / hop_s)))
    for a, b in _runs(voiced):
        m = midi[a:b]
        centre = _moving_average(m, win)
        target = np.empty_like(centre)
        current = nearest_scale_note(centre[:1], pcs)[0]
        for i, c in enumerate(centre):
            cand = nearest_scale_note(np.array([c]), pcs)[0]
            if cand != current and abs(c - current) - abs(c - cand) > HYSTERESIS_SEMITONES:
                current = cand
            target[i] = current
        glide = target.copy()
        for i in range(1, glide.size):
            glide[i] = alpha * glide[i - 1] + (1 - alpha) * target[i]
        shift[a:b] = strength * (glide - centre) - flatten * (m - centre)
        target_out[a:b] = target
    return shift, target_out


# ---------------------------------------------------------------------------- run


def run(audio: Audio, params: PitchCorrectParams, ctx: ToolContext) -> ToolResult:
    t0 = time.perf_counter()
    pcs = allowed_pitch_classes(params.key, params.scale)
    on_gpu = str(ctx.device).startswith("cuda")
    capacity, hop_s = ("full", HOP_S_GPU) if on_gpu else ("tiny", HOP_S_CPU)
    mono = audio.mono().samples[0]
    x16 = resample(mono[None, :], audio.sample_rate, CREPE_SR)[0] if audio.sample_rate != CREPE_SR else mono
    ctx.report_progress(0.05, f"tracking pitch (torchcrepe {capacity})")
    f0, per, voiced, frames = track_pitch(
        x16.astype(np.float32), capacity, ctx.device, params.voicing_threshold, hop_s
    )
    warnings: list[str] = []
    report: dict[str, Any] = {
        "pitch_model": f"torchcrepe-{capacity}",
        "key": params.key,
        "scale": params.scale,
        "strength": params.strength,
        "retune_ms": params.retune_ms,
        "resynthesis": "WORLD (pyworld)",
    }
    voiced_fraction = float(voiced.mean()) if voiced.size else 0.0
    mono_score, periodicity, harmonicity = _monophony(frames, per, f0, voiced)
    report.update(
        voiced_fraction=round(voiced_fraction, 3),
        periodicity=round(periodicity, 3),
        harmonicity=round(harmonicity, 3),
        monophony=round(mono_score, 3),
    )
    if voiced.sum() < int(round(0.2 / hop_s)):
        warnings.append("no sustained pitched voice found; nothing to tune")
        return ToolResult(audio, {**report, "changed": False}, warnings)
    if mono_score < MONOPHONY_MIN and not params.force:
        warnings.append(
            f"this sounds like a full mix or several voices (monophony {mono_score:.2f} < {MONOPHONY_MIN}); "
            "pitch correction needs one voice: run separate first and tune the vocals stem (or set force=true)"
        )
        return ToolResult(audio, {**report, "changed": False, "looks_polyphonic": True}, warnings)

    midi = hz_to_midi(np.where(voiced, f0, 1.0), params.reference_hz)
    shift, target = correction_semitones(midi, voiced, pcs, params.strength, params.retune_ms, hop_s)
    dev_before = 100 * (midi[voiced] - nearest_scale_note(midi[voiced], pcs))
    dev_after = 100 * (midi[voiced] + shift[voiced] - nearest_scale_note(midi[voiced] + shift[voiced], pcs))
    report.update(
        median_abs_deviation_before_cents=round(float(np.median(np.abs(dev_before))), 1),
        median_abs_deviation_planned_cents=round(float(np.median(np.abs(dev_after))), 1),
        median_abs_shift_cents=round(float(np.median(np.abs(shift[voiced]))) * 100, 1),
        notes=int(len(_runs(voiced))),
    )
    if params.strength == 0.0 or np.max(np.abs(shift)) < 1e-3:
        return ToolResult(
            audio, {**report, "changed": False, "seconds": round(time.perf_counter() - t0, 3)}, warnings
        )

    ctx.report_progress(0.4, "resynthesising (WORLD)")
    out = _resynthesise(audio, f0, voiced, shift, hop_s)
    if not np.isfinite(out).all():
        raise ToolError("pitch_correct: resynthesis produced non-finite samples")
    elapsed = time.perf_counter() - t0
    report.update(
        changed=True, seconds=round(elapsed, 3), real_time_factor=round(elapsed / audio.duration_s, 3)
    )
    ctx.report_progress(1.0, "done")
    return ToolResult(audio.with_samples(out), report, warnings)


def _resynthesise(
    audio: Audio, f0: np.ndarray, voiced: np.ndarray, shift: np.ndarray, hop_s: float
) -> np.ndarray:
    pw = pyworld_module()
    sr = audio.sample_rate
    n = audio.frames
    t_crepe = np.arange(f0.size) * hop_s
    t_world = np.arange(0.0, n / sr, WORLD_FRAME_MS / 1000.0)
    near = np.clip(np.round(t_world / hop_s).astype(int), 0, f0.size - 1)
    v_world = voiced[near]
    f0_w = np.where(v_world, np.interp(t_world, t_crepe, np.where(voiced, f0, np.nan_to_num(f0))), 0.0)
    shift_w = np.where(v_world, np.interp(t_world, t_crepe, shift), 0.0)
    new_f0 = f0_w * 2.0 ** (shift_w / 12.0)
    # where to use WORLD: voiced frames, cross-faded over 10 ms into the untouched original
    from scipy.ndimage import binary_dilation, uniform_filter1d

    ramp = max(1, int(round(10.0 / WORLD_FRAME_MS)))
    mask_frames = uniform_filter1d(binary_dilation(v_world, iterations=ramp).astype(np.float64), 2 * ramp + 1)
    mask = np.interp(np.arange(n) / sr, t_world, mask_frames)
    env_n = max(1, int(0.05 * sr))  # 50 ms energy envelopes for level matching
    out = np.empty_like(audio.samples)
    fft_size = pw.get_cheaptrick_fft_size(sr, 71.0)
    for ch in range(audio.channels):
        x = audio.samples[ch].astype(np.float64)
        sp = pw.cheaptrick(x, f0_w, t_world, sr, fft_size=fft_size)
        ap = pw.d4c(x, f0_w, t_world, sr, fft_size=fft_size)
        y = pw.synthesize(new_f0, sp, ap, sr, WORLD_FRAME_MS)
        y = dsp.fit_length(y, n)
        # WORLD's level drifts from the input's by a dB or two; follow the original's envelope
        env_x = np.sqrt(uniform_filter1d(x**2, env_n) + 1e-12)
        env_y = np.sqrt(uniform_filter1d(y**2, env_n) + 1e-12)
        y = y * np.clip(env_x / env_y, 0.25, 4.0)
        out[ch] = (mask * y + (1.0 - mask) * x).astype(np.float32)
    return out


SPEC = ToolSpec(
    name="pitch_correct",
    description="tune a monophonic voice to a key/scale (pitch correction, auto-tune), keeping formants",
    params=PitchCorrectParams,
    run=run,
    stage=Stage.VOICE,
    applies_to=("vocals",),
    check_available=check_available,
    amount_key="strength",
    verb="tuned the voice",
    voice=True,
)
