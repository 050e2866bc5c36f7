"""Run a validated plan step by step, measuring after each step and rolling back harm.

The quality gate (each rule is data the evaluator and the explanation see):

- a step whose output is not finite, or silent where the input was not → rolled back;
- a *gentle* tone/dynamics/space step (amount ≤ 0.5) whose output has collapsed
  against its input (SI-SDR < 0 dB: it no longer resembles what went in) → rolled back;
- a repair/voice step on speech that lowers DNSMOS OVRL by more than 0.2 → rolled back
  (only where DNSMOS is available);
- a whole-mix step (other than `master`/`mix`) that lowers the RMS level by more than
  20 dB → rolled back: it removed the content, not just noise or a band;
- a step that leaves peaks over full scale when no `master` step follows → trimmed to
  the ceiling (−1 dBTP) and noted; if that needs more than 6 dB of trim the step is rolled
  back instead, because it made the sound much louder than asked.

Steps aimed at a stem (`vocals`, `drums`, `bass`, `other`) run on that stem after a
`separate` (cached per input), and the stems are summed back before the next whole-mix
step. Tools that fail or are unavailable are skipped with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agents.progress import step_spans
from tools.audio import Audio, all_finite
from tools.loudness import sample_peak_dbfs
from tools.metrics import rms_dbfs, si_sdr_channels
from tools.registry import Registry, Stage, ToolContext, ToolError, ToolResult, default_registry

STEMS = ("vocals", "drums", "bass", "other")
GENTLE = 0.5
SI_SDR_COLLAPSE_DB = 0.0
#: how far under an equal-power wet/dry blend's own SI-SDR a space effect may land before the gate calls it a
#: collapse (the wet part correlates with the dry differently per programme)
BLEND_MARGIN_DB = 6.0
DNSMOS_DROP = 0.2
MAX_SAFETY_TRIM_DB = 6.0
LEVEL_COLLAPSE_DB = 20.0

Event = dict[str, Any]
Emit = Callable[[Event], None]


@dataclass
class StepOutcome:
    tool: str
    params: dict[str, Any]
    target: str
    reason: str
    status: str  # "applied" | "rolled_back" | "skipped" | "trimmed"
    why: str = ""
    report: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    measures: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only (tool reports may carry numpy scalars): the state is checkpointed."""
        return jsonable(
            {
                k: getattr(self, k)
                for k in (
                    "tool",
                    "params",
                    "target",
                    "reason",
                    "status",
                    "why",
                    "report",
                    "warnings",
                    "measures",
                )
            }
        )


def _engine_of(separation: ToolResult) -> dict[str, Any]:
    """What split the mix (engine, model, fallback) from `separate`'s report."""
    return {k: separation.report[k] for k in ("engine", "model", "fallback") if k in separation.report}


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


@dataclass
class ExecutionResult:
    audio: Audio
    outcomes: list[StepOutcome]
    stems: dict[str, Audio] = field(default_factory=dict)


def _amount(params: dict[str, Any]) -> float | None:
    for key in ("amount", "strength", "intensity"):
        if key in params and isinstance(params[key], (int, float)):
            return float(params[key])
    return None


def _dnsmos(audio: Audio) -> float | None:
    """DNSMOS OVRL, or None where its models cannot run here (the gate then skips that rule)."""
    from tools.metrics import dnsmos

    try:
        return float(dnsmos(audio)["ovrl"])
    except Exception:  # onnxruntime or the speechmos models missing: no verdict, not a failure
        return None


class Executor:
    def __init__(self, registry: Registry | None = None, *, ceiling_dbtp: float = -1.0) -> None:
        self.registry = registry or default_registry()
        self.ceiling_dbtp = ceiling_dbtp

    def run(
        self,
        audio: Audio,
        steps: list[Any],
        *,
        inputs: dict[str, Audio] | None = None,
        is_speech: bool = False,
        emit: Emit | None = None,
        cache: Any = None,
        analysis: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """Run `steps` on `audio`. `analysis` is the input's analysis; tools see its
        content facts (speech probability) through `ToolContext.analysis`."""
        emit = emit or (lambda e: None)
        outcomes: list[StepOutcome] = []
        current = audio
        stems: dict[str, Audio] = {}
        n = len(steps)
        spans = step_spans([str(getattr(s, "tool", "")) for s in steps])  # each step's share of the bar
        has_master_later = [
            any(getattr(s, "tool", None) == "master" for s in steps[i + 1 :]) for i in range(n)
        ]

        for i, step in enumerate(steps):
            release_freed_memory()  # what analysis and the steps before freed: the next output may need it
            tool, params = step.tool, dict(step.params or {})
            target = getattr(step, "target", "mix") or "mix"
            reason = getattr(step, "reason", "") or ""
            span = spans[i]
            emit(
                {
                    "event": "step_started",
                    "index": i,
                    "total": n,
                    "tool": tool,
                    "target": target,
                    "span": span,
                }
            )
            outcome = StepOutcome(tool, params, target, reason, "applied")

            def progress(
                fraction: float,
                message: str = "",
                _i: int = i,
                _tool: str = tool,
                _span: tuple[float, float] = span,
            ) -> None:
                emit(
                    {
                        "event": "step_progress",
                        "index": _i,
                        "total": n,
                        "tool": _tool,
                        "fraction": fraction,
                        "message": message,
                        "span": _span,
                    }
                )

            try:
                spec = self.registry[tool]
                ok, why = spec.availability()
                if not ok:
                    raise ToolError(f"{tool} is unavailable: {why}")
                ctx = ToolContext(
                    inputs=dict(inputs or {}),
                    progress=progress,
                    cache=cache,
                    analysis=_content_facts(analysis),
                )
                on_stem = target in STEMS and tool != "separate"
                separation: ToolResult | None = None
                if (on_stem and not stems) or tool == "separate":
                    if tool == "separate" and stems:  # separate again: the whole mix, as it is now
                        current = _sum_stems(stems, current)
                        stems = {}
                    # what the step keeps and with which model; all four stems always come back (a
                    # separate step's ``stems`` choice only limits what is handed to the user)
                    how = (
                        {k: params[k] for k in ("keep", "model") if k in params} if tool == "separate" else {}
                    )
                    stems, separation = self._separate(current, cache, emit, progress, how)
                if tool == "separate" and separation is not None:
                    outcome.report = {"stems": sorted(stems), **_engine_of(separation)}
                    outcome.warnings = list(separation.warnings)
                    keep = str(params.get("keep") or "mix")
                    if keep != "mix":  # "extract the vocals": the stem is the audio from here on
                        current = separation.audio
                        stems = {}
                        outcome.report["kept"] = keep
                    outcomes.append(outcome)
                    emit(
                        {
                            "event": "step_finished",
                            "index": i,
                            "total": n,
                            "tool": tool,
                            "status": "applied",
                            "span": span,
                        }
                    )
                    continue
                if on_stem:
                    source = stems[target]
                else:
                    if stems:  # back to whole-mix processing: sum the stems first
                        current = _sum_stems(stems, current)
                        stems = {}
                    source = current
                result = spec(source, params, ctx)
                new = result.audio
                outcome.report = result.report
                outcome.warnings = list(result.warnings)
                if separation is not None:  # this step split the mix first: say with what
                    outcome.report = {**result.report, "separation": _engine_of(separation)}
                    outcome.warnings = list(separation.warnings) + outcome.warnings
                verdict, why, measures = self._gate(
                    source,
                    new,
                    spec.stage,
                    params,
                    is_speech=is_speech and not on_stem,
                    master_follows=has_master_later[i] or on_stem,
                    tool=tool,
                    on_stem=on_stem,
                )
                outcome.measures = measures
                if verdict == "rolled_back":
                    outcome.status, outcome.why = "rolled_back", why
                else:
                    if verdict == "trimmed":
                        gain = 10 ** ((measures["trim_db"] or 0.0) / 20)  # set by the gate with "trimmed"
                        new = new.with_samples(new.samples * gain)
                        outcome.status, outcome.why = "trimmed", why
                    if on_stem:
                        stems[target] = new
                    else:
                        current = new
            except (ToolError, ValueError, KeyError) as exc:
                outcome.status, outcome.why = "skipped", str(exc).strip("'\"")
            except Exception as exc:  # a tool bug must not lose the user's turn
                outcome.status, outcome.why = "skipped", f"{tool} failed: {type(exc).__name__}: {exc}"
            outcomes.append(outcome)
            emit(
                {
                    "event": "step_finished",
                    "index": i,
                    "total": n,
                    "tool": tool,
                    "status": outcome.status,
                    "why": outcome.why,
                    "span": span,
                }
            )

        if stems:
            current = _sum_stems(stems, current)
        return ExecutionResult(current, outcomes, stems)

    def _separate(
        self,
        audio: Audio,
        cache: Any,
        emit: Emit,
        progress: Callable[[float, str], None] | None = None,
        params: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Audio], ToolResult]:
        """The stems of ``audio`` and separate's result (its audio: what ``params["keep"]`` names);
        ``progress`` gets separate's own progress (per Demucs segment) as the step's ``step_progress``
        events."""
        spec = self.registry["separate"]
        ok, why = spec.availability()
        if not ok:
            raise ToolError(f"working on a single stem needs separate, which is unavailable: {why}")
        result = spec(audio, params or {}, ToolContext(cache=cache, progress=progress))
        stems = {k: v for k, v in result.extra.items() if k in STEMS}
        if not stems:
            raise ToolError("separate returned no stems")
        return stems, result

    def _gate(
        self,
        before: Audio,
        after: Audio,
        stage: Stage,
        params: dict,
        *,
        is_speech: bool,
        master_follows: bool,
        tool: str,
        on_stem: bool = False,
    ) -> tuple[str, str, dict[str, float | None]]:
        x, y = before.samples, after.samples
        measures: dict[str, float | None] = {}
        if not all_finite(y):
            return "rolled_back", "the output had invalid samples", measures
        if np.any(x) and not np.any(y):
            return "rolled_back", "the output was silent", measures
        if tool not in ("master", "mix") and not on_stem:
            drop = rms_dbfs(x) - rms_dbfs(y)
            if math.isfinite(drop) and drop > LEVEL_COLLAPSE_DB:
                measures["level_drop_db"] = round(drop, 1)
                return (
                    "rolled_back",
                    f"{tool} removed most of the signal (level down {drop:.0f} dB)",
                    measures,
                )
        same_shape = x.shape == y.shape and before.sample_rate == after.sample_rate
        amount = _amount(params)
        if (
            same_shape
            and stage in (Stage.TONE, Stage.DYNAMICS, Stage.SPACE)
            and amount is not None
            and amount <= GENTLE
        ):
            # over all channels: the gate must also see a step that changes the stereo image in
            # ways that cancel in the mono sum (what `si_sdr` would measure)
            sdr = si_sdr_channels(y, x)
            measures["si_sdr_vs_input_db"] = round(sdr, 2)
            floor = SI_SDR_COLLAPSE_DB
            if stage == Stage.SPACE and 0.0 < amount < 1.0:
                # reverb and delay blend wet and dry with equal power: at `amount` the blend alone sits near
                # 20·log10(cot(amount·π/2)) dB (0 dB at 0.5), so "double the reverb" is not a collapse
                floor = min(floor, 20.0 * math.log10(1.0 / math.tan(amount * math.pi / 2)) - BLEND_MARGIN_DB)
            if sdr < floor:
                return (
                    "rolled_back",
                    f"a gentle {tool} changed the sound far more than asked (SI-SDR vs input {sdr:.1f} dB)",
                    measures,
                )
        if is_speech and stage in (Stage.REPAIR, Stage.VOICE):
            d0, d1 = _dnsmos(before), _dnsmos(after)
            measures["dnsmos_before"], measures["dnsmos_after"] = d0, d1
            if d0 is not None and d1 is not None and d1 < d0 - DNSMOS_DROP:
                return (
                    "rolled_back",
                    f"{tool} made the speech sound worse (DNSMOS {d0:.2f} → {d1:.2f})",
                    measures,
                )
        if tool != "master" and not master_follows:
            peak = sample_peak_dbfs(after)
            measures["peak_dbfs"] = round(peak, 2) if math.isfinite(peak) else None
            if peak > 0.0:
                trim = self.ceiling_dbtp - 0.5 - peak  # sample-peak margin for inter-sample overs
                measures["trim_db"] = round(trim, 2)
                if -trim > MAX_SAFETY_TRIM_DB:
                    return (
                        "rolled_back",
                        f"{tool} pushed peaks {peak:.1f} dB over full scale, more than a safe trim",
                        measures,
                    )
                return (
                    "trimmed",
                    f"{tool} pushed peaks over full scale; trimmed {-trim:.1f} dB to avoid clipping",
                    measures,
                )
        return "applied", "", measures


_TRIM: list[Any] = []


def release_freed_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc's ``malloc_trim``; a no-op elsewhere).

    A long file's turn frees hundreds of MB of analysis temporaries, many under glibc's mmap threshold:
    they stay in the heap (counted in the process's RSS) unless trimmed, and the next step's full-length
    output then comes on top of them (30-minute stereo "master it for Spotify": peak RSS about 130 MiB
    less). Takes a few milliseconds."""
    if not _TRIM:
        try:
            import ctypes
            import ctypes.util

            name = ctypes.util.find_library("c")
            libc = ctypes.CDLL(name) if name else None
            _TRIM.append(getattr(libc, "malloc_trim", None))
        except (OSError, AttributeError):
            _TRIM.append(None)
    if _TRIM[0] is not None:
        _TRIM[0](0)


def _content_facts(analysis: dict[str, Any] | None) -> dict[str, Any] | None:
    """What stays true of the audio while a chain changes it (levels and spectra do not)."""
    if not analysis:
        return None
    keep = ("speech_probability", "sample_rate", "channels", "duration_s")
    return {k: analysis[k] for k in keep if k in analysis}


def _sum_stems(stems: dict[str, Audio], like: Audio) -> Audio:
    total: np.ndarray | None = None
    for stem in stems.values():
        s = stem.samples
        if total is None:
            total = s.astype(np.float32).copy()
        else:
            n = min(total.shape[1], s.shape[1])
            total = total[:, :n] + s[:, :n]
    return like if total is None else like.with_samples(total)
