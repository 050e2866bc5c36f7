"""The tool registry: one `ToolSpec` per canonical tool name (see ARCHITECTURE.md).

A tool lives in its own module under `tools/` and exposes a module-level ``SPEC``. The
registry imports those modules lazily, so listing tools never imports torch; a module
that is missing or whose `available()` check fails is listed with ``available=False``
and the reason.

Tools are pure functions: ``run(audio, params, ctx) -> ToolResult``. They never touch
files, databases or HTTP, and never modify the caller's `Audio`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from tools.audio import Audio, AudioError, validate


class Stage(IntEnum):
    """Canonical chain order: repair → separate/pitch → tone/dynamics → mix → space → genre → master."""

    REPAIR = 10
    SEPARATE = 20
    VOICE = 30
    TONE = 40
    DYNAMICS = 50
    MIX = 60
    SPACE = 70
    GENRE = 80
    MASTER = 90


Target = Literal["mix", "vocals", "speech", "drums", "bass", "other", "music"]


class ToolParams(BaseModel):
    """Base for every tool's parameters: bounded, defaulted, described; unknown keys refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ToolError(RuntimeError):
    """A tool could not do its work on this input; the message says why."""


class ToolUnavailable(ToolError):
    """The tool cannot run here (missing weights or package); the message says what is missing."""


@dataclass
class ToolContext:
    """What a tool may need beyond its input and params.

    - ``inputs``: further named audio (``"voice"`` for sidechain/mix, ``"reference"`` for
      reference_match, ``"music"`` for mix).
    - ``analysis``: the input's `Analysis` when the caller already has it (saves work).
    - ``progress``: ``progress(fraction 0..1, message)``; tools call it on long work.
    - ``cache``: an object with ``get(key) -> bytes | None`` and ``set(key, value, ttl_s)``
      for expensive intermediates (duck-typed; memory/ provides it).
    - ``device``: ``"cpu"`` or ``"cuda"``; ``seed`` for anything random.
    """

    inputs: dict[str, Audio] = field(default_factory=dict)
    analysis: Any = None
    progress: Callable[[float, str], None] | None = None
    cache: Any = None
    device: str = "cpu"
    seed: int = 0

    def report_progress(self, fraction: float, message: str = "") -> None:
        if self.progress is not None:
            self.progress(min(max(float(fraction), 0.0), 1.0), message)


@dataclass
class ToolResult:
    """A tool's output audio, what it did (``report``, JSON-able) and any warnings."""

    audio: Audio
    report: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    extra: dict[str, Audio] = field(default_factory=dict)  # e.g. stems from `separate`


RunFn = Callable[[Audio, Any, ToolContext], ToolResult]


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    params: type[ToolParams]
    run: RunFn
    stage: Stage
    applies_to: tuple[str, ...] = ("mix",)
    needs_inputs: tuple[str, ...] = ()  # names in ToolContext.inputs the tool requires
    check_available: Callable[[], tuple[bool, str]] | None = None
    # What the planner reads about the tool (agents/ derives its tables from these; the tool ignores them):
    #: the param holding the tool's overall "how much" (0–1), which intensity words and "more"/"less" scale
    amount_key: str | None = None
    #: what the tool did, in plain words for the explanation ("reduced background noise")
    verb: str = ""
    #: further params a "more"/"less" follow-up scales, each around its neutral value ((param, neutral), …);
    #: the amount key is always scaled (around 0)
    scales: tuple[tuple[str, float], ...] = ()
    #: always acts on the whole programme: the validator aims it at the mix whatever target was asked
    whole_mix: bool = False
    #: acts on one voice: planned on the speech when speech is named, ruled out by "don't touch the vocals";
    #: a voice tool whose ``applies_to`` has no "mix" only makes sense on a voice
    voice: bool = False
    #: the diagnosis problems (tools.diagnose.PROBLEMS) the tool repairs: planned from a diagnosis only for them
    repairs: tuple[str, ...] = ()

    def availability(self) -> tuple[bool, str]:
        if self.check_available is None:
            return True, ""
        try:
            return self.check_available()
        except Exception as exc:  # an availability probe must never take the registry down
            return False, f"availability check failed: {exc}"

    @property
    def available(self) -> bool:
        return self.availability()[0]

    def parse_params(self, params: Mapping[str, Any] | ToolParams | None) -> ToolParams:
        if isinstance(params, self.params):
            return params
        try:
            return self.params(**dict(params or {}))
        except ValidationError as exc:
            msgs = []
            for err in exc.errors():
                loc = ".".join(str(x) for x in err["loc"]) or "params"
                msgs.append(f"{loc}: {err['msg']}")
            raise ValueError(f"{self.name}: bad parameters: " + "; ".join(msgs)) from None

    def __call__(
        self,
        audio: Audio,
        params: Mapping[str, Any] | ToolParams | None = None,
        ctx: ToolContext | None = None,
    ) -> ToolResult:
        """Validate input and params, run the tool, validate the output."""
        ok, why = self.availability()
        if not ok:
            raise ToolUnavailable(f"{self.name} is unavailable: {why}")
        p = self.parse_params(params)
        ctx = ctx or ToolContext()
        validate(audio, max_duration_s=None, name=f"{self.name} input")
        for key in self.needs_inputs:
            if key not in ctx.inputs:
                raise ToolError(f"{self.name} needs a second input '{key}'")
        result = self.run(audio, p, ctx)
        try:
            validate(result.audio, max_duration_s=None, name=f"{self.name} output")
        except AudioError as exc:
            raise ToolError(f"{self.name} produced bad audio: {exc}") from None
        return result

    def describe(self) -> dict[str, Any]:
        """JSON-able description: name, description, params schema with bounds, availability."""
        ok, why = self.availability()
        schema = self.params.model_json_schema()
        params = {}
        for key, prop in schema.get("properties", {}).items():
            entry = {
                k: v
                for k, v in prop.items()
                if k
                in (
                    "type",
                    "default",
                    "description",
                    "enum",
                    "minimum",
                    "maximum",
                    "exclusiveMinimum",
                    "exclusiveMaximum",
                    "anyOf",
                    "items",
                )
            }
            if "$ref" in prop or "allOf" in prop:
                ref = (prop.get("$ref") or prop["allOf"][0].get("$ref", "")).split("/")[-1]
                entry.update(
                    {k: v for k, v in schema.get("$defs", {}).get(ref, {}).items() if k in ("enum", "type")}
                )
            params[key] = entry
        return {
            "name": self.name,
            "description": self.description,
            "stage": self.stage.name.lower(),
            "applies_to": list(self.applies_to),
            "needs_inputs": list(self.needs_inputs),
            "params": params,
            "available": ok,
            "reason": "" if ok else why,
        }


#: The canonical tool names (ARCHITECTURE.md), in chain order. Tool ``x`` lives in module ``tools.x``
#: whose ``SPEC`` carries everything else (stage, description, params, planner metadata).
TOOLS: tuple[str, ...] = (
    "denoise",
    "declip",
    "dereverb",
    "restore",
    "bandwidth_extension",
    "separate",
    "vocoder_enhance",
    "pitch_correct",
    "eq",
    "dynamic_eq",
    "de_ess",
    "compress",
    "saturation",
    "sidechain",
    "mix",
    "stereo_width",
    "reverb",
    "delay",
    "genre_preset",
    "reference_match",
    "master",
)


class _Canonical(Mapping[str, tuple[str, Stage, str]]):
    """name → (module, stage, description), generated from each tool's ``SPEC`` (loaded on first use of a
    name; iterating names loads nothing)."""

    def __getitem__(self, name: str) -> tuple[str, Stage, str]:
        if name not in TOOLS:
            raise KeyError(name)
        spec = default_registry()[name]
        return f"tools.{name}", spec.stage, spec.description

    def __contains__(self, name: object) -> bool:
        return name in TOOLS

    def __iter__(self) -> Iterator[str]:
        return iter(TOOLS)

    def __len__(self) -> int:
        return len(TOOLS)


CANONICAL: Mapping[str, tuple[str, Stage, str]] = _Canonical()


class _NoParams(ToolParams):
    pass


def _placeholder(name: str, stage: Stage, description: str, why: str) -> ToolSpec:
    def run(
        audio: Audio, params: Any, ctx: ToolContext
    ) -> ToolResult:  # pragma: no cover - guarded by availability
        raise ToolUnavailable(f"{name} is unavailable: {why}")

    return ToolSpec(
        name=name,
        description=description,
        params=_NoParams,
        run=run,
        stage=stage,
        check_available=lambda: (False, why),
    )


class Registry(Mapping[str, ToolSpec]):
    """Read-only mapping of canonical name → `ToolSpec`, loaded on first use of each tool."""

    def __init__(self, specs: Mapping[str, ToolSpec] | None = None) -> None:
        self._specs: dict[str, ToolSpec] = dict(specs or {})

    def __getitem__(self, name: str) -> ToolSpec:
        if name not in self._specs:
            if name not in TOOLS:
                known = ", ".join(sorted(TOOLS))
                raise KeyError(f"unknown tool '{name}'; known tools: {known}")
            self._specs[name] = _load_spec(name)
        return self._specs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(TOOLS)

    def __len__(self) -> int:
        return len(TOOLS)

    def get_tool(self, name: str) -> ToolSpec:
        return self[name]


def _load_spec(name: str) -> ToolSpec:
    module_name = f"tools.{name}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # a tool module imports its optional packages lazily (tests/test_contract_parity.py checks), so this
        # is a broken install or a tool not built yet; its stage is unknown, so it is listed as a repair step
        why = (
            "not built yet"
            if exc.name == module_name
            else f"needs the Python package '{exc.name}' (pip install 'mixpilot[all]')"
        )
        return _placeholder(name, Stage.REPAIR, f"{name} (could not be loaded)", why)
    specs = getattr(module, "SPECS", None)
    spec = specs[name] if specs else getattr(module, "SPEC", None)
    if not isinstance(spec, ToolSpec) or spec.name != name:
        raise RuntimeError(f"{module_name} does not define SPEC for tool '{name}'")
    return spec


_DEFAULT: Registry | None = None


def default_registry() -> Registry:
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Registry()
    return _DEFAULT


def get_tool(name: str) -> ToolSpec:
    return default_registry()[name]
