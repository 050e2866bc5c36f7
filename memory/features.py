"""A fixed-length, standardised, versioned embedding of an input recording.

What it describes (``FEATURE_NAMES`` lists every dimension):

- long-term average spectrum in 24 log-spaced bands (40 Hz–16 kHz, about third-octave
  wide at the top), in dB relative to the recording's own mean band level, so the *shape*
  counts and the level does not (bands above the recording's Nyquist read as the floor);
- spectral statistics: centroid, 85 % roll-off and effective bandwidth (log2 Hz), tilt
  (dB/octave), flatness;
- loudness: integrated LUFS, true peak, crest factor;
- dynamics: loudness range, spread of 400 ms levels, onset rate (a cheap stand-in for
  tempo/density);
- width: stereo width, correlation, side/mid ratio in low, mid and high bands;
- content: speech probability, SNR.

Each dimension is standardised with *fixed* centres and scales (typical values of real
recordings, written down here, never fitted to stored data), so a vector means the same
thing next year as today; the spectrum block is scaled down (×0.5) so its 24 bands weigh
about as much as six scalar facts. ``FEATURE_VERSION`` changes whenever any of this
changes; vectors of another version are never compared (the vector store filters on it).

Scalar facts come from `tools.analysis.analyze` when given (or computable); everything else
is measured here on at most ``MAX_SECONDS`` of audio from the middle of the recording.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tools.analysis import is_speech
from tools.audio import Audio

FEATURE_VERSION = 1
FEATURE_TYPE = "audio"
N_BANDS = 24
BAND_LO_HZ, BAND_HI_HZ = 40.0, 16000.0
MAX_SECONDS = 60.0
_FLOOR_REL_DB = -60.0
_EPS = 1e-12
_SIDE_FLOOR_DB = -40.0  # side/mid ratio of mono (no side at all)

_EDGES = np.geomspace(BAND_LO_HZ, BAND_HI_HZ, N_BANDS + 1)
BAND_CENTRES_HZ = np.sqrt(_EDGES[:-1] * _EDGES[1:])
#: reference LTAS shape: -4.5 dB/octave around 1 kHz (typical of mixed music and speech)
_BAND_REF_DB = -4.5 * np.log2(BAND_CENTRES_HZ / 1000.0)
_BAND_REF_DB = _BAND_REF_DB - _BAND_REF_DB.mean()
SPECTRUM_WEIGHT = 0.5

# name, centre, scale (value → (value − centre) / scale), clipped to ±4 after scaling
_SCALARS: list[tuple[str, float, float]] = [
    ("centroid_log2_hz", math.log2(2000.0), 1.2),
    ("rolloff_log2_hz", math.log2(5000.0), 1.3),
    ("bandwidth_log2_hz", math.log2(15000.0), 0.8),
    ("tilt_db_per_octave", -4.5, 2.5),
    ("flatness", 0.15, 0.12),
    ("integrated_lufs", -18.0, 7.0),
    ("true_peak_dbtp", -3.0, 4.0),
    ("crest_db", 15.0, 5.0),
    ("lra_lu", 7.0, 5.0),
    ("level_spread_db", 6.0, 4.0),
    ("onset_rate_hz", 3.0, 2.5),
    ("stereo_width", 0.3, 0.3),
    ("stereo_correlation", 0.7, 0.3),
    ("side_mid_low_db", -25.0, 12.0),
    ("side_mid_mid_db", -15.0, 12.0),
    ("side_mid_high_db", -12.0, 12.0),
    ("speech_probability", 0.5, 0.35),
    ("snr_db", 35.0, 15.0),
]
FEATURE_NAMES: list[str] = [f"band_{int(round(f))}_hz" for f in BAND_CENTRES_HZ] + [n for n, _, _ in _SCALARS]
DIMENSION = len(FEATURE_NAMES)


def _analysis_dict(audio: Audio, analysis: dict[str, Any] | None) -> dict[str, Any]:
    if analysis:
        return analysis
    try:
        from tools.analysis import analyze
    except ImportError:  # pragma: no cover - analysis is part of the product; fallback keeps memory usable
        return {}
    return analyze(audio).to_dict()


def _middle(x: np.ndarray, sr: int) -> np.ndarray:
    n = int(MAX_SECONDS * sr)
    if x.shape[-1] <= n:
        return x
    start = (x.shape[-1] - n) // 2
    return x[..., start : start + n]


def _welch(x: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    from scipy.signal import welch

    nper = int(min(4096, max(256, 2 ** int(math.log2(max(x.shape[-1], 256))))))
    f, p = welch(x, fs=sr, nperseg=min(nper, x.shape[-1]), axis=-1)
    return f, p


def band_levels(freqs: np.ndarray, psd: np.ndarray, sr: int) -> np.ndarray:
    """Mean power in each band, dB (−inf-safe), bands above Nyquist get NaN."""
    out = np.full(N_BANDS, np.nan)
    for i in range(N_BANDS):
        lo, hi = _EDGES[i], _EDGES[i + 1]
        if lo >= sr / 2:
            continue
        sel = (freqs >= lo) & (freqs < hi)
        if not np.any(sel):  # narrow low bands at coarse resolution: nearest bin
            sel = np.zeros_like(freqs, dtype=bool)
            sel[int(np.argmin(np.abs(freqs - math.sqrt(lo * hi))))] = True
        out[i] = 10.0 * math.log10(float(psd[sel].mean()) + _EPS)
    return out


def _envelope_db(x: np.ndarray, sr: int, win_s: float) -> np.ndarray:
    hop = max(1, int(win_s * sr))
    m = x.shape[-1] // hop
    if m == 0:
        return np.zeros(0)
    frames = x[: m * hop].reshape(m, hop)
    return 10.0 * np.log10((frames.astype(np.float64) ** 2).mean(axis=1) + _EPS)


def raw_features(audio: Audio, analysis: dict[str, Any] | None = None) -> dict[str, float]:
    """Unstandardised features by name (useful for explanations and tests)."""
    a = _analysis_dict(audio, analysis)
    sr = audio.sample_rate
    x = _middle(audio.samples, sr).astype(np.float64)
    if x.shape[0] >= 2:
        mid, side = 0.5 * (x[0] + x[1]), 0.5 * (x[0] - x[1])
    else:
        mid, side = x[0], np.zeros_like(x[0])
    f, p_mid = _welch(mid, sr)
    feats: dict[str, float] = {}

    levels = band_levels(f, p_mid, sr)
    valid = np.isfinite(levels)
    loud = levels[valid].max() if valid.any() else 0.0
    # bands more than 60 dB under the loudest band are "empty": clamp so noise-free digital
    # silence and band-limited recordings read the same
    levels = np.where(valid, np.maximum(levels, loud + _FLOOR_REL_DB), loud + _FLOOR_REL_DB)
    rel = levels - levels.mean()
    for name, v in zip(FEATURE_NAMES[:N_BANDS], rel, strict=True):
        feats[name] = float(v)

    sel = (f >= 20.0) & (f <= min(sr / 2, 20000.0))
    pw = p_mid[sel] + _EPS
    fs = f[sel]
    total = float(pw.sum())
    centroid = float(a.get("spectral_centroid_hz") or (np.sqrt(pw) * fs).sum() / np.sqrt(pw).sum())
    cum = np.cumsum(pw)
    rolloff = float(
        a.get("spectral_rolloff_hz") or fs[min(int(np.searchsorted(cum, 0.85 * total)), fs.size - 1)]
    )
    above = fs[pw > pw.max() * 1e-7]
    bandwidth = float(a.get("bandwidth_hz") or (above.max() if above.size else sr / 2))
    lv, lf = levels[valid], np.log2(BAND_CENTRES_HZ[valid])
    tilt_fit = float(np.polyfit(lf, lv, 1)[0]) if lv.size >= 2 else 0.0
    tilt = a.get("spectral_tilt_db_per_octave")
    feats["centroid_log2_hz"] = math.log2(max(centroid, 20.0))
    feats["rolloff_log2_hz"] = math.log2(max(rolloff, 20.0))
    feats["bandwidth_log2_hz"] = math.log2(max(bandwidth, 20.0))
    feats["tilt_db_per_octave"] = float(tilt if tilt is not None else tilt_fit)
    feats["flatness"] = float(np.exp(np.mean(np.log(pw))) / np.mean(pw))

    rms_db = 10.0 * math.log10(float((x**2).mean()) + _EPS)
    peak_db = 20.0 * math.log10(float(np.abs(x).max()) + _EPS)
    lufs = a.get("integrated_lufs")
    feats["integrated_lufs"] = float(lufs if lufs is not None else rms_db - 0.7)
    feats["true_peak_dbtp"] = float(a.get("true_peak_dbtp", peak_db))
    feats["crest_db"] = float(a.get("crest_db", peak_db - rms_db))

    env = _envelope_db(mid, sr, 0.4)
    active = env[env > (env.max() - 40.0)] if env.size else env
    feats["lra_lu"] = float(a.get("lra_lu", 0.0) or 0.0)
    feats["level_spread_db"] = float(np.std(active)) if active.size > 1 else 0.0
    # onset rate: rises of > 4 dB in the 20 ms high-passed envelope, per second
    from scipy.signal import butter, sosfilt

    hp = (
        sosfilt(butter(2, min(2000.0, 0.45 * sr), "highpass", fs=sr, output="sos"), mid) if sr > 4500 else mid
    )
    e = _envelope_db(hp, sr, 0.02)
    if e.size > 3:
        thr = e.max() - 50.0
        rises = (np.diff(e) > 4.0) & (e[1:] > thr)
        onsets = int(np.sum(rises[1:] & ~rises[:-1]))
        feats["onset_rate_hz"] = onsets / (e.size * 0.02)
    else:
        feats["onset_rate_hz"] = 0.0

    feats["stereo_width"] = float(a.get("stereo_width", 0.0) or 0.0)
    feats["stereo_correlation"] = float(
        a.get("stereo_correlation", 1.0) if a.get("stereo_correlation") is not None else 1.0
    )
    if x.shape[0] >= 2 and np.any(side):
        _, p_side = _welch(side, sr)
        for name, (lo, hi) in (
            ("side_mid_low_db", (20, 250)),
            ("side_mid_mid_db", (250, 4000)),
            ("side_mid_high_db", (4000, 20000)),
        ):
            s = (f >= lo) & (f < min(hi, sr / 2))
            feats[name] = (
                10.0 * math.log10((float(p_side[s].sum()) + _EPS) / (float(p_mid[s].sum()) + _EPS))
                if s.any()
                else _SIDE_FLOOR_DB
            )
    else:
        feats.update(
            side_mid_low_db=_SIDE_FLOOR_DB, side_mid_mid_db=_SIDE_FLOOR_DB, side_mid_high_db=_SIDE_FLOOR_DB
        )
    for k in ("side_mid_low_db", "side_mid_mid_db", "side_mid_high_db"):
        feats[k] = max(feats[k], _SIDE_FLOOR_DB)

    feats["speech_probability"] = float(a.get("speech_probability", 0.0) or 0.0)
    feats["snr_db"] = float(a.get("snr_db", 40.0) if a.get("snr_db") is not None else 40.0)
    return feats


def standardise(raw: dict[str, float]) -> np.ndarray:
    """Raw features → the stored vector (float32, ``DIMENSION`` long)."""
    v = np.empty(DIMENSION, dtype=np.float64)
    v[:N_BANDS] = [(raw[n] - r) / 10.0 for n, r in zip(FEATURE_NAMES[:N_BANDS], _BAND_REF_DB, strict=True)]
    v[:N_BANDS] = np.clip(v[:N_BANDS], -4.0, 4.0) * SPECTRUM_WEIGHT
    for i, (name, centre, scale) in enumerate(_SCALARS):
        v[N_BANDS + i] = np.clip((raw[name] - centre) / scale, -4.0, 4.0)
    return np.nan_to_num(v, nan=0.0).astype(np.float32)


def embed(audio: Audio, analysis: dict[str, Any] | None = None) -> np.ndarray:
    """The embedding of `audio` (version ``FEATURE_VERSION``, ``DIMENSION`` floats)."""
    return standardise(raw_features(audio, analysis))


def content_type(analysis: dict[str, Any] | None) -> str:
    """``speech`` or ``music`` (for the vector store's metadata filter)."""
    return "speech" if is_speech(analysis or {}) else "music"


#: squared-distance scale of `similarity` (about the squared distance between unrelated recordings / 2)
SIMILARITY_SCALE = 32.0


def similarity_from_sq_distance(d2: float) -> float:
    """Similarity 0..1 from the squared Euclidean distance of two embeddings (1 = identical)."""
    return float(math.exp(-max(float(d2), 0.0) / SIMILARITY_SCALE))


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Similarity 0..1 of two embeddings (what the vector store ranks by)."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return similarity_from_sq_distance(float(d @ d))
