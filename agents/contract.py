"""The planner's view of the tools, derived from the registry: nothing here is written twice.

Each tool's own ``Params`` model (``SPEC.params`` in ``tools/<name>.py``) is the only parameter contract:
names, bounds and defaults live there. Tool modules import without their optional packages (torch,
demucs, …; tests/test_contract_parity.py checks), so the model is here even for a tool that cannot run
on this machine, and the validator checks an unavailable tool's params against the same model.

- ``CONTRACT``: tool name → params model (a plain dict, built on first use: it loads every tool module).
- ``params_model``, ``bounds``, ``default``, ``clamp``: one tool's model, one field's bounds and default,
  a value clamped to them (loading only that tool's module, which keeps the planner's start-up short).
- ``PerTool``: a read-only mapping tool → something derived from its spec, computed per tool on first use
  (``draft.AMOUNT_KEY``, ``explain.VERBS``, ``REPAIRS_FOR``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from tools.registry import TOOLS, ToolSpec, default_registry

V = TypeVar("V")


def _spec(tool: str) -> ToolSpec | None:
    if tool not in TOOLS:
        return None
    try:
        return default_registry()[tool]
    except Exception:  # a tool module that fails to import has no contract here
        return None


def params_model(tool: str) -> type[BaseModel] | None:
    """The tool's params model, or None for an unknown tool (or a placeholder without params)."""
    spec = _spec(tool)
    if spec is None or not spec.params.model_fields:
        return None
    return spec.params


def field_bounds(model: type[BaseModel] | None, key: str) -> tuple[float | None, float | None]:
    """(lower, upper) bound of a numeric field, None where open; exclusive bounds nudged inside."""
    info = model.model_fields.get(key) if model is not None else None
    lo = hi = None
    if info is None:
        return lo, hi
    for m in info.metadata:
        if hasattr(m, "ge"):
            lo = float(m.ge)
        elif hasattr(m, "gt"):
            lo = float(m.gt) + 1e-6
        elif hasattr(m, "le"):
            hi = float(m.le)
        elif hasattr(m, "lt"):
            hi = float(m.lt) - 1e-6
    return lo, hi


def bounds(tool: str, key: str) -> tuple[float | None, float | None]:
    """(lower, upper) bound of ``tool``'s param ``key``."""
    return field_bounds(params_model(tool), key)


def default(tool: str, key: str) -> Any:
    """The tool's default for param ``key``; KeyError for a param the tool does not have."""
    model = params_model(tool)
    if model is None or key not in model.model_fields:
        raise KeyError(f"{tool} has no parameter '{key}'")
    return model.model_fields[key].get_default(call_default_factory=True)


def clamp(tool: str, key: str, value: float) -> float:
    """``value`` limited to the bounds of ``tool``'s param ``key``."""
    lo, hi = bounds(tool, key)
    if lo is not None:
        value = max(lo, value)
    if hi is not None:
        value = min(hi, value)
    return value


class PerTool(Mapping[str, V], Generic[V]):
    """tool → ``derive(spec)`` for every canonical tool where it is not None; computed per tool on first use."""

    def __init__(self, derive: Callable[[ToolSpec], V | None]) -> None:
        self._derive = derive
        self._cache: dict[str, V | None] = {}

    def _value(self, tool: object) -> V | None:
        if not isinstance(tool, str):
            return None
        if tool not in self._cache:
            spec = _spec(tool)
            self._cache[tool] = self._derive(spec) if spec is not None else None
        return self._cache[tool]

    def __getitem__(self, tool: str) -> V:
        value = self._value(tool)
        if value is None:
            raise KeyError(tool)
        return value

    def __contains__(self, tool: object) -> bool:
        return self._value(tool) is not None

    def __iter__(self) -> Iterator[str]:
        return (t for t in TOOLS if self._value(t) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


#: repair tool → the diagnosis problems it repairs (``SPEC.repairs``): what justifies planning it (do no harm)
REPAIRS_FOR: Mapping[str, tuple[str, ...]] = PerTool(lambda spec: spec.repairs or None)


def _build_contract() -> dict[str, type[BaseModel]]:
    return {tool: model for tool in TOOLS if (model := params_model(tool)) is not None}


def __getattr__(name: str) -> Any:
    if name == "CONTRACT":  # built once, on first use (``from agents.contract import CONTRACT`` included)
        contract = _build_contract()
        globals()["CONTRACT"] = contract
        return contract
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: tool name → params model; declared for readers and type checkers, provided by ``__getattr__`` above
CONTRACT: dict[str, type[BaseModel]]
