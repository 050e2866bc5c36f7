"""Quality metrics: how every step proves it helped.

Intrusive (need the clean reference): PESQ wide band (16 kHz) and narrow band (8 kHz),
STOI and extended STOI, SI-SDR and SDR, log-spectral distance (LSD), and a composite
0–100 score. Non-intrusive (always): DNSMOS P.835 (SIG/BAK/OVRL) and P.808.

All functions take 1-D or (channels, frames) numpy arrays (or `Audio`) and a sample
rate; multi-channel input is averaged to mono. Estimate and reference are trimmed to
the shorter length (align them first if one is delayed).

Stable API (other modules import these names):

- ``pesq_wb(est, ref, sr)``, ``pesq_nb(est, ref, sr)`` → MOS-LQO (float, NaN if PESQ
  finds no speech)
- ``stoi(est, ref, sr, extended=False)``, ``estoi(est, ref, sr)`` → 0..1
- ``si_sdr(est, ref)``, ``sdr(est, ref)`` → dB; ``si_sdr_channels(est, ref)`` → dB over all
  channels (no mono average); ``rms_dbfs(x)`` → level in dBFS
- ``lsd(est, ref, sr)`` → dB (lower is better)
- ``dnsmos(audio, sr=None)`` → ``{"sig", "bak", "ovrl", "p808"}``
- ``composite_score(est, ref, degraded, sr)`` → 0..100
- ``evaluate(estimate, reference=None, sr=None, *, degraded=None, dnsmos=True)`` → dict

Heavy packages (pesq, pystoi, onnxruntime) are imported inside functions; the DNSMOS
ONNX sessions are created once per process and reused.
"""

from __future__ import annotations

import math
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from tools.audio import Audio, resample

__all__ = [
    "pesq_wb",
    "pesq_nb",
    "stoi",
    "estoi",
    "si_sdr",
    "si_sdr_channels",
    "rms_dbfs",
    "sdr",
    "lsd",
    "dnsmos",
    "composite_score",
    "evaluate",
    "COMPOSITE_WEIGHTS",
    "MetricUnavailable",
]

_EPS = 1e-12

#: weights of the composite 0–100 score (they sum to 1); see `composite_score`
COMPOSITE_WEIGHTS = {"si_sdr_gain": 0.5, "lsd_gain": 0.25, "residual": 0.25}


class MetricUnavailable(RuntimeError):
    """A metric's package or model is missing; the message names it."""


# ----------------------------------------------------------------------------- helpers


def _mono(x: Any, sr: int | None = None) -> tuple[np.ndarray, int | None]:
    if isinstance(x, Audio):
        sr = x.sample_rate if sr is None else sr
        x = x.samples
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 2:
        a = a.mean(axis=0)
    if a.ndim != 1:
        raise ValueError(f"expected a 1-D signal or (channels, frames), got shape {np.shape(x)}")
    if a.size == 0:
        raise ValueError("empty signal")
    if not np.isfinite(a).all():
        raise ValueError("signal contains NaN or infinite samples")
    return a, sr


def _pair(est: Any, ref: Any, sr: int | None) -> tuple[np.ndarray, np.ndarray, int | None]:
    e, sr_e = _mono(est, sr)
    r, sr_r = _mono(ref, sr)
    if sr is None:
        sr = sr_e or sr_r
    if sr_e and sr_r and sr_e != sr_r:
        raise ValueError(f"estimate is {sr_e} Hz but reference is {sr_r} Hz; resample one of them")
    n = min(e.size, r.size)
    return e[:n], r[:n], sr


def _need_sr(sr: int | None, what: str) -> int:
    if sr is None:
        raise ValueError(f"{what} needs the sample rate (pass sr=... or Audio objects)")
    return int(sr)


def _to_rate(x: np.ndarray, sr: int, target: int) -> np.ndarray:
    if sr == target:
        return x
    y: np.ndarray = resample(x[None, :].astype(np.float32), sr, target)[0]
    return y.astype(np.float64)


# ----------------------------------------------------------------------------- PESQ / STOI


def _pesq(est: Any, ref: Any, sr: int | None, rate: int, mode: str) -> float:
    try:
        from pesq import pesq as _pesq_fn
    except ImportError as exc:  # pragma: no cover - depends on install
        raise MetricUnavailable("PESQ needs the 'pesq' package (pip install 'mixpilot[neural]')") from exc
    e, r, sr = _pair(est, ref, sr)
    sr = _need_sr(sr, "PESQ")
    e, r = _to_rate(e, sr, rate), _to_rate(r, sr, rate)
    n = min(e.size, r.size)
    if n < rate // 4:
        raise ValueError("PESQ needs at least 0.25 s of audio")
    try:
        return float(_pesq_fn(rate, r[:n], e[:n], mode))
    except Exception as exc:  # NoUtterancesError and friends: silence or no speech
        if "utterance" in str(exc).lower() or type(exc).__name__ == "NoUtterancesError":
            return float("nan")
        raise


def pesq_wb(est: Any, ref: Any, sr: int | None = None) -> float:
    """PESQ wide band (ITU-T P.862.2) at 16 kHz, MOS-LQO 1.04–4.64; NaN when no speech is found."""
    return _pesq(est, ref, sr, 16000, "wb")


def pesq_nb(est: Any, ref: Any, sr: int | None = None) -> float:
    """PESQ narrow band (P.862 + P.862.1 mapping) at 8 kHz; NaN when no speech is found."""
    return _pesq(est, ref, sr, 8000, "nb")


def stoi(est: Any, ref: Any, sr: int | None = None, extended: bool = False) -> float:
    """Short-time objective intelligibility (Taal et al.), 0..1; ``extended=True`` gives ESTOI."""
    try:
        from pystoi import stoi as _stoi_fn
    except ImportError as exc:  # pragma: no cover
        raise MetricUnavailable("STOI needs the 'pystoi' package (pip install 'mixpilot[neural]')") from exc
    e, r, sr = _pair(est, ref, sr)
    sr = _need_sr(sr, "STOI")
    # pystoi resamples to 10 kHz itself with a polyphase filter; do it with soxr instead (faster, cleaner)
    e, r = _to_rate(e, sr, 10000), _to_rate(r, sr, 10000)
    n = min(e.size, r.size)
    return float(_stoi_fn(r[:n], e[:n], 10000, extended=extended))


def estoi(est: Any, ref: Any, sr: int | None = None) -> float:
    """Extended STOI (Jensen & Taal 2016), 0..1."""
    return stoi(est, ref, sr, extended=True)


# ----------------------------------------------------------------------------- SDR family


def si_sdr(est: Any, ref: Any) -> float:
    """Scale-invariant SDR in dB (Le Roux et al. 2019), zero-mean signals."""
    e, r, _ = _pair(est, ref, None)
    e = e - e.mean()
    r = r - r.mean()
    alpha = float(np.dot(e, r) / (np.dot(r, r) + _EPS))
    target = alpha * r
    noise = e - target
    return float(10 * np.log10((np.dot(target, target) + _EPS) / (np.dot(noise, noise) + _EPS)))


def si_sdr_channels(est: np.ndarray, ref: np.ndarray) -> float:
    """Scale-invariant SDR in dB over all channels at once (no mono average, no mean removal).

    Unlike `si_sdr`, a change of the stereo image that cancels in the mono sum still counts.
    Both are ``(channels, frames)`` (or 1-D) of the same channel count, trimmed to the shorter
    length; +inf when the reference is silent.
    """
    n = min(est.shape[-1], ref.shape[-1])
    e = est[..., :n].astype(np.float64).ravel()
    r = ref[..., :n].astype(np.float64).ravel()
    rr = float(np.dot(r, r))
    if rr <= 1e-20:
        return math.inf
    alpha = float(np.dot(e, r)) / rr
    target = alpha * r
    noise = e - target
    nn = float(np.dot(noise, noise))
    return 10 * math.log10(max(float(np.dot(target, target)), 1e-20) / max(nn, 1e-20))


def rms_dbfs(x: np.ndarray) -> float:
    """RMS level of all samples in dBFS (power averaged over channels); -inf for silence or no samples."""
    p = float(np.mean(np.square(x, dtype=np.float64))) if x.size else 0.0
    return 10 * math.log10(p) if p > 0 else -math.inf


def sdr(est: Any, ref: Any) -> float:
    """Plain signal-to-distortion ratio in dB: 10·log10(‖ref‖² / ‖ref − est‖²) (no scaling, no filter)."""
    e, r, _ = _pair(est, ref, None)
    d = r - e
    return float(10 * np.log10((np.dot(r, r) + _EPS) / (np.dot(d, d) + _EPS)))


# ----------------------------------------------------------------------------- spectra


def _power_spec(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    if x.size < n_fft:
        x = np.pad(x, (0, n_fft - x.size))
    win = np.hanning(n_fft + 1)[:-1]
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]
    return np.abs(np.fft.rfft(frames * win, axis=-1)) ** 2


def lsd(
    est: Any,
    ref: Any,
    sr: int | None = None,
    n_fft: int = 2048,
    hop: int = 512,
    max_hz: float | None = None,
    min_hz: float = 0.0,
) -> float:
    """Log-spectral distance in dB: mean over frames of the RMS (over frequency) of the
    difference of the two log power spectra. 0 = identical; lower is better.

    Frames where the reference is silent (60 dB below its loudest frame) are ignored.
    ``min_hz``/``max_hz`` restrict the frequency range (needs ``sr``).
    """
    e, r, sr = _pair(est, ref, sr)
    pe = _power_spec(e, n_fft, hop)
    pr = _power_spec(r, n_fft, hop)
    if min_hz > 0 or max_hz is not None:
        sr = _need_sr(sr, "LSD with a frequency range")
        f = np.fft.rfftfreq(n_fft, 1.0 / sr)
        sel = (f >= min_hz) & (f <= (max_hz if max_hz is not None else sr / 2))
        pe, pr = pe[:, sel], pr[:, sel]
    floor = max(float(pr.max()), _EPS) * 1e-10  # −100 dB re the loudest bin: stops log(0) dominating
    le = 10 * np.log10(pe + floor)
    lr = 10 * np.log10(pr + floor)
    frame_e = pr.sum(axis=1)
    keep = frame_e > frame_e.max() * 1e-6
    if not keep.any():
        keep[:] = True
    d = np.sqrt(np.mean((le[keep] - lr[keep]) ** 2, axis=1))
    return float(d.mean())


# ----------------------------------------------------------------------------- DNSMOS

_DNSMOS_SR = 16000
_DNSMOS_INPUT_S = 9.01


class _Dnsmos:
    """Microsoft DNSMOS (P.835 sig/bak/ovrl and P.808) with the ONNX models bundled in `speechmos`.

    Same pre-processing and polynomial mapping as the authors' ``dnsmos_local.py`` (and
    speechmos): 16 kHz, clips under 9.01 s are repeated (``np.append(audio, audio)``) until
    long enough, 9.01 s windows hopped by 1 s, scores averaged.
    """

    def __init__(self) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise MetricUnavailable("DNSMOS needs 'onnxruntime' (pip install 'mixpilot[neural]')") from exc
        models = _speechmos_models_dir()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        prov = ["CPUExecutionProvider"]
        self.sess = ort.InferenceSession(str(models / "sig_bak_ovr.onnx"), opts, providers=prov)
        self.p808 = ort.InferenceSession(str(models / "model_v8.onnx"), opts, providers=prov)
        self.mel_fb = _mel_filterbank(_DNSMOS_SR, 321, 120)
        self.lock = threading.Lock()

    @staticmethod
    def _poly(sig: float, bak: float, ovr: float) -> tuple[float, float, float]:
        p_ovr = np.poly1d([-0.06766283, 1.11546468, 0.04602535])
        p_sig = np.poly1d([-0.08397278, 1.22083953, 0.0052439])
        p_bak = np.poly1d([-0.13166888, 1.60915514, -0.39604546])
        return float(p_sig(sig)), float(p_bak(bak)), float(p_ovr(ovr))

    def melspec(self, seg: np.ndarray) -> np.ndarray:
        """librosa.feature.melspectrogram(n_fft=321, hop=160, n_mels=120) → power_to_db(ref=max), scaled."""
        n_fft, hop = 321, 160
        y = np.pad(seg, (n_fft // 2, n_fft // 2), mode="constant")
        win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
        frames = np.lib.stride_tricks.sliding_window_view(y, n_fft)[::hop]
        spec = np.abs(np.fft.rfft(frames * win, axis=-1)) ** 2  # (t, f)
        mel = spec @ self.mel_fb.T  # (t, mels)
        db = 10.0 * np.log10(np.maximum(mel, 1e-10))
        db -= 10.0 * np.log10(max(float(mel.max()), 1e-10))
        db = np.maximum(db, db.max() - 80.0)
        return np.asarray((db + 40.0) / 40.0, dtype=np.float32)

    def __call__(self, audio: np.ndarray) -> dict[str, float]:
        audio = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
        fs = _DNSMOS_SR
        need = int(_DNSMOS_INPUT_S * fs)
        while audio.size < need:
            audio = np.append(audio, audio)
        num_hops = int(np.floor(audio.size / fs) - _DNSMOS_INPUT_S) + 1
        sig, bak, ovr, p808 = [], [], [], []
        with self.lock:
            for idx in range(num_hops):
                seg = audio[int(idx * fs) : int((idx + _DNSMOS_INPUT_S) * fs)]
                if seg.size < need:
                    continue
                p = self.p808.run(None, {"input_1": self.melspec(seg[:-160].astype(np.float64))[None]})[0][0][
                    0
                ]
                raw = self.sess.run(None, {"input_1": seg[None, :].astype(np.float32)})[0][0]
                s, b, o = self._poly(*map(float, raw))
                sig.append(s)
                bak.append(b)
                ovr.append(o)
                p808.append(float(p))
        return {
            "sig": float(np.mean(sig)),
            "bak": float(np.mean(bak)),
            "ovrl": float(np.mean(ovr)),
            "p808": float(np.mean(p808)),
        }


def _speechmos_models_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("speechmos")
    if spec is None or not spec.submodule_search_locations:
        raise MetricUnavailable(
            "DNSMOS needs the 'speechmos' package for its bundled ONNX models "
            "(pip install 'mixpilot[neural]')"
        )
    d = Path(list(spec.submodule_search_locations)[0]) / "dnsmos_models"
    for name in ("sig_bak_ovr.onnx", "model_v8.onnx"):
        if not (d / name).is_file():
            raise MetricUnavailable(f"DNSMOS model {d / name} is missing; reinstall speechmos")
    return d


def _mel_filterbank(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Slaney-style mel filterbank with Slaney area normalisation (librosa.filters.mel defaults)."""

    def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
        f = np.asarray(f, dtype=np.float64)
        f_sp = 200.0 / 3
        mels = f / f_sp
        min_log_hz = 1000.0
        min_log_mel = min_log_hz / f_sp
        logstep = np.log(6.4) / 27.0
        return np.where(
            f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, mels
        )

    def mel_to_hz(m: np.ndarray) -> np.ndarray:
        m = np.asarray(m, dtype=np.float64)
        f_sp = 200.0 / 3
        freqs = f_sp * m
        min_log_hz = 1000.0
        min_log_mel = min_log_hz / f_sp
        logstep = np.log(6.4) / 27.0
        return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), freqs)

    fftfreqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2.0), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fftfreqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels])
    return np.asarray(weights * enorm[:, None])


_DNSMOS_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _dnsmos_model() -> _Dnsmos:
    with _DNSMOS_LOCK:
        return _Dnsmos()


def dnsmos(audio: Any, sr: int | None = None) -> dict[str, float]:
    """DNSMOS P.835 ``sig``, ``bak``, ``ovrl`` and P.808 ``p808`` (MOS 1–5), non-intrusive.

    Accepts `Audio` or an array with ``sr``; resampled to 16 kHz mono. Model sessions are
    created on the first call and reused.
    """
    x, sr = _mono(audio, sr)
    sr = _need_sr(sr, "DNSMOS")
    x = _to_rate(x, sr, _DNSMOS_SR)
    return _dnsmos_model()(x)


# ----------------------------------------------------------------------------- composite


def _sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def composite_score(est: Any, ref: Any, degraded: Any = None, sr: int | None = None) -> float:
    """A 0–100 score of how close ``est`` is to ``ref`` and how much it improved on ``degraded``.

    Three parts, each mapped to 0..1, weighted by `COMPOSITE_WEIGHTS`:

    - ``si_sdr_gain`` (0.5): SI-SDR(est) − SI-SDR(degraded) through a logistic with a 4 dB
      scale (no gain → 0.5, +6 dB → 0.82, −6 dB → 0.18). Without ``degraded`` the
      absolute SI-SDR is used with the logistic centred on 10 dB.
    - ``lsd_gain`` (0.25): LSD(degraded) − LSD(est) through a logistic with a 1.5 dB scale
      (without ``degraded``: centred on an absolute LSD of 3 dB, lower is better).
    - ``residual`` (0.25): energy of what is left after projecting ``est`` on ``ref``,
      relative to the reference: 0 dB → 0, −40 dB or less → 1, linear in dB between.
    """
    e, r, sr = _pair(est, ref, sr)
    s_est = si_sdr(e, r)
    l_est = lsd(e, r, sr)
    if degraded is not None:
        d, _, _ = _pair(degraded, r, sr)
        n = min(d.size, e.size)
        e, r, d = e[:n], r[:n], d[:n]
        c_sdr = _sigmoid((s_est - si_sdr(d, r)) / 4.0)
        c_lsd = _sigmoid((lsd(d, r, sr) - l_est) / 1.5)
    else:
        c_sdr = _sigmoid((s_est - 10.0) / 4.0)
        c_lsd = _sigmoid((3.0 - l_est) / 1.5)
    ez, rz = e - e.mean(), r - r.mean()
    alpha = float(np.dot(ez, rz) / (np.dot(rz, rz) + _EPS))
    res = ez - alpha * rz
    res_db = 10 * np.log10((np.dot(res, res) + _EPS) / (np.dot(rz, rz) + _EPS))
    c_res = float(np.clip(-res_db / 40.0, 0.0, 1.0))
    w = COMPOSITE_WEIGHTS
    return float(100.0 * (w["si_sdr_gain"] * c_sdr + w["lsd_gain"] * c_lsd + w["residual"] * c_res))


# ----------------------------------------------------------------------------- one call


def evaluate(
    estimate: Any,
    reference: Any = None,
    sr: int | None = None,
    *,
    degraded: Any = None,
    dnsmos: bool = True,
    speech: bool = True,
) -> dict[str, float | None]:
    """All metrics that apply, in one JSON-able dict.

    Always (non-intrusive, when ``dnsmos`` and ``speech``): ``dnsmos_sig``, ``dnsmos_bak``,
    ``dnsmos_ovrl``, ``dnsmos_p808``. With a ``reference``: ``si_sdr``, ``sdr``, ``lsd`` and,
    for speech, ``pesq_wb``, ``pesq_nb``, ``stoi``, ``estoi``; plus ``composite`` (0–100,
    relative to ``degraded`` when given). A metric whose package is missing is ``None``.
    """
    x, sr = _mono(estimate, sr)
    sr = _need_sr(sr, "evaluate")
    out: dict[str, float | None] = {}
    if dnsmos and speech:
        try:
            d = _dnsmos_scores(x, sr)
            out.update({f"dnsmos_{k}": v for k, v in d.items()})
        except MetricUnavailable:
            out.update({k: None for k in ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808")})
    if reference is not None:
        r, sr_r = _mono(reference, sr)
        if sr_r is not None and sr_r != sr:
            raise ValueError(f"estimate is {sr} Hz but reference is {sr_r} Hz; resample one of them")
        out["si_sdr"] = si_sdr(x, r)
        out["sdr"] = sdr(x, r)
        out["lsd"] = lsd(x, r, sr)
        if speech:
            for name, fn in (("pesq_wb", pesq_wb), ("pesq_nb", pesq_nb), ("stoi", stoi), ("estoi", estoi)):
                try:
                    out[name] = fn(x, r, sr)
                except MetricUnavailable:
                    out[name] = None
        out["composite"] = composite_score(x, r, degraded, sr)
    return out


_dnsmos_scores = dnsmos  # `evaluate` has a flag with the same name
