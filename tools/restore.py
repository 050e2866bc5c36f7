"""restore: repair what the diagnosis finds, each problem with its specialised tool.

``restore`` is a router. It diagnoses the input (`tools.diagnose`; or takes the problems
it is told in ``problems``), then runs one repair per problem found, in canonical order:

    clipping → declip · hum → notch comb at the mains lines (`tools.dsp.hum_notch`) ·
    noise → denoise (spectral gating; rumble → 20 Hz high-pass) · reverb (speech) → dereverb ·
    bandlimited → not repaired (see below)

Each repair's strength follows the finding's severity and ``strength`` (see `ROUTES`).
Nothing found, nothing run: a clean recording comes back sample for sample. Specialised
tools are looked up in the registry at call time (a tool never imports another tool).

What `bench/restore.py` measured decides the table (SI-SDR change against the degraded
input, held-out degradations of real recordings from ``../shared/fixtures``):

- **bandlimited is reported, not repaired**: bandwidth extension synthesises a top band
  that is not the lost one, so it lowers SI-SDR (−0.2 to −3.4 dB); run
  ``bandwidth_extension`` on purpose when brightness matters more than fidelity.
- **Op-GAN refinement** (the 1D Operational GAN, Self-ONN generator of
  ``models/opgan.py``) runs only when every problem found is one where it helped on the
  tuning split (`REFINE_AFTER`: denoise, not the rumble high-pass). It restores the same input, and the chain's output is
  mixed with it (`REFINE_BLEND` = 30 % generator): two estimates whose errors differ, +0.24 dB
  over denoise alone. Run on the chain's output instead it was neutral after denoise and
  cost 3-4.5 dB after declip and the hum notch. ``refine="always"`` blends after any repair.
- **A subtractive repair removes at most what was measured**: denoise and the hum notch
  may take out the measured noise (or hum) power plus 3 dB; beyond that they are eating
  the recording and their output is blended back until it fits.
- **reverb** is repaired only on clear speech (speech probability ≥ 0.65).
- ``mode="opgan"`` runs the generator alone, blind (the old behaviour, kept to compare).

The generator (``models/checkpoints/opgan_small.pt``, ``OPGAN_CARD.md`` beside it) works on
mono 16 kHz waveforms: each channel is resampled to the model rate, peak-normalised with
one gain for the whole signal, run in overlapping chunks (each sees ``context_s`` extra
audio either side, thrown away; neighbours cross-fade with complementary sin² ramps), scaled
back and resampled. Content above 8 kHz passes through from the input (``keep_high_band``).
The checkpoint is loaded once per (path, device) and cached.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from tools.audio import Audio, resample
from tools.registry import Stage, ToolContext, ToolError, ToolParams, ToolResult, ToolSpec, ToolUnavailable

WEIGHTS_ENV = "MIXPILOT_OPGAN_WEIGHTS"
DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "models" / "checkpoints" / "opgan_small.pt"

RepairProblem = Literal["clipping", "hum", "noise", "reverb", "bandlimited"]


class RestoreParams(ToolParams):
    strength: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="scales every repair (and the blind generator's wet/dry mix); 0 = input unchanged",
    )
    mode: Literal["routed", "opgan"] = Field(
        "routed",
        description="routed: repair each problem the diagnosis finds with its tool; opgan: the blind "
        "Op-GAN generator alone",
    )
    problems: list[RepairProblem] | None = Field(
        None,
        description="repair these problems (at their measured severity, 0.7 if the diagnosis did not find them) "
        "instead of the ones it finds; None = what the diagnosis finds",
    )
    refine: Literal["auto", "always", "never"] = Field(
        "auto", description="Op-GAN refinement after the repairs: auto = only where it measurably helps"
    )
    chunk_s: float = Field(
        4.0, ge=0.5, le=30.0, description="Op-GAN: length of each chunk the model sees, in seconds"
    )
    overlap_s: float = Field(
        0.25, ge=0.02, le=2.0, description="Op-GAN: cross-fade between chunks, in seconds"
    )
    context_s: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description="Op-GAN: extra audio each chunk sees on both sides (discarded), in seconds",
    )
    keep_high_band: bool = Field(
        True, description="Op-GAN: pass through the input's content above the model's band (8 kHz)"
    )


# ----------------------------------------------------------------------------- the routing table


@dataclass(frozen=True)
class Route:
    """How one problem is repaired: a registry tool (or None for an in-house DSP step) and its params."""

    problem: str
    tool: str | None
    params: Callable[
        [float, float, dict[str, Any]], dict[str, Any]
    ]  # (severity, strength, measurements) → params
    what: str  # words for the report


def _declip_params(sev: float, strength: float, m: dict[str, Any]) -> dict[str, Any]:
    # declip rewrites only the clipped samples (the severity already says how many); a partial blend
    # leaves part of each clipped peak flat: strength 0.8 gave +9.0 dB, 1.0 +12.0 dB (bench, tuning split)
    return {"strength": strength, "iterations": 150}


def _denoise_params(sev: float, strength: float, m: dict[str, Any]) -> dict[str, Any]:
    # spectral gating (DeepFilterNet took music for speech and lowered SI-SDR 12 dB on average on the bench);
    # speech takes a harder gate than music, whose quiet passages the gate mistakes for noise
    speech = m.get("content") == "speech"
    lo, hi = (0.5, 1.0) if speech else (0.3, 0.7)
    return {"strength": round(strength * (lo + (hi - lo) * sev), 3), "method": "spectral"}


def _dereverb_params(sev: float, strength: float, m: dict[str, Any]) -> dict[str, Any]:
    return {"strength": round(strength * (0.2 + 0.5 * sev), 3)}


ROUTES: tuple[Route, ...] = (  # canonical order: undo the last nonlinearity first, broadband after narrowband
    Route("clipping", "declip", _declip_params, "declip"),
    Route("hum", None, lambda s, k, m: {}, "hum notch"),
    Route("noise", "denoise", _denoise_params, "denoise"),
    Route("reverb", "dereverb", _dereverb_params, "dereverb"),
)
#: found but deliberately not repaired here, and why (bench/restore.py figures)
NOT_REPAIRED: dict[str, str] = {
    "bandlimited": "bandwidth extension invents a top band that is not the lost one and lowered SI-SDR "
    "(-0.2 to -3.4 dB on the bench); run bandwidth_extension explicitly for brightness",
}
#: the Op-GAN refinement runs (refine="auto") only when every repair that ran is one of these tools and every
#: problem found is one they repair. On the tuning split, the generator's output mixed 30 % into the denoised
#: one gained +0.22 dB over denoise alone (white +0.3, pink +0.4, real +0.05; 50 %: +0.04, 70 %: -0.3); after the
#: rumble high-pass it cost 5 dB, run after declip 3.4-4.5 dB, after the hum notch 2-3 dB: those stay out.
REFINE_AFTER: frozenset[str] = frozenset({"denoise"})
#: share of the generator's restoration in the refined output
REFINE_BLEND = 0.3
#: width of each hum notch: 0.5 Hz gained +10.2 dB SI-SDR on hum 15 dB under the music (1 Hz +9.0, 2 Hz +7.2),
#: and takes less of the music where it has partials on the mains lines
HUM_NOTCH_WIDTH_HZ = 0.5
#: severity given to each problem named in ``problems`` (no diagnosis to measure it)
ORDERED_SEVERITY = 0.7
#: reverb is repaired on clear speech only (WPE on music misread as speech smeared it: −6 to −18 dB on the bench)
REVERB_MIN_SPEECH_PROBABILITY = 0.65
#: a subtractive repair (denoise, hum notch) may remove at most the measured noise or hum power plus this
#: margin; beyond it, it is eating the recording, and its output is blended back until it fits
REMOVAL_MARGIN_DB = 3.0


def weights_path() -> Path:
    """The generator file: ``opgan_weights`` of the installed weight sources (``MIXPILOT_OPGAN_WEIGHTS``,
    read by `app.settings.Settings`), else the shipped one."""
    from models.weights import current_sources

    return current_sources().opgan_weights or DEFAULT_WEIGHTS


_LOCK = threading.Lock()
_CACHE: dict[tuple[str, str], tuple[Any, dict[str, Any]]] = {}


def load_generator(path: Path | None = None, device: str = "cpu") -> tuple[Any, dict[str, Any]]:
    """The generator (float32, eval mode) and its meta, loaded once per (path, device)."""
    from models.weights import ModelLoadingError

    p = Path(path) if path is not None else weights_path()
    key = (str(p.resolve()), device)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        if not p.is_file():
            raise ModelLoadingError(
                f"Op-GAN generator not found at {p}; set {WEIGHTS_ENV} to a file written by "
                "python -m models.train_opgan (generator_fp16.pt)"
            )
        import torch

        from models.opgan import generator_from_payload

        try:
            payload = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ModelLoadingError(
                f"Op-GAN checkpoint {p} could not be read ({type(exc).__name__}: {exc})"
            ) from None
        gen, meta = generator_from_payload(payload)
        gen.to(device)
        _CACHE[key] = (gen, meta)
        return gen, meta


def _ramp(n: int) -> np.ndarray:
    """Rising sin² ramp of n samples; ramp + ramp[::-1] == 1."""
    if n <= 0:
        return np.zeros(0, dtype=np.float64)
    t = (np.arange(n) + 0.5) / n
    return np.sin(0.5 * np.pi * t) ** 2


def apply_chunked(
    fn: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    chunk: int,
    overlap: int,
    context: int = 0,
    multiple: int = 1,
    batch: int = 8,
) -> np.ndarray:
    """Run ``fn`` on overlapping chunks of the 1-D signal ``x`` and cross-fade them together.

    ``fn`` maps a float32 array ``(n_chunks, length)`` to the same shape. Each chunk covers
    ``chunk`` output samples plus ``context`` samples either side (zero beyond the ends),
    padded up to a multiple of ``multiple``; neighbours overlap by ``overlap`` samples and
    are blended with complementary sin² ramps (weights sum to exactly 1).
    """
    n = x.size
    if chunk <= overlap:
        raise ValueError(f"chunk ({chunk}) must be longer than the overlap ({overlap})")
    if n <= chunk:
        starts = [0]
        chunk = n
    else:
        step = chunk - overlap
        starts = list(range(0, n - chunk, step)) + [n - chunk]
    win_len = chunk + 2 * context
    win_len += (-win_len) % max(1, multiple)
    xp = np.pad(x.astype(np.float32), (context, context + win_len))
    out = np.zeros(n, dtype=np.float64)
    wsum = np.zeros(n, dtype=np.float64)
    segs = np.stack([xp[s : s + win_len] for s in starts])
    ys = np.concatenate([fn(segs[i : i + batch]) for i in range(0, len(segs), batch)], axis=0)
    for k, s in enumerate(starts):
        y = ys[k, context : context + chunk].astype(np.float64)
        w = np.ones(chunk)
        if k > 0:  # fade in over the whole overlap with the previous chunk (the last one may overlap more)
            ov = starts[k - 1] + chunk - s
            w[:ov] *= _ramp(ov)
        if (
            k < len(starts) - 1
        ):  # fade out over the overlap with the next chunk: the complement of its fade-in
            ov = s + chunk - starts[k + 1]
            w[chunk - ov :] *= _ramp(ov)[::-1]
        out[s : s + chunk] += y * w
        wsum[s : s + chunk] += w
    return (out / np.maximum(wsum, 1e-9)).astype(np.float32)


def _model_fn(gen: Any, device: str) -> Callable[[np.ndarray], np.ndarray]:
    import torch

    def fn(segs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            t = torch.from_numpy(np.ascontiguousarray(segs, dtype=np.float32))[:, None].to(device)
            out: np.ndarray = gen(t)[:, 0].float().cpu().numpy()
            return out

    return fn


def restore_mono(
    x: np.ndarray,
    gen: Any,
    params: RestoreParams,
    device: str = "cpu",
    progress: Callable[[float], None] | None = None,
) -> np.ndarray:
    """Restore one channel already at the model rate (global peak normalisation, chunked)."""
    sr = gen.cfg.sample_rate
    peak = float(np.max(np.abs(x)))
    if peak < 1e-7:
        return x.astype(np.float32).copy()
    s = 0.9 / peak
    chunk = int(params.chunk_s * sr)
    overlap = min(int(params.overlap_s * sr), chunk // 2)
    y = apply_chunked(_model_fn(gen, device), x * s, chunk, overlap, int(params.context_s * sr), gen.cfg.hop)
    return (y / s).astype(np.float32)


# ----------------------------------------------------------------------------- the router


def run(audio: Audio, params: RestoreParams, ctx: ToolContext) -> ToolResult:
    import time

    t0 = time.perf_counter()
    if params.mode == "opgan":
        out, report, warnings = _opgan(audio, params, ctx, params.strength)
        report.update(
            mode="opgan", seconds=round(time.perf_counter() - t0, 3), change_db=_change_db(out, audio.samples)
        )
        return ToolResult(audio=audio.with_samples(out), report=report, warnings=warnings)
    if params.strength == 0.0:
        return ToolResult(
            audio=audio.with_samples(audio.samples.copy()),
            report={
                "mode": "routed",
                "summary": "strength 0: nothing run",
                "found": [],
                "steps": [],
                "not_repaired": [],
                "refined": False,
                "change_db": None,
            },
        )

    found, facts, source, warnings = _findings(audio, params, ctx)
    found.sort(key=lambda f: _ORDER.get(f.problem, 99))
    cur = audio
    steps: list[dict[str, Any]] = []
    not_repaired: list[dict[str, str]] = []
    todo = [f for f in found if f.problem in _ROUTE]
    for i, f in enumerate(todo):
        route = _ROUTE[f.problem]
        p_speech = facts.get("speech_probability")
        if f.problem == "reverb" and p_speech is not None and p_speech < REVERB_MIN_SPEECH_PROBABILITY:
            not_repaired.append(
                {
                    "problem": "reverb",
                    "why": f"dereverberation is for speech (speech probability "
                    f"{p_speech:.2f}); on music WPE smears the recording",
                }
            )
            continue
        ctx.report_progress(i / max(len(todo), 1), f"{route.what} for {f.problem}")
        m = {**f.measurements, "content": facts.get("content")}
        ts = time.perf_counter()
        prev = cur
        try:
            cur, step = _run_route(route, cur, f, params.strength, m, facts, ctx)
        except (ToolUnavailable, ToolError) as exc:
            not_repaired.append({"problem": f.problem, "why": str(exc)})
            warnings.append(f"{f.problem} not repaired: {exc}")
            continue
        cur = _within_budget(prev, cur, _removal_budget_db(f.problem, f.measurements), step)
        step.update(
            problem=f.problem,
            severity=round(float(f.severity), 2),
            seconds=round(time.perf_counter() - ts, 3),
        )
        steps.append(step)
    for f in found:
        if f.problem in NOT_REPAIRED:
            not_repaired.append({"problem": f.problem, "why": NOT_REPAIRED[f.problem]})

    refined, refine_reason = _should_refine(
        params.refine, {f.problem for f in found}, {s["tool"] for s in steps}
    )
    if refined:
        try:
            y, info, w = _opgan(audio, params, ctx, 1.0)  # the generator's own restoration of the input
            cur = cur.with_samples(((1.0 - REFINE_BLEND) * cur.samples + REFINE_BLEND * y).astype(np.float32))
            warnings += w
            steps.append(
                {
                    "problem": "refinement",
                    "tool": "opgan",
                    "params": {"blend": REFINE_BLEND},
                    "checkpoint_step": info["checkpoint_step"],
                    "seconds": info["seconds"],
                }
            )
        except ToolUnavailable as exc:
            refined, refine_reason = False, f"Op-GAN refinement skipped: {exc}"
            warnings.append(refine_reason)
    ctx.report_progress(1.0, "restored")

    out = cur.samples if steps else audio.samples.copy()
    report = {
        "mode": "routed",
        "diagnosis": source,
        "found": [
            {
                "problem": f.problem,
                "severity": round(float(f.severity), 2),
                "evidence": f.evidence,
                "measurements": dict(f.measurements),
            }
            for f in found
        ],
        "content": facts.get("content"),
        "speech_probability": facts.get("speech_probability"),
        "steps": steps,
        "not_repaired": not_repaired,
        "refined": refined,
        "refine_reason": refine_reason,
        "summary": _summary(found, steps, not_repaired),
        "seconds": round(time.perf_counter() - t0, 3),
        "change_db": _change_db(out, audio.samples) if steps else None,
    }
    return ToolResult(audio=audio.with_samples(out.astype(np.float32)), report=report, warnings=warnings)


_ROUTE = {r.problem: r for r in ROUTES}
_ORDER = {p: i for i, p in enumerate([r.problem for r in ROUTES] + list(NOT_REPAIRED))}


def _findings(
    audio: Audio, params: RestoreParams, ctx: ToolContext
) -> tuple[list[Any], dict[str, Any], str, list[str]]:
    """The repair findings to act on, the diagnosis facts, where they came from, warnings."""
    from tools.diagnose import REPAIR_PROBLEMS, Finding, diagnose

    warnings: list[str] = []
    try:
        from tools.analysis import Analysis

        diag = diagnose(audio, ctx.analysis if isinstance(ctx.analysis, Analysis) else None)
        measured, facts = (
            {f.problem: f for f in diag.findings if f.problem in REPAIR_PROBLEMS},
            dict(diag.facts),
        )
    except Exception as exc:  # a diagnosis bug must not take an explicit order down
        if params.problems is None:
            raise ToolError(
                f"restore could not diagnose the input ({type(exc).__name__}: {exc}); "
                "name the problems to repair in 'problems'"
            ) from exc
        measured, facts = {}, {}
        warnings.append(f"diagnosis failed ({type(exc).__name__}: {exc}); repaired the problems named")
    if params.problems is None:
        return list(measured.values()), facts, "diagnosis", warnings
    found = [
        measured.get(p) or Finding(p, ORDERED_SEVERITY, "named in the request (not measured)", {})
        for p in dict.fromkeys(params.problems)
    ]
    return found, facts, "requested", warnings


def _run_route(
    route: Route,
    audio: Audio,
    finding: Any,
    strength: float,
    m: dict[str, Any],
    facts: dict[str, Any],
    ctx: ToolContext,
) -> tuple[Audio, dict[str, Any]]:
    from tools import dsp

    x = audio.samples
    sr = audio.sample_rate
    if route.problem == "hum":
        mains = float(m.get("hum_hz") or facts.get("hum_hz") or _mains_hz(x, sr))
        y = dsp.hum_notch(x, sr, mains, width_hz=HUM_NOTCH_WIDTH_HZ)
        y = (x + strength * (y - x)).astype(np.float32)
        return audio.with_samples(y), {
            "tool": "hum_notch",
            "params": {"mains_hz": mains, "width_hz": HUM_NOTCH_WIDTH_HZ, "harmonics_up_to_hz": 1000},
        }
    if (
        route.problem == "noise" and "infrasonic_db" in m and "snr_db" not in m
    ):  # rumble under 20 Hz: a high-pass
        y = dsp.apply_sos(x, dsp.biquad("highpass", 20.0, sr), zero_phase=True)
        y = (x + strength * (y - x)).astype(np.float32)
        return audio.with_samples(y), {"tool": "highpass", "params": {"cutoff_hz": 20.0}}
    from tools.registry import default_registry

    if route.tool is None:  # the in-place repairs above are the routes without a tool
        raise ToolError(f"restore: no repair tool for '{route.problem}'")
    p = route.params(float(finding.severity), strength, m)
    res = default_registry()[route.tool](
        audio, p, ToolContext(device=ctx.device, seed=ctx.seed, cache=ctx.cache)
    )
    return res.audio, {"tool": route.tool, "params": p}


def _removal_budget_db(problem: str, m: dict[str, Any]) -> float | None:
    """Most a subtractive repair may remove, in dB relative to its input's power (None = no limit known)."""
    if problem == "noise" and m.get("snr_db") is not None:
        return -10.0 * float(np.log10(1.0 + 10.0 ** (float(m["snr_db"]) / 10.0))) + REMOVAL_MARGIN_DB
    if problem == "hum" and m.get("hum_db") is not None:
        return float(m["hum_db"]) + REMOVAL_MARGIN_DB
    return None


def _within_budget(before: Audio, after: Audio, budget_db: float | None, step: dict[str, Any]) -> Audio:
    """``after`` blended back towards ``before`` until what it removed fits ``budget_db``; notes it in ``step``."""
    x = before.samples.astype(np.float64)
    d = after.samples.astype(np.float64) - x
    removed_db = 10.0 * float(np.log10((np.sum(d * d) + 1e-20) / (np.sum(x * x) + 1e-20)))
    step["removed_db"] = round(removed_db, 2)
    if budget_db is None or removed_db <= budget_db:
        return after
    k = 10.0 ** ((budget_db - removed_db) / 20.0)
    step.update(budget_db=round(budget_db, 2), kept=round(k, 3))
    return after.with_samples((x + k * d).astype(np.float32))


def _should_refine(mode: str, found: set[str], ran: set[str]) -> tuple[bool, str]:
    """Whether to blend in the Op-GAN, and why: ``found`` the problems found, ``ran`` the repair tools run."""
    if not ran:
        return False, "nothing was repaired"
    if mode == "never":
        return False, "refinement off (refine='never')"
    if mode == "always":
        return True, "refinement requested (refine='always')"
    covered = {r.problem for r in ROUTES if r.tool in REFINE_AFTER}
    if ran <= REFINE_AFTER and found <= covered:
        return True, f"the Op-GAN helps after {', '.join(sorted(ran))} (bench/restore.py, tuning split)"
    hurt = sorted((ran - REFINE_AFTER) | (found - covered))
    return False, f"the Op-GAN did not help after {', '.join(hurt)} (bench/restore.py, tuning split)"


def _summary(found: list[Any], steps: list[dict[str, Any]], not_repaired: list[dict[str, str]]) -> str:
    if not found:
        return "nothing to repair: the diagnosis found no clipping, hum, noise, reverb or band limit"
    what = ", ".join(f"{f.problem} (severity {f.severity:.2f})" for f in found)
    ran = ", ".join(
        "Op-GAN refinement" if s["tool"] == "opgan" else s["tool"].replace("_", " ") for s in steps
    )
    parts = [f"found {what}: {ran or 'nothing run'}"]
    parts += [f"{n['problem']} not repaired ({n['why']})" for n in not_repaired]
    if len(parts) == 1:
        parts.append("nothing else to repair")
    return "; ".join(parts)


def _mains_hz(x: np.ndarray, sr: int) -> float:
    """50 or 60: whichever comb of mains lines (fundamental + 3 harmonics) holds more power."""
    m = x.mean(axis=0).astype(np.float64)
    spec = np.abs(np.fft.rfft(m * np.hanning(m.size))) ** 2
    df = sr / m.size

    def comb(f0: float) -> float:
        return float(
            sum(
                spec[max(int(round(k * f0 / df)) - 1, 0) : int(round(k * f0 / df)) + 2].sum()
                for k in range(1, 5)
            )
        )

    return 50.0 if comb(50.0) >= comb(60.0) else 60.0


def _change_db(out: np.ndarray, x: np.ndarray) -> float:
    """How much was changed: −SI-SDR of the output against the input (more negative = less changed)."""
    from tools.metrics import si_sdr

    return round(-si_sdr(out, x), 2)


# ----------------------------------------------------------------------------- the blind generator


def _opgan(
    audio: Audio, params: RestoreParams, ctx: ToolContext, strength: float
) -> tuple[np.ndarray, dict[str, Any], list[str]]:
    """The Op-GAN generator over every channel: (samples, report, warnings)."""
    import time

    ok, why = _opgan_available()
    if not ok:
        raise ToolUnavailable(why)
    device = ctx.device if ctx.device else "cpu"
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            device = "cpu"
    gen, meta = load_generator(device=device)
    msr = int(gen.cfg.sample_rate)
    sr = audio.sample_rate
    warnings: list[str] = []
    t0 = time.perf_counter()
    x = audio.samples.astype(np.float32)
    low = x if sr == msr else resample(x, sr, msr)
    restored = np.empty_like(low)
    for c in range(audio.channels):
        restored[c] = restore_mono(low[c], gen, params, device)
        ctx.report_progress((c + 1) / audio.channels, f"Op-GAN: channel {c + 1}/{audio.channels}")
    if sr == msr:
        wet = restored
    else:
        wet = _fit(resample(restored, msr, sr), audio.frames)
        if params.keep_high_band and sr > msr:
            wet = wet + (x - _fit(resample(low, msr, sr), audio.frames))  # what the model's band cannot hold
        elif sr > msr:
            warnings.append(f"content above {msr // 2} Hz was dropped (keep_high_band is off)")
    out = (strength * wet + (1.0 - strength) * x).astype(np.float32)
    if not np.all(np.isfinite(out)):
        raise ToolError("the Op-GAN produced non-finite samples; the checkpoint may be corrupt")
    peak = float(np.max(np.abs(out)))
    if peak > 1.0:
        warnings.append(
            f"restored peaks reach {20 * np.log10(peak):+.1f} dBFS (clipped input repaired above full scale)"
        )
    elapsed = time.perf_counter() - t0
    report = {
        "model": "opgan",
        "model_rate_hz": msr,
        "device": device,
        "strength": strength,
        "chunk_s": params.chunk_s,
        "overlap_s": params.overlap_s,
        "keep_high_band": params.keep_high_band,
        "checkpoint_step": int(meta.get("step", 0)),
        "seconds": round(elapsed, 3),
        "rtf": round(elapsed / max(audio.duration_s, 1e-9), 4),
    }
    return out, report, warnings


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    if y.shape[-1] >= n:
        return y[..., :n]
    return np.pad(y, [(0, 0)] * (y.ndim - 1) + [(0, n - y.shape[-1])])


def _opgan_available() -> tuple[bool, str]:
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return False, "the Op-GAN needs the Python package 'torch' (pip install 'mixpilot[neural]')"
    p = weights_path()
    if not p.is_file():
        return False, f"Op-GAN generator not found at {p} (set {WEIGHTS_ENV})"
    return True, ""


SPEC = ToolSpec(
    name="restore",
    description="repair what the diagnosis finds (clipping, hum, noise, reverb), each with its specialised tool, "
    "refined by the 1D Operational GAN (Self-ONN) generator where that helps; clean input is left alone",
    params=RestoreParams,
    run=run,
    stage=Stage.REPAIR,
    applies_to=("mix", "vocals", "speech", "music"),
    repairs=("noise", "hum", "clipping", "bandlimited", "reverb"),
    amount_key="strength",
    verb="restored the degraded recording",
)
