"""The optional LLM planner: any LangChain chat model plans a turn through tool schemas generated
from the registry, and speaks the same turn contract as the offline planner (ARCHITECTURE.md).

The model sees the request, the diagnosis (findings + facts), the thread's last turns and the
offline planner's reading, and replies with tool calls in exactly one of three shapes:

- **process** — one call per canonical tool (``{"params", "target", "reason"}``): ``kind="process"``;
- **answer** — one ``answer`` call with ``text`` (and optional ``suggest`` steps, which a confirming
  next turn runs; ``"kind": "none"`` when there is nothing to do): ``kind="answer"`` / ``"none"``;
- **clarify** — one ``clarify`` call with ``question``: ``kind="clarify"``.

Every planned or suggested step passes `validate_plan` (out-of-range numbers are clamped and
noted, forbidden steps dropped). With a diagnosis, a repair step (denoise, declip, dereverb,
restore, bandwidth_extension) the model adds for a problem that was not measured is left out,
unless the offline planner also has it (the person ordered it).

Grounding. Findings and platform checks are measurements, so they always come from the
diagnosis / offline plan, never from the model. An answer or question that quotes a level,
frequency or percentage (a number with dB, dBFS, dBTP, LUFS, LU, Hz, kHz or %) must quote one the
model was given (a measured fact, a number in the prompt, or a fact's distance to a published
target); otherwise the offline plan is used. Questions run nothing: if the offline planner reads
the request as a question (``kind="answer"``) and the model plans processing steps, the offline
plan is used.

Any failure — no model package, a network error or timeout, an HTTP error, no tool call (plain
text), an unknown tool, arguments that are not JSON or of the wrong kind, ``answer`` mixed with
steps — falls back to the offline plan, with the reason in the notes.

Configured with ``MIXPILOT_LLM_MODEL`` (+ ``MIXPILOT_LLM_PROVIDER``, ``MIXPILOT_LLM_BASE_URL``,
``MIXPILOT_LLM_API_KEY``, ``MIXPILOT_LLM_TIMEOUT_S``, ``MIXPILOT_LLM_MAX_RETRIES``) or an
already-built chat model.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from agents.contract import CONTRACT, REPAIRS_FOR
from agents.plan import TARGETS, Forbidden, Plan, Step, validate_plan
from agents.prompts import SYSTEM_PROMPT, user_message
from tools.registry import CANONICAL


class LLMPlanError(RuntimeError):
    """The LLM's answer could not be used as a plan; the message says why."""


RANGE_ERRORS = {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}
#: the two turn tools besides the canonical processing tools
ANSWER_TOOL = "answer"
CLARIFY_TOOL = "clarify"
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MAX_RETRIES = 1


# ------------------------------------------------------------------ the chat model from settings


def _setting(settings: Any, name: str) -> str | None:
    if settings is not None:
        v = getattr(settings, name, None)
        secret = getattr(v, "get_secret_value", None)
        if callable(secret):
            v = secret()
        if v is not None and v != "":
            return str(v)
    return os.environ.get(f"MIXPILOT_{name.upper()}") or None


def _number_setting(settings: Any, name: str, default: float) -> float:
    raw = _setting(settings, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise LLMPlanError(f"MIXPILOT_{name.upper()} must be a number, not {raw!r}") from None
    if not math.isfinite(value) or value < 0:
        raise LLMPlanError(f"MIXPILOT_{name.upper()} must be a finite number ≥ 0, not {raw!r}")
    return value


def build_chat_model(settings: Any = None) -> Any:
    """A LangChain chat model from the settings (or MIXPILOT_LLM_* environment).

    ``llm_model`` (``provider:model`` works too), ``llm_provider`` (``openai``, ``ollama``, any
    provider `init_chat_model` knows), ``llm_base_url``, ``llm_api_key``, ``llm_timeout_s`` (per
    request, default 60) and ``llm_max_retries`` (default 1).
    """
    model = _setting(settings, "llm_model")
    if not model:
        raise LLMPlanError("no LLM configured (set MIXPILOT_LLM_MODEL)")
    try:
        from langchain.chat_models import init_chat_model
    except ImportError:
        raise LLMPlanError("the LLM planner needs 'langchain' (pip install 'mixpilot[llm]')") from None
    provider = _setting(settings, "llm_provider")
    family = (provider or (model.split(":", 1)[0] if ":" in model else "")).lower()
    base_url = _setting(settings, "llm_base_url")
    api_key = _setting(settings, "llm_api_key")
    timeout = _number_setting(settings, "llm_timeout_s", DEFAULT_TIMEOUT_S)
    retries = int(_number_setting(settings, "llm_max_retries", DEFAULT_MAX_RETRIES))
    kwargs: dict[str, Any] = {"temperature": 0}
    if base_url:
        kwargs["base_url"] = base_url
    if family == "ollama":
        # ChatOllama takes no timeout/api_key fields (it ignores them): they go to its httpx client
        client: dict[str, Any] = {"timeout": timeout or None}
        if api_key:
            client["headers"] = {"Authorization": f"Bearer {api_key}"}
        kwargs["client_kwargs"] = client
    else:
        if api_key:
            kwargs["api_key"] = api_key
        kwargs.update(timeout=timeout or None, max_retries=retries)
    try:
        return init_chat_model(model, model_provider=provider, **kwargs)
    except ImportError as exc:
        raise LLMPlanError(f"{exc} (pip install 'mixpilot[llm]')") from None


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


def _fmt_num(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def params_summary(schema: Mapping[str, Any]) -> str:
    """The params of a tool schema in one line of text: names, ranges, choices and defaults.

    It rides in the ``params`` description, because some clients (the Ollama client) drop nested
    properties and bounds from a tool schema; names carry their units (``bright_db``)."""
    parts = []
    for name, prop in (schema.get("properties") or {}).items():
        options = [o for o in prop.get("anyOf", [prop]) if o.get("type") != "null"] or [prop]
        o = options[0]
        if "enum" in o:
            what = "one of " + "/".join(str(x) for x in o["enum"])
        elif "minimum" in o or "maximum" in o:
            what = f"{_fmt_num(o.get('minimum', '…'))}..{_fmt_num(o.get('maximum', '…'))}"
        else:
            what = str(o.get("type") or "value")
            if what == "array":
                what = "list"
        default = prop.get("default")
        parts.append(f"{name} {what}" + (f" (default {_fmt_num(default)})" if default is not None else ""))
    if not parts:
        return "This tool takes no params."
    return "Params (omit one to keep its default): " + "; ".join(parts)


def _step_properties() -> dict[str, Any]:
    return {
        "target": {
            "type": "string",
            "enum": list(TARGETS),
            "default": "mix",
            "description": "what the step acts on",
        },
        "reason": {"type": "string", "description": "why, in a few plain words"},
    }


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
        params["description"] = params_summary(params)
        out.append(
            {
                "type": "function",
                "function": {
                    "name": tool,
                    "description": desc,
                    "parameters": {
                        "type": "object",
                        "properties": {"params": params, **_step_properties()},
                        "required": ["params"],
                    },
                },
            }
        )
    return out


def turn_schemas(tools: Iterable[str]) -> list[dict[str, Any]]:
    """The ``answer`` and ``clarify`` schemas; ``suggest`` steps may name any of ``tools``."""
    suggest_step = {
        "type": "object",
        "properties": {
            "tool": {"type": "string", "enum": list(tools)},
            "params": {"type": "object", "description": "the tool's params, as in its own schema"},
            **_step_properties(),
        },
        "required": ["tool"],
    }
    return [
        {
            "type": "function",
            "function": {
                "name": ANSWER_TOOL,
                "description": "Answer the person (a question about the audio or the conversation, or why there "
                "is nothing to do); nothing runs. Quote measured numbers with units.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "text": {"type": "string", "description": "the answer, in plain words"},
                        "kind": {
                            "type": "string",
                            "enum": ["answer", "none"],
                            "default": "answer",
                            "description": "'none' when there is nothing to do",
                        },
                        "suggest": {
                            "type": "array",
                            "items": suggest_step,
                            "description": "steps to run if the person confirms ('yes', 'do it')",
                        },
                    },
                    "required": ["text"],
                },
            },
        },
        {
            "type": "function",
            "function": {
                "name": CLARIFY_TOOL,
                "description": "Ask the person one short question back when the request is too ambiguous to act on.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "question": {"type": "string", "description": "the question"},
                    },
                    "required": ["question"],
                },
            },
        },
    ]


def all_schemas(registry: Any = None, *, allow_unavailable: bool = False) -> list[dict[str, Any]]:
    """What the model is bound to: the processing tools, then ``answer`` and ``clarify``."""
    tools = tool_schemas(registry, allow_unavailable=allow_unavailable)
    return tools + turn_schemas(s["function"]["name"] for s in tools)


# ------------------------------------------------------------------ reading the answer


def _check_invalid(message: Any) -> None:
    bad = list(getattr(message, "invalid_tool_calls", None) or [])
    if bad:
        first = bad[0]
        name = first.get("name") if isinstance(first, Mapping) else getattr(first, "name", "?")
        err = first.get("error") if isinstance(first, Mapping) else ""
        raise LLMPlanError(f"malformed tool call '{name}'{': ' + str(err) if err else ''}")


def _args(name: str, args: Any) -> Mapping[str, Any]:
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except json.JSONDecodeError as exc:
            raise LLMPlanError(f"{name}: arguments are not JSON ({exc})") from None
    if not isinstance(args, Mapping):
        raise LLMPlanError(f"{name}: arguments must be an object")
    return args


def step_from_args(name: str, args: Any, registry: Any = None) -> Step:
    """One step from a tool name and its arguments; raises `LLMPlanError` on anything malformed.

    Out-of-range numbers pass (the validator clamps them and says so); wrong kinds do not."""
    if name not in CANONICAL:
        raise LLMPlanError(f"unknown tool '{name}'")
    args = _args(name, args)
    params = args.get("params", {})
    if isinstance(params, str):
        params = _args(f"{name}.params", params)
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
    return Step(tool=name, params=dict(params), target=target, reason=str(args.get("reason") or ""))


def steps_from_message(message: Any, registry: Any = None) -> list[Step]:
    """The processing steps an AIMessage's tool calls describe; raises `LLMPlanError` on anything
    malformed (including an ``answer`` or ``clarify`` call)."""
    _check_invalid(message)
    return [
        step_from_args(str(c.get("name") or ""), c.get("args"), registry)
        for c in getattr(message, "tool_calls", None) or []
    ]


@dataclass
class LLMTurn:
    """What the model said, parsed but not yet validated."""

    kind: str  # process | answer | clarify | none
    steps: list[Step] = field(default_factory=list)
    text: str | None = None
    suggested: list[Step] = field(default_factory=list)


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise LLMPlanError(f"{what} is empty")
    return value.strip()


def turn_from_message(message: Any, registry: Any = None) -> LLMTurn:
    """Read an AIMessage as one turn; raises `LLMPlanError` on anything malformed."""
    meta = getattr(message, "response_metadata", None) or {}
    if "length" in (meta.get("finish_reason"), meta.get("done_reason")):
        # a streamed reply cut off mid-arguments still parses (LangChain completes partial JSON)
        raise LLMPlanError("the model's reply was cut off (token limit)")
    _check_invalid(message)
    calls = list(getattr(message, "tool_calls", None) or [])
    if not calls:
        content = _content_text(message)
        said = f": {content[:80]!r}" if content else ""
        raise LLMPlanError(f"the model replied without a tool call{said}")
    names = [str(c.get("name") or "") for c in calls]
    turn_calls = [c for c, n in zip(calls, names, strict=True) if n in (ANSWER_TOOL, CLARIFY_TOOL)]
    if turn_calls:
        call = turn_calls[0]
        name = str(call.get("name"))
        if len(calls) > 1:
            others = ", ".join(n for n in names if n != name) or f"another {name}"
            raise LLMPlanError(
                f"'{name}' came with other tool calls ({others}); a turn either answers, asks back or plans"
            )
        args = _args(name, call.get("args"))
        if name == CLARIFY_TOOL:
            return LLMTurn(kind="clarify", text=_text(args.get("question"), "clarify: question"))
        kind = args.get("kind") or "answer"
        if kind not in ("answer", "none"):
            raise LLMPlanError(f"answer: kind must be 'answer' or 'none', not {kind!r}")
        suggest = args.get("suggest") or []
        if isinstance(suggest, str):
            suggest = _args("answer.suggest", suggest)
        if isinstance(suggest, Mapping):
            suggest = [suggest]
        if not isinstance(suggest, list):
            raise LLMPlanError("answer: suggest must be a list of steps")
        suggested = []
        for s in suggest:
            s = _args("answer.suggest", s)
            suggested.append(step_from_args(str(s.get("tool") or ""), s, registry))
        return LLMTurn(kind=str(kind), text=_text(args.get("text"), "answer: text"), suggested=suggested)
    return LLMTurn(
        kind="process",
        steps=[step_from_args(n, c.get("args"), registry) for c, n in zip(calls, names, strict=True)],
    )


def _content_text(message: Any) -> str:
    text = getattr(message, "content", "") or ""
    if isinstance(text, list):
        text = " ".join(str(x.get("text", "")) if isinstance(x, Mapping) else str(x) for x in text)
    return str(text).strip()


# ------------------------------------------------------------------ grounding


_NUM = r"[+\-−–]?\d+(?:\.\d+)?"
#: a number quoted with a unit of level, frequency or proportion
QUOTED = re.compile(rf"(?<![\w.])({_NUM})\s*(dBTP|dBFS|LUFS|LU|dB|kHz|Hz|%)(?![A-Za-z])")
_ANY_NUMBER = re.compile(rf"(?<![\w.])({_NUM})")
_LEVEL_UNITS = ("dBTP", "dBFS", "LUFS", "LU", "dB")


def _num(s: str) -> float:
    return float(s.replace("−", "-").replace("–", "-"))


def _numbers(text: str) -> list[float]:
    return [_num(m) for m in _ANY_NUMBER.findall(text or "")]


def known_numbers(prompt_texts: Sequence[str], diagnosis: Mapping[str, Any] | None) -> set[float]:
    """Numbers an answer may quote: any number in what the model was sent, each measured fact (also
    as a percentage and in kHz), and each level fact's distance to a level target in the prompt."""
    known: set[float] = set()
    for t in prompt_texts:
        known.update(abs(x) for x in _numbers(t))
    facts = dict((diagnosis or {}).get("facts") or {})
    level_facts: list[float] = []
    for key, v in facts.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
            continue
        fv = float(v)
        known.update({abs(fv), abs(fv) * 100.0, abs(fv) / 1000.0})
        if key.endswith(("_lufs", "_dbtp", "_dbfs", "_db", "_lu")):
            level_facts.append(fv)
    targets = {_num(n) for n, unit in QUOTED.findall(SYSTEM_PROMPT) if unit in _LEVEL_UNITS}
    for f in level_facts:
        for target in targets:
            known.add(abs(f - target))
    return known


def ungrounded_numbers(text: str, known: set[float]) -> list[str]:
    """The numbers-with-units in ``text`` that match nothing in ``known`` (to the precision quoted)."""
    out = []
    for raw, unit in QUOTED.findall(text or ""):
        value = abs(_num(raw))
        decimals = len(raw.split(".", 1)[1]) if "." in raw else 0
        tol = 0.5 * 10 ** (-decimals) + 0.01
        if not any(abs(value - k) <= tol for k in known):
            out.append(f"{raw} {unit}")
    return out


def _findings(semantic: Plan, diagnosis: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if semantic.findings:
        return [dict(f) for f in semantic.findings]
    return [
        {"problem": f.get("problem"), "severity": f.get("severity"), "evidence": f.get("evidence")}
        for f in (diagnosis or {}).get("findings") or []
        if isinstance(f, Mapping)
    ]


def _unfounded_repairs(
    steps: list[Step], semantic: Plan, diagnosis: Mapping[str, Any] | None
) -> tuple[list[Step], list[str]]:
    """Drop repair steps for problems the diagnosis did not find, unless the offline plan has them too."""
    if diagnosis is None:
        return steps, []
    found = {str(f.get("problem")) for f in diagnosis.get("findings") or [] if isinstance(f, Mapping)}
    ordered = {s.tool for s in semantic.steps} | {s.tool for s in semantic.suggested_steps}
    kept, notes = [], []
    for s in steps:
        needs = REPAIRS_FOR.get(s.tool)
        if needs and s.tool not in ordered and not found.intersection(needs):
            what = " or ".join(needs) if len(needs) <= 2 else "problem it repairs"
            notes.append(f"left out {s.tool}: the diagnosis found no {what}")
            continue
        kept.append(s)
    return kept, notes


def _as_mapping(diagnosis: Any) -> Mapping[str, Any] | None:
    if diagnosis is None or isinstance(diagnosis, Mapping):
        return diagnosis
    if hasattr(diagnosis, "to_dict"):
        return diagnosis.to_dict()
    raise TypeError(f"diagnosis must be a mapping or a Diagnosis, not {type(diagnosis).__name__}")


# ------------------------------------------------------------------ the planner


def plan_with_llm(
    request: str,
    *,
    semantic: Plan,
    forbidden: Forbidden,
    analysis: Mapping[str, Any] | None = None,
    diagnosis: Mapping[str, Any] | None = None,
    history: Sequence[Mapping[str, Any]] | None = None,
    registry: Any = None,
    settings: Any = None,
    llm: Any = None,
    allow_unavailable: bool = False,
) -> tuple[Plan, Forbidden]:
    """The LLM's turn, validated, and the user's prohibitions; the offline plan on any failure.

    ``semantic`` is the offline planner's turn for the same request (its findings and checks are
    kept; see the module docstring); ``diagnosis`` is ``Diagnosis.to_dict()`` (or the Diagnosis);
    ``history`` the thread's previous turns, oldest first, each ``{request, kind, tools, answer}``.
    """

    def fallback(reason: str) -> tuple[Plan, Forbidden]:
        plan = semantic.model_copy(deep=True)
        plan.add_note(f"LLM planner not used ({' '.join(reason.split())[:200]}); this is the offline plan")
        return plan, forbidden

    try:
        diag = _as_mapping(diagnosis)
        model = llm if llm is not None else build_chat_model(settings)
        bound = model.bind_tools(all_schemas(registry, allow_unavailable=allow_unavailable))
        from langchain_core.messages import HumanMessage, SystemMessage

        sent = [
            SYSTEM_PROMPT,
            user_message(request, dict(analysis or {}), semantic.to_json(), diagnosis=diag, history=history),
        ]
        message = bound.invoke([SystemMessage(sent[0]), HumanMessage(sent[1])])
        turn = turn_from_message(message, registry)
    except Exception as exc:  # any failure: the offline plan, with the reason
        return fallback(str(exc) if isinstance(exc, LLMPlanError) else f"{type(exc).__name__}: {exc}")

    grounded = {"findings": _findings(semantic, diag), "checks": semantic.checks}

    def validated(steps: list[Step]) -> tuple[list[Step], list[str]]:
        steps, harm = _unfounded_repairs(steps, semantic, diag)
        out = validate_plan(
            Plan(steps=steps, source="llm"),
            registry,
            forbidden=forbidden,
            allow_unavailable=allow_unavailable,
        )
        return out.steps, harm + out.notes

    if turn.kind == "process":
        if semantic.kind == "answer":
            return fallback(
                f"the model planned {', '.join(s.tool for s in turn.steps)} for a question; "
                "questions run nothing"
            )
        steps, notes = validated(turn.steps)
        if not steps:
            return fallback("nothing of the model's plan was left after validation: " + "; ".join(notes))
        return Plan(kind="process", steps=steps, source="llm", notes=notes, **grounded), forbidden

    loose = ungrounded_numbers(turn.text or "", known_numbers(sent, diag))
    if loose:
        return fallback(f"the model quoted numbers that were not measured: {', '.join(loose[:4])}")
    suggested, notes = validated(turn.suggested) if turn.suggested else ([], [])
    return Plan(
        kind=turn.kind, answer=turn.text, suggested_steps=suggested, source="llm", notes=notes, **grounded
    ), forbidden
