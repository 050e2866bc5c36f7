"""separate: split a mix into stems — vocals, drums, bass, other — that sum back to the input.

Two engines:

- **Demucs** (``demucs`` package, the ``separation`` extra) when its weights are on this
  machine, as ``models/weights.py`` resolves them (``mixpilot models pull htdemucs`` installs
  them; model ``htdemucs`` unless the settings name another). Nothing is downloaded here. It runs
  in overlapping segments of the model's length (memory stays bounded on a long song) and reports
  progress through ``ctx.progress`` after each segment.
- **DSP fallback** otherwise, and says so in the report and warnings. It is far weaker
  than Demucs (a few dB of vocal SI-SDR over leaving the mix alone, see
  ``bench/neural.py``): on the mono magnitude STFT, REPET-SIM (each frame's background is
  the median of its most similar frames ≥ 0.5 s away; what does not repeat, and is
  harmonic rather than percussive, is the voice) gives the vocal mask; the rest is split by median-filter HPSS into percussive (drums)
  and harmonic; the harmonic part below ~150 Hz is the bass. Soft masks, applied to each
  channel's complex STFT.

Whatever the engine, ``other`` is the residual ``input − vocals − drums − bass``, so the
four stems add up to the input exactly (to float rounding).

Output: ``ToolResult.audio`` is the input unchanged (this tool splits, it does not
process); the requested stems are in ``ToolResult.extra`` by name. The executor routes a
stem to the next step (e.g. ``pitch_correct`` on ``extra["vocals"]``). Results are cached
through ``ctx.cache`` (bytes; key = audio hash + engine + model + settings); the three
modelled stems are stored and ``other`` is recomputed, so a cache hit sums exactly too.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal, get_args

import numpy as np
from pydantic import Field, field_validator

from tools import dsp
from tools.audio import Audio, resample
from tools.registry import Stage, ToolContext, ToolError, ToolParams, ToolResult, ToolSpec

Stem = Literal["vocals", "drums", "bass", "other"]
STEMS: tuple[Stem, ...] = ("vocals", "drums", "bass", "other")
#: what the step's output is: the mix (the stems ride along), one stem ("extract the vocals"), or the mix
#: without one stem ("karaoke": no_vocals)
Keep = Literal["mix", "vocals", "drums", "bass", "other", "no_vocals", "no_drums", "no_bass", "no_other"]
KEEPS: tuple[str, ...] = get_args(Keep)
CACHE_VERSION = "separate-v1"
CACHE_TTL_S = 24 * 3600.0
_DEMUCS_MODELS: dict[str, Any] = {}

# fallback settings
N_FFT_S = 0.046  # ≈ 2048 samples at 44.1 kHz
REPET_MIN_DISTANCE_S = 0.5
REPET_NEIGHBOURS = 12
VOCAL_LOW_HZ = 120.0
VOCAL_MARGIN = 0.5  # soft-mask margin: lower lets more of what does not repeat into the vocals
BASS_CUTOFF_HZ = 150.0
BASS_TOP_HZ = 260.0


class SeparateParams(ToolParams):
    stems: list[Stem] = Field(
        default_factory=lambda: list(STEMS),
        description="which stems to return (all four are always computed)",
    )
    model: Literal["auto", "demucs", "dsp"] = Field(
        "auto", description="auto = Demucs when its weights are installed, else the DSP fallback"
    )
    keep: Keep = Field(
        "mix",
        description="the output: the mix (stems alongside), one stem, or the mix without one (no_vocals: karaoke)",
    )

    @field_validator("stems")
    @classmethod
    def _stems_ok(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("ask for at least one stem")
        return list(dict.fromkeys(v))


# ---------------------------------------------------------------------------- cache


def audio_hash(audio: Audio) -> str:
    h = hashlib.sha256()
    h.update(f"{audio.sample_rate}:{audio.channels}:{audio.frames}".encode())
    h.update(np.ascontiguousarray(audio.samples).tobytes())
    return h.hexdigest()


def _pack(stems: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    arrays: dict[str, Any] = {k: stems[k].astype(np.float32) for k in ("vocals", "drums", "bass")}
    np.savez(buf, **arrays)
    return buf.getvalue()


def _unpack(blob: bytes, mix: np.ndarray) -> dict[str, np.ndarray] | None:
    try:
        with np.load(io.BytesIO(blob)) as z:
            stems = {k: z[k] for k in ("vocals", "drums", "bass")}
    except Exception:
        return None
    if any(s.shape != mix.shape for s in stems.values()):
        return None
    stems["other"] = _residual(mix, stems)
    return stems


def _residual(mix: np.ndarray, stems: dict[str, np.ndarray]) -> np.ndarray:
    """``mix − vocals − drums − bass`` (float32, without a temporary per term)."""
    other = np.array(mix, dtype=np.float32, copy=True)
    for k in ("vocals", "drums", "bass"):
        other -= stems[k]
    return other


def _sum_error(mix: np.ndarray, stems: dict[str, np.ndarray], block: int = 1 << 18) -> float:
    """Largest ``|vocals + drums + bass + other − mix|``, a block of frames at a time."""
    err = 0.0
    for a in range(0, mix.shape[-1], block):
        total = stems["vocals"][..., a : a + block] + stems["drums"][..., a : a + block]
        for k in ("bass", "other"):
            total += stems[k][..., a : a + block]
        total -= mix[..., a : a + block]
        err = max(err, float(np.max(np.abs(total))))
    return err


def _energy(x: np.ndarray, block: int = 1 << 20) -> float:
    """Sum of squares in float64, a block of frames at a time (no float64 copy of a long input)."""
    flat = x.reshape(-1)
    return float(
        sum(
            np.dot(b, b) for b in (flat[i : i + block].astype(np.float64) for i in range(0, flat.size, block))
        )
    )


# ---------------------------------------------------------------------------- Demucs


def demucs_status() -> tuple[bool, str]:
    """(True, model name) when Demucs and its weights are here, else (False, why)."""
    import importlib.util

    from models.weights import ModelLoadingError, find_demucs

    if importlib.util.find_spec("demucs") is None or importlib.util.find_spec("torch") is None:
        return False, "the demucs package is not installed (pip install 'mixpilot[separation]')"
    try:
        w = find_demucs()
    except ModelLoadingError as exc:
        return False, str(exc)
    return True, w.name


def _demucs_model() -> tuple[Any, str]:
    from models.weights import demucs_model_name, load_demucs

    name = demucs_model_name()
    if name not in _DEMUCS_MODELS:
        _DEMUCS_MODELS.clear()
        _DEMUCS_MODELS[name] = load_demucs(name)
    return _DEMUCS_MODELS[name], name


#: Demucs's chunking: segments of the model's own length (7.8 s for htdemucs), overlapping by this much,
#: cross-faded by `apply_model`; only one segment's activations exist at a time
DEMUCS_OVERLAP = 0.25


def demucs_chunks(model: Any, frames: int, overlap: float = DEMUCS_OVERLAP) -> int:
    """How many segments `apply_model` runs over ``frames`` model-rate samples (every model of a bag),
    by its own rule: segments of ``model.segment`` seconds, a new one every ``(1 - overlap)`` of that."""
    subs = list(getattr(model, "models", [model]))
    total = 0
    for m in subs:
        seg = int(int(m.samplerate) * float(m.segment))
        stride = max(1, int((1 - overlap) * seg))
        total += len(range(0, max(frames, 1), stride))
    return total


def separate_demucs(
    mix: np.ndarray,
    sr: int,
    model: Any,
    device: str = "cpu",
    progress: Callable[[float, str], None] | None = None,
) -> dict[str, np.ndarray]:
    """Demucs stems (before the residual step), each shaped like ``mix``.

    Chunked with overlap (`DEMUCS_OVERLAP`), under ``torch.inference_mode`` (no graph is kept): the
    model's working memory is one segment's. What grows with the length is the input, its normalised
    copy, the model's stems and Demucs's overlap-add weights; a bag's models are accumulated in place
    (``apply_model`` on a bag would hold a second copy of every stem). ``progress(fraction, message)`` is
    called after each segment (fraction = segments done / all, every model of a bag).
    """
    import torch
    from demucs.apply import apply_model

    msr, mch = int(model.samplerate), int(model.audio_channels)
    x = resample(mix, sr, msr) if sr != msr else mix
    if x.shape[0] != mch:
        x = np.repeat(x.mean(axis=0, keepdims=True), mch, axis=0) if x.shape[0] == 1 or mch == 1 else x[:mch]
    # normalised in place: on a copy of the caller's samples, on our own resampled/up-mixed ones as they are
    own = np.require(x, np.float32, ["C", "W"]) if x is not mix else np.array(x, np.float32, order="C")
    wav = torch.from_numpy(own)
    del x, own
    ref = wav.mean(0)
    mean, std = ref.mean(), ref.std().clamp(min=1e-8)
    del ref
    wav.sub_(mean).div_(std)
    subs = list(getattr(model, "models", [model]))
    weights = list(getattr(model, "weights", None) or [[1.0] * len(model.sources)] * len(subs))
    total = demucs_chunks(model, wav.shape[-1])
    done = 0

    def on_chunk(event: dict[str, Any]) -> None:
        nonlocal done
        if event.get("state") != "end" or progress is None:
            return
        done += 1
        progress(min(done, total) / total, f"demucs segment {min(done, total)}/{total}")

    with torch.inference_mode():
        raw: Any = None
        totals = [0.0] * len(model.sources)
        for sub, w in zip(subs, weights):
            est = apply_model(
                sub,
                wav[None],
                shifts=0,
                split=True,
                overlap=DEMUCS_OVERLAP,
                device=device,
                progress=False,
                num_workers=0,
                callback=on_chunk,
            )[0]
            for k, wk in enumerate(w):
                if float(wk) != 1.0:
                    est[k] *= float(wk)
                totals[k] += float(wk)
            if raw is None:
                raw = est
            else:
                raw += est
            del est
        del wav
        raw = raw.cpu()
        for k, t in enumerate(totals):
            if t != 1.0:
                raw[k] /= t
        raw.mul_(std).add_(mean)
    out: np.ndarray = raw.numpy()
    stems: dict[str, np.ndarray] = {}
    n = mix.shape[1]
    for i, name in enumerate(model.sources):
        s = out[i]
        s = resample(s, msr, sr) if sr != msr else s
        s = dsp.fit_length(s, n)
        if mix.shape[0] == 1 and s.shape[0] != 1:
            s = s.mean(axis=0, keepdims=True)
        elif s.shape[0] != mix.shape[0]:
            s = np.resize(s, mix.shape)
        stems[name] = np.ascontiguousarray(s, dtype=np.float32)
    return stems


# ---------------------------------------------------------------------------- DSP fallback


def _repet_sim_background(S: np.ndarray, min_distance: int, k: int) -> np.ndarray:
    """REPET-SIM: each frame's repeating background = median of its ``k`` most similar frames
    at least ``min_distance`` frames away (cosine similarity of magnitude spectra)."""
    T = S.shape[1]
    if 2 * min_distance + 1 >= T:  # too short for neighbours that far apart
        return np.asarray(np.median(S, axis=1, keepdims=True)).repeat(T, axis=1)
    V = S / (np.linalg.norm(S, axis=0, keepdims=True) + 1e-12)
    sim = V.T @ V
    idx = np.arange(T)
    sim[np.abs(idx[:, None] - idx[None, :]) < min_distance] = -np.inf
    kk = min(k, T - 2 * min_distance)
    nn = np.argpartition(-sim, kk - 1, axis=1)[:, :kk]
    out = np.empty_like(S)
    step = 256
    for a in range(0, T, step):
        out[:, a : a + step] = np.median(S[:, nn[a : a + step]], axis=2)
    return np.asarray(np.minimum(out, S))


def _softmask(x: np.ndarray, other: np.ndarray, power: float = 2.0) -> np.ndarray:
    xp, op = x**power, other**power
    return xp / (xp + op + 1e-12)


def separate_dsp(mix: np.ndarray, sr: int) -> dict[str, np.ndarray]:
    """The fallback's stems (before the residual step), each shaped like ``mix``."""
    from scipy.ndimage import median_filter

    n_fft = int(2 ** round(np.log2(N_FFT_S * sr)))
    hop = n_fft // 4
    X = dsp.stft_scipy(mix.astype(np.float64), n_fft, hop)  # (C, F, T)
    S = np.abs(X.mean(axis=0))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    frames_per_s = sr / hop

    # vocals: what does not repeat (REPET-SIM), above the bass range
    bg = _repet_sim_background(S, int(round(REPET_MIN_DISTANCE_S * frames_per_s)), REPET_NEIGHBOURS)
    fg = S - bg
    t_len = max(
        3, int(round(0.2 * frames_per_s)) | 1
    )  # HPSS medians: 200 ms across time, 500 Hz across frequency
    f_len = max(3, int(round(500.0 / (sr / n_fft))) | 1)
    m_voc = _softmask(fg, VOCAL_MARGIN * bg)
    # the voice is harmonic: keep percussive onsets out of the vocal mask
    m_voc *= _softmask(
        median_filter(S, size=(1, t_len), mode="reflect"), median_filter(S, size=(f_len, 1), mode="reflect")
    )
    m_voc *= np.clip((freqs - VOCAL_LOW_HZ * 0.6) / (VOCAL_LOW_HZ * 0.4), 0.0, 1.0)[:, None]

    # drums vs harmonic on the accompaniment: median-filter HPSS
    A = S * (1.0 - m_voc)
    H = median_filter(A, size=(1, t_len), mode="reflect")
    P = median_filter(A, size=(f_len, 1), mode="reflect")
    m_perc = _softmask(P, H)

    # bass: the harmonic accompaniment below ~150 Hz (ramping out by 260 Hz)
    low = np.clip((BASS_TOP_HZ - freqs) / (BASS_TOP_HZ - BASS_CUTOFF_HZ), 0.0, 1.0)[:, None]
    m_drums = (1.0 - m_voc) * m_perc
    m_bass = (1.0 - m_voc) * (1.0 - m_perc) * low

    n = mix.shape[1]
    return {
        "vocals": dsp.istft_scipy(X * m_voc[None], n_fft, hop, n),
        "drums": dsp.istft_scipy(X * m_drums[None], n_fft, hop, n),
        "bass": dsp.istft_scipy(X * m_bass[None], n_fft, hop, n),
    }


# ---------------------------------------------------------------------------- run


def _engine(params: SeparateParams) -> tuple[str, str, list[str]]:
    """('demucs' | 'dsp', model name, warnings)."""
    if params.model == "dsp":
        return "dsp", "dsp-repet-hpss", []
    ok, info = demucs_status()
    if ok:
        return "demucs", info, []
    if params.model == "demucs":
        raise ToolError(f"separate: Demucs was asked for but is unavailable: {info}")
    return (
        "dsp",
        "dsp-repet-hpss",
        [
            f"Demucs is unavailable ({info}); used the DSP fallback (REPET-SIM + HPSS), which separates far less "
            "cleanly: expect bleed between stems"
        ],
    )


def run(audio: Audio, params: SeparateParams, ctx: ToolContext) -> ToolResult:
    t0 = time.perf_counter()
    engine, model_name, warnings = _engine(params)
    mix = audio.samples
    key = f"{CACHE_VERSION}:{audio_hash(audio)}:{engine}:{model_name}"
    stems = None
    cached = False
    if ctx.cache is not None:
        try:
            blob = ctx.cache.get(key)
        except Exception:
            blob = None
        stems = _unpack(blob, mix) if blob else None
        cached = stems is not None
    if stems is None:
        ctx.report_progress(0.05, f"separating ({engine})")
        if engine == "demucs":
            from models.weights import ModelLoadingError

            try:
                model, model_name = _demucs_model()
            except ModelLoadingError as exc:
                raise ToolError(f"separate: {exc}") from None
            raw = separate_demucs(
                mix,
                audio.sample_rate,
                model,
                ctx.device,
                progress=lambda f, m: ctx.report_progress(0.05 + 0.9 * f, m),
            )
            extra = [k for k in raw if k not in STEMS]  # e.g. guitar/piano of htdemucs_6s
            if extra:
                warnings.append(f"model stems {', '.join(extra)} are folded into 'other'")
            stems = {k: raw.get(k, np.zeros_like(mix)) for k in ("vocals", "drums", "bass")}
        else:
            stems = separate_dsp(mix, audio.sample_rate)
        stems["other"] = _residual(mix, stems)
        if ctx.cache is not None:
            try:
                ctx.cache.set(key, _pack(stems), CACHE_TTL_S)
            except Exception as exc:  # a cache that fails must not fail the tool
                warnings.append(f"could not cache the stems ({type(exc).__name__})")
    err = _sum_error(mix, stems)
    mix_energy = _energy(mix) + 1e-20
    shares = {k: round(10 * np.log10((_energy(stems[k]) + 1e-20) / mix_energy), 2) for k in STEMS}
    elapsed = time.perf_counter() - t0
    report = {
        "engine": engine,
        "model": model_name,
        "fallback": engine == "dsp",
        "stems": list(params.stems),
        "stem_energy_db": shares,  # each stem's energy relative to the mix
        "sum_max_error": err,
        "cached": cached,
        "seconds": round(elapsed, 3),
    }
    ctx.report_progress(1.0, "done")
    for k in params.stems:  # ours alone: `Audio` keeps them as they are instead of copying each
        stems[k] = np.ascontiguousarray(stems[k], dtype=np.float32)
        stems[k].flags.writeable = False
    stem_audio: dict[str, Audio] = {k: audio.with_samples(stems[k]) for k in params.stems}
    out = audio if params.keep == "mix" else audio.with_samples(_kept(mix, stems, params.keep))
    report["kept"] = params.keep
    return ToolResult(out, report, warnings, stem_audio)


def _kept(mix: np.ndarray, stems: Mapping[str, np.ndarray], keep: str) -> np.ndarray:
    """The output `keep` names: a stem, or the mix less one stem (exact: the stems sum to the mix)."""
    if keep in STEMS:
        return np.ascontiguousarray(stems[keep], dtype=np.float32)
    if keep.startswith("no_") and keep[3:] in STEMS:
        return np.ascontiguousarray(mix - stems[keep[3:]], dtype=np.float32)
    raise ValueError(f"separate: keep must be one of {', '.join(KEEPS)}, got {keep!r}")


SPEC = ToolSpec(
    name="separate",
    description="split a mix into stems (vocals, drums, bass, other) that sum back to the mix",
    params=SeparateParams,
    run=run,
    stage=Stage.SEPARATE,
    applies_to=("mix",),
    verb="split the track into stems",
    whole_mix=True,
)
