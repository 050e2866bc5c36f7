"""The optional LLM planner: any LangChain chat model plans through tool schemas generated from
the registry; its output becomes a `Plan(source="llm")` that the caller validates like any other.

Configured with ``MIXPILOT_LLM_MODEL`` (+ ``MIXPILOT_LLM_PROVIDER``, ``MIXPILOT_LLM_BASE_URL``,
``MIXPILOT_LLM_API_KEY``) or an already-built chat model. Any failure — no model package, a
network error, malformed or unknown tool calls, params of the wrong kind — falls back to the
semantic plan, with the reason in the notes. Out-of-range numbers are not failures: the
validator clamps them and says so.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from agents.contract import CONTRACT
from agents.plan import TARGETS, Forbidden, Plan, Step
from agents.prompts import SYSTEM_PROMPT, user_message
from tools.registry import CANONICAL


class LLMPlanError(RuntimeError):
    """The LLM's answer could not be used as a plan; the message says why."""


RANGE_ERRORS = {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}


def _setting(settings: Any, name: str) -> str | None:
    if settings is not None:
        v = getattr(settings, name, None)
        if v:
            return str(v)
    return os.environ.get(f"MIXPILOT_{name.upper()}") or None


def build_chat_model(settings: Any = None) -> Any:
    """A LangChain chat model from the settings (or MIXPILOT_LLM_* environment)."""
    model = _setting(settings, "llm_model")
    if not model:
        raise LLMPlanError("no LLM configured (set MIXPILOT_LLM_MODEL)")
    try:
        from langchain.chat_models import init_chat_model
    except ImportError:
        raise LLMPlanError("the LLM planner needs 'langchain' (pip install 'mixpilot[agent]')") from None
    kwargs: dict[str, Any] = {"temperature": 0}
    base_url = _setting(settings, "llm_base_url")
    api_key = _setting(settings, "llm_api_key")
    if base_url:
        kwargs["base_url"] = base_url
    if api_key:
        kwargs["api_key"] = api_key
    return init_chat_model(model, model_provider=_setting(settings, "llm_provider"), **kwargs)


# ------------------------------------------------------------------ tool schemas from the registry


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                ref = node["$ref"].split("/")[-1]
                return walk(dict(defs.get(ref, {})))
            return {k: walk(v) for k, v in node.items() if k != "title"}
        if isinstance(node, list):
            return [walk(x) for x in node]
        return node

    return walk(schema)


def params_model(registry: Any, tool: str) -> tuple[type[BaseModel] | None, bool, str]:
    """(params model, available, description) for a canonical tool."""
    desc = CANONICAL[tool][2]
    try:
        spec = registry[tool] if registry is not None else None
    except Exception:
        return CONTRACT.get(tool), False, desc
    if spec is None:
        return CONTRACT.get(tool), False, desc
    ok = spec.availability()[0]
    model = spec.params if spec.params.model_fields else CONTRACT.get(tool)
    return model, ok, spec.description or desc


def tool_schemas(registry: Any = None, *, allow_unavailable: bool = False) -> list[dict[str, Any]]:
    """One OpenAI-style function schema per (available) canonical tool."""
    if registry is None:
        from tools.registry import default_registry

        registry = default_registry()
    out = []
    for tool in CANONICAL:
        model, ok, desc = params_model(registry, tool)
        if model is None or (not ok and not allow_unavailable):
            continue
        params = _inline_refs(model.model_json_schema())
        params.pop("description", None)
        out.append({
            "type": "function",
            "function": {
                "name": tool,
                "description": desc,
                "parameters": {
                    "type": "object",
                    "properties": {
                        "params": params,
                        "target": {"type": "string", "enum": list(TARGETS), "default": "mix",
                                   "description": "what the step acts on"},
                        "reason": {"type": "string", "description": "why, in a few plain words"},
                    },
                    "required": ["params"],
                },
            },
        })
    return out


# ------------------------------------------------------------------ reading the answer


def steps_from_message(message: Any, registry: Any = None) -> list[Step]:
    """The steps an AIMessage's tool calls describe; raises `LLMPlanError` on anything malformed."""
    bad = list(getattr(message, "invalid_tool_calls", None) or [])
    if bad:
        first = bad[0]
        name = first.get("name") if isinstance(first, Mapping) else getattr(first, "name", "?")
        err = first.get("error") if isinstance(first, Mapping) else ""
        raise LLMPlanError(f"malformed tool call '{name}'{': ' + str(err) if err else ''}")
    steps: list[Step] = []
    for call in getattr(message, "tool_calls", None) or []:
        name = str(call.get("name") or "")
        args = call.get("args")
        if name not in CANONICAL:
            raise LLMPlanError(f"unknown tool '{name}'")
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except json.JSONDecodeError as exc:
                raise LLMPlanError(f"{name}: arguments are not JSON ({exc})") from None
        if not isinstance(args, Mapping):
            raise LLMPlanError(f"{name}: arguments must be an object")
        params = args.get("params", {})
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise LLMPlanError(f"{name}: params must be an object")
        target = args.get("target") or "mix"
        if target not in TARGETS:
            raise LLMPlanError(f"{name}: unknown target '{target}'")
        model = params_model(registry, name)[0] if registry is not None else CONTRACT.get(name)
        if model is not None:
            try:
                model(**dict(params))
            except ValidationError as exc:
                wrong = [e for e in exc.errors() if e.get("type") not in RANGE_ERRORS]
                if wrong:
                    loc = ".".join(str(x) for x in wrong[0].get("loc", ())) or "params"
                    raise LLMPlanError(f"{name}: bad parameter {loc}: {wrong[0].get('msg')}") from None
        steps.append(Step(tool=name, params=dict(params), target=target, reason=str(args.get("reason") or "")))
    return steps


def plan_with_llm(
    request: str,
    *,
    semantic: Plan,
    forbidden: Forbidden,
    analysis: Mapping[str, Any] | None = None,
    registry: Any = None,
    settings: Any = None,
    llm: Any = None,
    allow_unavailable: bool = False,
) -> tuple[Plan, Forbidden]:
    """The LLM's plan (unvalidated) and the user's prohibitions; the semantic plan on any failure."""
    try:
        model = llm if llm is not None else build_chat_model(settings)
        schemas = tool_schemas(registry, allow_unavailable=allow_unavailable)
        bound = model.bind_tools(schemas)
        from langchain_core.messages import HumanMessage, SystemMessage

        answer = bound.invoke([SystemMessage(SYSTEM_PROMPT),
                               HumanMessage(user_message(request, dict(analysis or {}), semantic.to_json()))])
        steps = steps_from_message(answer, registry)
    except Exception as exc:  # any failure: the offline plan, with the reason
        reason = str(exc) if isinstance(exc, LLMPlanError) else f"{type(exc).__name__}: {exc}"
        fallback = semantic.model_copy(deep=True)
        fallback.add_note(f"LLM planner not used ({reason[:200]}); this is the offline plan")
        return fallback, forbidden
    if not steps:
        text = getattr(answer, "content", "") or ""
        if isinstance(text, list):
            text = " ".join(str(x.get("text", "")) if isinstance(x, Mapping) else str(x) for x in text)
        if semantic.steps:
            fallback = semantic.model_copy(deep=True)
            fallback.add_note("LLM planner proposed no steps; this is the offline plan")
            return fallback, forbidden
        note = str(text).strip() or (semantic.notes[0] if semantic.notes else "")
        return Plan(steps=[], source="llm", notes=[note] if note else []), forbidden
    return Plan(steps=steps, source="llm", notes=[]), forbidden
