"""Parity: everything the planner, the executor and memory use about a tool agrees with the tool itself.

Each tool's ``SPEC`` (its ``Params`` model with bounds and defaults, its stage and planner metadata) is
the only contract; these tests fail when a table elsewhere (vocabulary, intents, chains, follow-up rules,
fallbacks, amount keys, explanation verbs, the CLI listing) names a param the tool does not have, a value
outside its bounds, or a clamp that is not the tool's bound.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from agents.contract import CONTRACT, REPAIRS_FOR, bounds, field_bounds, params_model
from agents.executor import _amount
from agents.explain import VERBS
from agents.plan import FALLBACKS, VOICE_ONLY, VOICE_TOOLS, WHOLE_MIX, validate_plan
from agents.planner import _is_open, make_plan
from agents.semantic import vocabulary as V
from agents.semantic.chains import repairs, speech_chain
from agents.semantic.draft import AMOUNT_KEY, EQ_DB, Draft, scaled
from agents.semantic.followup import SCALES, _scale_params, apply_followup, parse_followup
from agents.semantic.intents import INTENTS
from tools.registry import CANONICAL, TOOLS, ToolParams, default_registry

REPO = Path(__file__).resolve().parents[1]
REG = default_registry()
LEVELS = sorted(set(V.LEVEL_AMOUNT) | set(V.LEVEL_FACTOR)) + [None]


def _check(tool: str, params: dict[str, Any], where: str) -> list[str]:
    """Why ``params`` would not pass ``tool``'s own Params unchanged (unknown name, out of bounds, bad value)."""
    model = REG[tool].params
    bad = [
        f"{where}: {tool}.{k} is not a parameter of {model.__name__}"
        for k in params
        if k not in model.model_fields
    ]
    if bad:
        return bad
    try:
        model(**params)
    except ValidationError as exc:
        return [
            f"{where}: {tool} {'.'.join(map(str, e['loc']))}={params.get(e['loc'][0])!r}: {e['msg']}"
            for e in exc.errors()
        ]
    return []


# ------------------------------------------------------------------ the registry is the contract


def test_every_canonical_tool_has_a_real_spec_in_its_module():
    for name in TOOLS:
        spec = REG[name]
        assert spec.name == name and spec.run.__module__ == f"tools.{name}", name
        assert issubclass(spec.params, ToolParams) and spec.params.model_fields, f"{name}: placeholder spec"
        assert CANONICAL[name] == (f"tools.{name}", spec.stage, spec.description)
    assert list(CANONICAL) == list(REG) == list(TOOLS)


def test_every_tool_module_is_registered():
    """A module under tools/ that defines SPEC is a tool: its name is in TOOLS (the one line that lists it)."""
    found = []
    for path in sorted((REPO / "tools").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {
            t.id
            for node in tree.body
            if isinstance(node, (ast.Assign, ast.AnnAssign))
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
            if isinstance(t, ast.Name)
        }
        if names & {"SPEC", "SPECS"}:
            found.append(path.stem)
    assert sorted(found) == sorted(TOOLS), "add the tool's name to tools.registry.TOOLS (in chain order)"


def test_contract_is_each_specs_params_model():
    assert isinstance(CONTRACT, dict) and list(CONTRACT) == list(TOOLS)
    for name in TOOLS:
        assert CONTRACT[name] is REG[name].params is params_model(name)
        assert issubclass(CONTRACT[name], BaseModel)
    assert params_model("flanger") is None


def test_tool_modules_import_without_their_optional_packages():
    """The planner checks params of tools that cannot run here: their Params must import without torch & co."""
    heavy = (
        "torch",
        "torchaudio",
        "torchcrepe",
        "demucs",
        "vocos",
        "df",
        "nara_wpe",
        "pedalboard",
        "onnxruntime",
        "pyworld",
        "speechmos",
        "noisereduce",
    )
    code = (
        "import sys\nfrom tools.registry import TOOLS, default_registry\n"
        "specs = [default_registry()[t] for t in TOOLS]\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout


def test_contract_module_names_no_missing_notes():
    for path in ("agents/contract.py", "agents/plan.py", "agents/planner.py", "tools/registry.py"):
        assert "PARAMS.md" not in (REPO / path).read_text(), path


# ------------------------------------------------------------------ planner metadata on the spec


def test_amount_keys_name_bounded_fields_and_the_executor_reads_them():
    assert list(AMOUNT_KEY) == [t for t in TOOLS if REG[t].amount_key]
    for tool, (key, default) in AMOUNT_KEY.items():
        model = REG[tool].params
        assert key in model.model_fields, f"{tool}: amount key {key!r} is not a field"
        assert default == model.model_fields[key].default
        assert bounds(tool, key) == (0.0, 1.0), f"{tool}.{key}: an amount is 0–1"
        assert _amount({key: 0.42}) == 0.42, f"the executor's gate does not read {tool}.{key}"


def test_every_tool_explains_itself():
    for tool in TOOLS:
        assert REG[tool].verb and VERBS[tool] == REG[tool].verb, tool


def test_follow_up_scales_name_fields_with_neutral_values_inside_bounds():
    for tool in TOOLS:
        model = REG[tool].params
        for key, neutral in SCALES.get(tool, ()):
            assert key in model.model_fields, f"{tool}: scaled param {key!r} is not a field"
            lo, hi = bounds(tool, key)
            assert (lo is None or lo <= neutral) and (hi is None or neutral <= hi), f"{tool}.{key}"
    assert [k for k, _ in SCALES["eq"]] == list(EQ_DB)


def test_target_rules_come_from_the_specs():
    for tool in TOOLS:
        spec = REG[tool]
        assert (tool in WHOLE_MIX) == spec.whole_mix and (tool in VOICE_TOOLS) == spec.voice
        if spec.whole_mix:
            assert "mix" in spec.applies_to, f"{tool}: acts on the whole mix but does not apply to it"
        if spec.voice:
            assert {"vocals", "speech"} & set(spec.applies_to), (
                f"{tool}: a voice tool that applies to no voice"
            )
    assert set(VOICE_ONLY) <= set(VOICE_TOOLS)


def test_eq_gains_the_planner_moves_are_eq_fields():
    eq = REG["eq"].params
    for k in EQ_DB:
        assert k in eq.model_fields and k.endswith("_db"), k


def test_memory_reads_open_params_from_the_tools_defaults():
    for tool in TOOLS:
        for key, info in REG[tool].params.model_fields.items():
            if not info.is_required():
                assert _is_open(tool, key, info.get_default(call_default_factory=True)), f"{tool}.{key}"


# ------------------------------------------------------------------ what the planner can emit


def test_vocabulary_steps_and_inverses_pass_the_tools_params():
    bad = []
    for term in V.TERMS:
        for tool, params in tuple(term.steps) + tuple(term.inverse or ()):
            bad += _check(tool, dict(params), f"vocabulary term {term.key!r}")
    for name, value in (("EQ_GENTLE", V.EQ_GENTLE), ("SPEECH_EQ", V.SPEECH_EQ)):
        bad += _check("eq", dict(value), f"vocabulary {name}")
    for pattern, platform, lufs, tp, _ in V.PLATFORMS:
        params = {"target_lufs": lufs, "true_peak_dbtp": tp} | ({"platform": platform} if platform else {})
        bad += _check("master", params, f"platform {pattern!r}")
    assert not bad, "\n".join(bad)


def test_intent_steps_pass_the_tools_params():
    bad = []
    for intent in INTENTS:
        for tool, params in intent.steps:
            if not tool.startswith("__"):
                bad += _check(tool, dict(params), f"intent {intent.name!r}")
    assert not bad, "\n".join(bad)


ANALYSES = [
    None,
    {},
    {"clipping_ratio": 0.01, "snr_db": 10.0, "bandwidth_hz": 4000.0},
    {"clipping_ratio": 0.0, "snr_db": 20.0, "bandwidth_hz": 20000.0},
    {"snr_db": 28.0},
]


@pytest.mark.parametrize("analysis", ANALYSES)
def test_chain_steps_pass_the_tools_params(analysis):
    bad = []
    for target in ("mix", "speech", "vocals"):
        d = Draft()
        repairs(d, analysis, target, default_denoise=True)
        bad += [m for s in d.steps for m in _check(s.tool, s.params, f"repairs({analysis}, {target})")]
    for with_master in (True, False):
        d = Draft()
        speech_chain(d, analysis, with_master=with_master)
        bad += [m for s in d.steps for m in _check(s.tool, s.params, f"speech_chain({analysis})")]
    assert not bad, "\n".join(bad)


def test_repair_tools_name_diagnosed_problems():
    from tools.diagnose import PROBLEMS, REPAIR_PROBLEMS

    for tool, problems in REPAIRS_FOR.items():
        assert set(problems) <= set(PROBLEMS), f"{tool}: unknown problems {set(problems) - set(PROBLEMS)}"
    assert set(REPAIR_PROBLEMS) <= {p for problems in REPAIRS_FOR.values() for p in problems}


@pytest.mark.parametrize("severity", [0.0, 0.3, 0.6, 1.0])
def test_diagnosis_fixes_pass_the_tools_params(severity):
    from agents.answers import fixes
    from tools.diagnose import PROBLEMS

    findings = [{"problem": p, "severity": severity, "evidence": ""} for p in PROBLEMS]
    bad = []
    for speech in (True, False):
        for st in fixes(findings, speech=speech):
            bad += _check(st.tool, st.params, f"fix for a diagnosis (severity {severity}, speech {speech})")
    assert not bad, "\n".join(bad)


def test_fallbacks_translate_into_the_fallback_tools_params():
    bad = []
    for tool, (fb_tool, translate, _) in FALLBACKS.items():
        model = REG[tool].params
        samples = [{}] + [
            {k: v}
            for k, info in model.model_fields.items()
            if (lo_hi := field_bounds(model, k)) != (None, None)
            for v in lo_hi
            if v is not None
        ]
        if "target" in model.model_fields:
            samples += [{"target": t} for t in ("harsh", "mud", "boom", "resonance")]
        for p in samples:
            bad += _check(fb_tool, translate(p), f"fallback {tool}→{fb_tool} of {p}")
    assert not bad, "\n".join(bad)


def test_intensity_scaling_stays_inside_the_tools_bounds():
    bad = []
    base = {tool: {key: default} for tool, (key, default) in AMOUNT_KEY.items()}
    base["eq"] = {k: 6.0 * (-1) ** i for i, k in enumerate(EQ_DB)}
    base["stereo_width"] = {"width": 1.8}
    base["master"] = {"target_lufs": -8.0}
    for tool, params in base.items():
        for level in LEVELS:
            bad += _check(tool, scaled(tool, params, level), f"scaled({tool}, {level})")
    assert not bad, "\n".join(bad)


# ------------------------------------------------------------------ follow-ups


def test_follow_up_clamps_are_the_tools_bounds():
    """ "More" / "less" saturate at exactly the tool's bounds (a huge factor, a zero one)."""
    for tool, (key, _) in AMOUNT_KEY.items():
        lo, hi = bounds(tool, key)
        assert _scale_params(tool, {key: 0.5}, 1e6)[key] == hi
        assert _scale_params(tool, {key: 0.5}, 0.0)[key] == lo
    for k in EQ_DB:
        lo, hi = bounds("eq", k)
        assert _scale_params("eq", {k: 3.0}, 1e6)[k] == hi and _scale_params("eq", {k: -3.0}, 1e6)[k] == lo
    lo, hi = bounds("stereo_width", "width")
    assert _scale_params("stereo_width", {"width": 1.5}, 1e6)["width"] == hi
    assert _scale_params("stereo_width", {"width": 0.5}, 1e6)["width"] == lo
    lo, hi = bounds("sidechain", "depth_db")
    assert (
        _scale_params("sidechain", {}, 1e6)["depth_db"] == hi
        and _scale_params("sidechain", {}, 0.0)["depth_db"] == lo
    )
    assert (
        _scale_params("sidechain", {}, 1.0)["depth_db"]
        == REG["sidechain"].params.model_fields["depth_db"].default
    )
    lo, hi = bounds("master", "glue")
    assert _scale_params("master", {"glue": 0.5}, 1e6)["glue"] == hi


FOLLOW_UPS = [
    "a bit more",
    "a lot more",
    "less",
    "much less",
    "louder",
    "a lot louder",
    "quieter",
    "3 dB louder",
    "more reverb",
    "less reverb",
    "less compression",
    "more compression",
    "a bit brighter",
    "less bright",
    "warmer",
    "less muddy",
    "wider",
    "narrower",
    "more width",
    "no reverb",
    "same but for Apple Music",
    "same as before but for broadcast",
    "now in a rock style",
    "more denoise",
    "less de-essing",
    "too much reverb",
    "even more air",
    "more punch",
    "more glue",
]


@pytest.mark.parametrize(
    "previous_request",
    [
        "clean up the noise, brighter and warmer, compress it, a little reverb and delay, wider, master for Spotify",
        "podcast: denoise, de-ess, tune the vocals to C major, duck the music under the voice",
    ],
)
def test_follow_up_plans_pass_the_tools_params(previous_request):
    previous = make_plan(previous_request, allow_unavailable=True, use_embedder=False)
    assert previous.steps
    bad = []
    for text in FOLLOW_UPS:
        fu = parse_followup(text)
        if fu is None or fu.kind not in ("adjust", "repeat_with_changes"):
            continue
        plan = apply_followup(previous, fu)
        bad += [m for s in plan.steps for m in _check(s.tool, s.params, f"follow-up {text!r}")]
        checked = validate_plan(plan, None, allow_unavailable=True)
        bad += [f"follow-up {text!r}: {n}" for n in checked.notes if "dropped" in n or "clamped" in n]
    assert not bad, "\n".join(bad)


# ------------------------------------------------------------------ surfaces list what the registry says


def test_mixpilot_tools_listing_is_the_registry():
    from app.commands.tools import run

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert run(argparse.Namespace(json=True)) == 0
    listed = json.loads(buf.getvalue())
    assert [t["name"] for t in listed] == list(TOOLS)
    for entry in listed:
        spec = REG[entry["name"]]
        # the listing is the spec's own description, plus the neural models a tool uses (models/weights.py)
        assert {k: v for k, v in entry.items() if k != "models"} == spec.describe()
        assert set(entry["params"]) == set(spec.params.model_fields)
        assert entry["stage"] == spec.stage.name.lower() and entry["description"] == spec.description


def test_llm_tool_schemas_are_the_tools_params():
    from agents.llm_planner import tool_schemas

    schemas = {s["function"]["name"]: s["function"] for s in tool_schemas(allow_unavailable=True)}
    assert list(schemas) == list(TOOLS)
    for name, fn in schemas.items():
        assert set(fn["parameters"]["properties"]["params"]["properties"]) == set(
            REG[name].params.model_fields
        )
