"""The LLM planner over a real wire: the `langchain-openai` and `langchain-ollama` clients, built from
the MIXPILOT_LLM_* settings, against local servers speaking the OpenAI chat-completions and the
Ollama chat protocols (tests/llmservers.py) that replay recorded tool-call responses, well-formed
and malformed. The plan that comes back must follow the turn contract (ARCHITECTURE.md); the
servers must have received the registry's tool schemas and the diagnosis and history."""

from __future__ import annotations

import pytest

pytest.importorskip("langchain_openai", reason="needs the llm extra: pip install 'mixpilot[llm]'")
pytest.importorskip("langchain_ollama", reason="needs the llm extra: pip install 'mixpilot[llm]'")

from agents.llm_planner import all_schemas, build_chat_model, plan_with_llm
from agents.plan import Forbidden, Plan, Step
from tests.llmservers import LLMServer, Reply, ollama_tool_calls, openai_tool_calls
from tools.registry import TOOLS

CONTRACT_KEYS = {"kind", "steps", "answer", "findings", "suggested_steps", "checks", "source", "notes"}
MODELS = {"openai": "gpt-test", "ollama": "llama3.1:8b"}

NOISE = {
    "problem": "noise",
    "severity": 0.7,
    "evidence": "noise floor -48 dBFS, 19 dB under the speech",
    "measurements": {"noise_floor_dbfs": -48.0},
}
PEAK = {
    "problem": "true_peak",
    "severity": 0.6,
    "evidence": "true peak +1.0 dBTP, over a -1 dBTP ceiling",
    "measurements": {"true_peak_dbtp": 1.0},
}
FACTS = {
    "integrated_lufs": -9.2,
    "true_peak_dbtp": 1.0,
    "lra_lu": 4.1,
    "plr_db": 10.2,
    "noise_floor_dbfs": -48.0,
    "snr_db": 19.0,
    "bandwidth_hz": 19500.0,
    "stereo_correlation": 0.82,
    "clipping_ratio": 0.0,
    "content": "speech",
    "duration_s": 42.0,
    "hum_hz": None,
}
DIAGNOSIS = {"findings": [NOISE, PEAK], "facts": FACTS}
CLEAN = {
    "findings": [],
    "facts": {**FACTS, "noise_floor_dbfs": -82.0, "snr_db": 55.0, "true_peak_dbtp": -1.2},
}
HISTORY = [
    {"request": "make it warmer", "kind": "process", "tools": ["eq"], "answer": None},
    {
        "request": "what did you do?",
        "kind": "answer",
        "tools": [],
        "answer": "I added 3 dB around 200 Hz with the EQ (warm_db +3.0).",
    },
]
FINDINGS = [{k: f[k] for k in ("problem", "severity", "evidence")} for f in DIAGNOSIS["findings"]]
SPOTIFY = {
    "platform": "spotify",
    "ready": False,
    "reasons": ["loudness -9.2 LUFS: Spotify turns it down 4.8 dB", "true peak +1.0 dBTP is over -1 dBTP"],
}
MASTER = Step(tool="master", params={"target_lufs": -14.0, "true_peak_dbtp": -1.0}, reason="Spotify")

SEM_PROCESS = Plan(
    kind="process",
    steps=[Step(tool="denoise", params={"strength": 0.7}), MASTER],
    findings=FINDINGS,
    source="semantic",
)
SEM_ANSWER = Plan(
    kind="answer",
    answer="Not yet: -9.2 LUFS and a true peak of +1.0 dBTP.",
    findings=FINDINGS,
    suggested_steps=[MASTER],
    checks=SPOTIFY,
    source="semantic",
)


# ------------------------------------------------------------------ servers and clients


@pytest.fixture(params=["openai", "openai-stream", "ollama"])
def wire(request, monkeypatch):
    """(server, protocol, llm): a local server and how the planner reaches it. The non-streaming
    clients are built by the planner itself from MIXPILOT_LLM_* (as a deployment configures it);
    the streaming OpenAI client is a ChatOpenAI handed in."""
    proto = request.param.split("-")[0]
    with LLMServer(proto) as server:
        llm = None
        monkeypatch.setenv("MIXPILOT_LLM_PROVIDER", proto)
        monkeypatch.setenv("MIXPILOT_LLM_MODEL", MODELS[proto])
        monkeypatch.setenv("MIXPILOT_LLM_BASE_URL", server.url)
        monkeypatch.setenv("MIXPILOT_LLM_TIMEOUT_S", "5")
        monkeypatch.setenv("MIXPILOT_LLM_MAX_RETRIES", "0")
        if proto == "openai":
            monkeypatch.setenv("MIXPILOT_LLM_API_KEY", "test")
        else:
            monkeypatch.delenv("MIXPILOT_LLM_API_KEY", raising=False)
        if request.param == "openai-stream":
            from langchain_openai import ChatOpenAI

            llm = ChatOpenAI(
                base_url=server.url,
                api_key="test",
                model=MODELS[proto],
                temperature=0,
                streaming=True,
                max_retries=0,
                timeout=5,
            )
        yield server, proto, llm


def recorded(proto: str, *calls: tuple[str, object], content: str | None = None, cut: bool = False) -> Reply:
    """A recorded reply; ``cut``: the model hit its token limit."""
    if proto == "openai":
        return openai_tool_calls(*calls, content=content, finish_reason="length" if cut else None)
    return ollama_tool_calls(*calls, content=content or "", done_reason="length" if cut else "stop")


def plan(
    request: str,
    llm=None,
    *,
    semantic: Plan = SEM_PROCESS,
    diagnosis=DIAGNOSIS,
    history=HISTORY,
    forbidden: Forbidden | None = None,
) -> Plan:
    out, _ = plan_with_llm(
        request,
        semantic=semantic,
        forbidden=forbidden or Forbidden(),
        diagnosis=diagnosis,
        history=history,
        llm=llm,
        allow_unavailable=True,
    )
    assert set(out.to_json()) == CONTRACT_KEYS
    return out


def fell_back(out: Plan, semantic: Plan, why: str) -> None:
    assert out.source == "semantic" and out.kind == semantic.kind
    assert out.to_json()["steps"] == semantic.to_json()["steps"]
    assert out.answer == semantic.answer and out.checks == semantic.checks
    note = next((n for n in out.notes if n.startswith("LLM planner not used")), "")
    assert why in note and note.endswith("this is the offline plan"), out.notes


# ------------------------------------------------------------------ well-formed


def test_plan_with_two_tools(wire):
    server, proto, llm = wire
    server.reply(
        recorded(
            proto,
            ("denoise", {"params": {"strength": 0.7}, "target": "speech", "reason": "noise floor -48 dBFS"}),
            ("master", {"params": {"target_lufs": -14, "true_peak_dbtp": -1}, "reason": "Spotify"}),
        )
    )
    out = plan("clean it up and master it for Spotify", llm)
    assert out.kind == "process" and out.source == "llm" and out.answer is None
    assert [(s.tool, s.target) for s in out.steps] == [("denoise", "speech"), ("master", "mix")]
    assert out.steps[1].params == {"target_lufs": -14.0, "true_peak_dbtp": -1.0}
    assert out.findings == FINDINGS and out.suggested_steps == [] and out.notes == []

    req = server.requests[0]
    assert len(server.requests) == 1 and req["path"].endswith(("/v1/chat/completions", "/api/chat"))
    body = req["json"]
    assert body["model"] == MODELS[proto]
    # the tool schemas generated from the registry, plus the two turn tools
    assert server.tool_names() == list(TOOLS) + ["answer", "clarify"]
    schemas = all_schemas(None, allow_unavailable=True)
    eq = next(t for t in body["tools"] if t["function"]["name"] == "eq")["function"]["parameters"]
    if proto == "openai":
        assert body["tools"] == schemas
        assert eq["properties"]["params"]["properties"]["bright_db"]["maximum"] == 12.0
    else:  # the Ollama client drops nested properties and bounds: the params description carries them
        for sent, ours in zip(body["tools"], schemas, strict=True):
            assert sent["function"]["description"] == ours["function"]["description"]
            for key, prop in ours["function"]["parameters"]["properties"].items():
                assert sent["function"]["parameters"]["properties"][key]["description"] == prop.get(
                    "description"
                )
        assert "bright_db -12..12 (default 0)" in eq["properties"]["params"]["description"]
    # the diagnosis and the history travelled in the messages
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    prompt = server.prompt()
    assert NOISE["evidence"] in prompt and '"integrated_lufs": -9.2' in prompt
    assert "make it warmer" in prompt and "warm_db +3.0" in prompt and "Request: clean it up" in prompt
    if proto == "openai":
        assert req["headers"]["authorization"] == "Bearer test" and body["temperature"] == 0
        assert bool(body.get("stream")) == (llm is not None)
    else:
        assert body["stream"] is True and body["options"]["temperature"] == 0


def test_answer_with_a_suggestion(wire):
    server, proto, llm = wire
    text = (
        "Not yet: it measures -9.2 LUFS, so Spotify will turn it down 4.8 dB, and the true peak "
        "+1.0 dBTP will clip after encoding."
    )
    server.reply(
        recorded(
            proto,
            (
                "answer",
                {
                    "text": text,
                    "suggest": [
                        {
                            "tool": "master",
                            "params": {"target_lufs": -14, "true_peak_dbtp": -1},
                            "reason": "Spotify",
                        }
                    ],
                },
            ),
        )
    )
    out = plan("is it ready for Spotify?", llm, semantic=SEM_ANSWER)
    assert out.kind == "answer" and out.source == "llm" and out.steps == [] and out.answer == text
    assert [(s.tool, s.params) for s in out.suggested_steps] == [("master", MASTER.params)]
    # measurements stay the offline planner's: findings and the platform verdict
    assert out.findings == FINDINGS and out.checks == SPOTIFY


def test_clarify(wire):
    server, proto, llm = wire
    question = "Which platform is it for: Spotify (-14 LUFS) or a podcast (-16 LUFS)?"
    server.reply(recorded(proto, ("clarify", {"question": question})))
    out = plan("make it the right loudness", llm)
    assert out.kind == "clarify" and out.answer == question and out.source == "llm"
    assert out.steps == [] and out.suggested_steps == [] and out.findings == FINDINGS


def test_nothing_to_do_on_a_clean_recording(wire):
    server, proto, llm = wire
    text = "Nothing to clean: the noise floor is -82 dBFS and the true peak -1.2 dBTP."
    server.reply(recorded(proto, ("answer", {"text": text, "kind": "none"})))
    sem = Plan(kind="none", answer="Nothing to repair.", source="semantic")
    out = plan("clean this up", llm, semantic=sem, diagnosis=CLEAN)
    assert out.kind == "none" and out.answer == text and out.steps == [] and out.findings == []


def test_out_of_bounds_params_are_clamped(wire):
    server, proto, llm = wire
    server.reply(
        recorded(
            proto,
            ("eq", {"params": {"bright_db": 30}, "target": "vocals"}),
            ("master", {"params": {"target_lufs": -40}}),
        )
    )
    out = plan(
        "much brighter vocals, very quiet master",
        llm,
        semantic=Plan(steps=[Step(tool="eq", params={"bright_db": 4.0})]),
    )
    assert out.source == "llm" and out.tools == ["eq", "master"]
    assert out.step("eq").params == {"bright_db": 12.0} and out.step("master").params == {
        "target_lufs": -30.0
    }
    assert "eq: bright_db 30 is out of range; clamped to 12" in out.notes
    assert "master: target_lufs -40 is out of range; clamped to -30" in out.notes


def test_suggestions_are_validated(wire):
    server, proto, llm = wire
    server.reply(
        recorded(
            proto,
            (
                "answer",
                {
                    "text": "It is quite dry.",
                    "suggest": [
                        {"tool": "master", "params": {"true_peak_dbtp": 3}},
                        {"tool": "reverb", "params": {"amount": 0.3}},
                        {"tool": "eq", "params": {"warm_db": 2}},
                    ],
                },
            ),
        )
    )
    out = plan(
        "how does the room sound? no reverb", llm, semantic=SEM_ANSWER, forbidden=Forbidden(tools={"reverb"})
    )
    assert out.kind == "answer" and [s.tool for s in out.suggested_steps] == [
        "eq",
        "master",
    ]  # canonical order
    assert out.suggested_steps[1].params == {"true_peak_dbtp": 0.0}
    assert any("clamped" in n for n in out.notes) and any("no reverb" in n for n in out.notes)


def test_repairs_only_for_measured_problems(wire):
    server, proto, llm = wire
    server.reply(
        recorded(proto, ("denoise", {"params": {"strength": 0.8}}), ("master", {"params": {}})),
        recorded(proto, ("denoise", {"params": {"strength": 0.8}}), ("master", {"params": {}})),
    )
    out = plan("clean and master this", llm, semantic=Plan(steps=[MASTER]), diagnosis=CLEAN)
    assert out.source == "llm" and out.tools == ["master"]
    assert "left out denoise: the diagnosis found no noise or hum" in out.notes
    # an explicit order (the offline planner has the step too) still runs
    ordered = plan(
        "remove the noise and master",
        llm,
        semantic=Plan(steps=[Step(tool="denoise"), MASTER]),
        diagnosis=CLEAN,
    )
    assert ordered.tools == ["denoise", "master"]


# ------------------------------------------------------------------ malformed: the offline plan, reason noted


MALFORMED = {
    "unknown tool": ([("flanger", {"params": {"rate_hz": 0.5}})], "unknown tool 'flanger'"),
    "args not JSON": (
        [("eq", '{"params": {"bright_db": three}}')],
        {"openai": "malformed tool call 'eq'", "ollama": "ValidationError"},
    ),
    "params not JSON": ([("eq", {"params": "{bright_db: 3"})], "eq.params: arguments are not JSON"),
    "wrong kind": ([("eq", {"params": {"bright_db": "very"}})], "eq: bad parameter bright_db"),
    "unknown target": ([("eq", {"params": {}, "target": "kazoo"})], "unknown target 'kazoo'"),
    "answer and steps": (
        [("answer", {"text": "I'll brighten it."}), ("eq", {"params": {"bright_db": 3}})],
        "'answer' came with other tool calls (eq)",
    ),
    "two answers": ([("answer", {"text": "a"}), ("answer", {"text": "b"})], "came with other tool calls"),
    "empty answer": ([("answer", {"text": "  "})], "answer: text is empty"),
    "unknown suggestion": (
        [("answer", {"text": "Try this.", "suggest": [{"tool": "autotune_pro"}]})],
        "unknown tool 'autotune_pro'",
    ),
    "invented number": (
        [("answer", {"text": "It measures -6.5 LUFS, far too loud."})],
        "quoted numbers that were not measured: -6.5 LUFS",
    ),
    "plain text": ([], "the model replied without a tool call: \"Sure, I'd brighten it"),
}


@pytest.mark.parametrize("case", list(MALFORMED) + ["cut off"])
def test_malformed_replies_fall_back(wire, case):
    server, proto, llm = wire
    # cut off: a streamed OpenAI reply's partial arguments still parse; Ollama sends objects
    truncated = '{"params": {"bright_db": 3' if proto == "openai" else {"params": {"bright_db": 3}}
    calls, why = MALFORMED.get(case) or ([("eq", truncated)], "reply was cut off")
    why = why[proto] if isinstance(why, dict) else why
    content = "Sure, I'd brighten it a little." if not calls else None
    server.reply(recorded(proto, *calls, content=content, cut=case == "cut off"))
    out = plan("make it brighter", llm)
    fell_back(out, SEM_PROCESS, why)
    assert len(server.requests) == 1


def test_planned_steps_for_a_question_fall_back(wire):
    server, proto, llm = wire
    server.reply(recorded(proto, ("master", {"params": {"target_lufs": -14}})))
    out = plan("is it ready for Spotify?", llm, semantic=SEM_ANSWER)
    fell_back(out, SEM_ANSWER, "the model planned master for a question; questions run nothing")
    assert out.suggested_steps == SEM_ANSWER.suggested_steps and out.findings == FINDINGS


@pytest.mark.parametrize("failure", ["http 500", "timeout"])
def test_server_failures_fall_back(wire, failure, monkeypatch):
    server, proto, llm = wire
    if failure == "timeout":
        monkeypatch.setenv("MIXPILOT_LLM_TIMEOUT_S", "0.5")
        if llm is not None:
            from langchain_openai import ChatOpenAI

            llm = ChatOpenAI(
                base_url=server.url,
                api_key="test",
                model=MODELS[proto],
                streaming=True,
                max_retries=0,
                timeout=0.5,
            )
        server.reply(Reply(body=recorded(proto, ("eq", {"params": {}})).body, delay_s=10))
        why = {"openai": "Timeout", "ollama": "ReadTimeout"}[proto]
    else:
        server.reply(Reply(status=500, error="model crashed"))
        why = {"openai": "model crashed", "ollama": "ResponseError: model crashed"}[proto]
    out = plan("make it brighter", llm)
    fell_back(out, SEM_PROCESS, why)
    assert len(server.requests) == 1


# ------------------------------------------------------------------ settings


def test_retries_from_settings_then_success():
    from types import SimpleNamespace

    with LLMServer("openai") as server:
        server.reply(Reply(status=500), openai_tool_calls(("master", {"params": {"target_lufs": -14}})))
        settings = SimpleNamespace(
            llm_model="gpt-test",
            llm_provider="openai",
            llm_base_url=server.url,
            llm_api_key="test",
            llm_timeout_s=5,
            llm_max_retries=1,
        )
        out, _ = plan_with_llm(
            "master it for Spotify",
            semantic=SEM_PROCESS,
            forbidden=Forbidden(),
            settings=settings,
            allow_unavailable=True,
        )
        assert out.source == "llm" and out.tools == ["master"] and len(server.requests) == 2


@pytest.mark.parametrize("proto", ["openai", "ollama"])
def test_app_settings_reach_the_server(proto, monkeypatch):
    """`app.settings.Settings` (what the CLI, API and UI build) configures the same clients."""
    from app.settings import Settings

    for name in ("MODEL", "PROVIDER", "BASE_URL", "API_KEY", "TIMEOUT_S", "MAX_RETRIES"):
        monkeypatch.delenv(f"MIXPILOT_LLM_{name}", raising=False)
    with LLMServer(proto) as server:
        settings = Settings(
            _env_file=None,
            llm_model=MODELS[proto],
            llm_provider=proto,
            llm_base_url=server.url,
            llm_api_key="sk-local",
        )
        model = build_chat_model(settings)
        assert type(model).__name__ == {"openai": "ChatOpenAI", "ollama": "ChatOllama"}[proto]
        server.reply(recorded(proto, ("clarify", {"question": "Which part: the vocals or the whole mix?"})))
        out, _ = plan_with_llm(
            "fix it", semantic=SEM_PROCESS, forbidden=Forbidden(), settings=settings, allow_unavailable=True
        )
        assert out.kind == "clarify" and out.source == "llm"
        assert server.requests[0]["headers"]["authorization"] == "Bearer sk-local"


def test_unreachable_endpoint_falls_back(monkeypatch):
    with LLMServer("openai") as server:
        url = server.url
    monkeypatch.setenv("MIXPILOT_LLM_PROVIDER", "openai")
    monkeypatch.setenv("MIXPILOT_LLM_MODEL", "gpt-test")
    monkeypatch.setenv("MIXPILOT_LLM_BASE_URL", url)
    monkeypatch.setenv("MIXPILOT_LLM_API_KEY", "test")
    monkeypatch.setenv("MIXPILOT_LLM_MAX_RETRIES", "0")
    out = plan("make it brighter")
    fell_back(out, SEM_PROCESS, "Connection")


# ------------------------------------------------------------------ grounding and the prompt, without a wire


@pytest.mark.parametrize(
    "text, loose",
    [
        ("It measures −9.2 LUFS with a true peak of +1.0 dBTP.", []),  # typographic minus
        (
            "About 4.8 dB over Spotify's −14 LUFS; the top stops near 19.5 kHz.",
            [],
        ),  # distance to a target; kHz
        ("The noise floor sits at -48 dBFS, 19 dB under the speech, and 0% of samples clip.", []),
        ("It is -9 LUFS, roughly.", []),  # rounded to the precision quoted
        ("The true peak is -3.5 dBTP and the low end peaks at 63 Hz.", ["-3.5 dBTP", "63 Hz"]),
    ],
)
def test_quoted_numbers_must_be_measured(text, loose):
    from agents.llm_planner import known_numbers, ungrounded_numbers
    from agents.prompts import SYSTEM_PROMPT, user_message

    sent = [SYSTEM_PROMPT, user_message("is it ready for Spotify?", None, None, diagnosis=DIAGNOSIS)]
    assert ungrounded_numbers(text, known_numbers(sent, DIAGNOSIS)) == loose


def test_prompt_carries_diagnosis_history_and_draft():
    from agents.prompts import HISTORY_TURNS, user_message

    history = [{"request": f"turn {i}", "kind": "process", "steps": [{"tool": "eq"}]} for i in range(10)]
    text = user_message(
        "and now?",
        {"integrated_lufs": -20.0, "snr_db": 40.0},
        SEM_ANSWER.to_json(),
        diagnosis=DIAGNOSIS,
        history=history,
    )
    assert "Request: and now?" in text and NOISE["evidence"] in text and PEAK["evidence"] in text
    assert '"integrated_lufs": -9.2' in text and "-20.0" not in text  # the diagnosis' facts win
    assert "hum_hz" not in text  # unmeasured facts are left out
    assert "turn 3" not in text and f"turn {10 - HISTORY_TURNS}" in text and '"tools run": ["eq"]' in text
    assert (
        '"kind": "answer"' in text and '"suggested_steps"' in text and "Spotify turns it down 4.8 dB" in text
    )
