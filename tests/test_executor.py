"""The executor's quality gate: measured rollback, safety trim, skipped failures, stems."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from pydantic import Field

from agents.executor import Executor
from tests.conftest import noise, sine
from tools.audio import Audio
from tools.metrics import si_sdr_channels
from tools.registry import Registry, Stage, ToolParams, ToolResult, ToolSpec


@dataclass
class S:
    tool: str
    params: dict = field(default_factory=dict)
    target: str = "mix"
    reason: str = ""


class GainParams(ToolParams):
    gain_db: float = Field(0.0, ge=-40, le=40)
    amount: float = Field(0.5, ge=0, le=1)


def _gain(audio, p, ctx):
    return ToolResult(audio.with_samples(audio.samples * 10 ** (p.gain_db / 20)), {"gain_db": p.gain_db})


def _scramble(audio, p, ctx):  # a "gentle" step that destroys the signal
    rng = np.random.default_rng(0)
    return ToolResult(audio.with_samples(rng.standard_normal(audio.samples.shape).astype(np.float32) * 0.1))


def _broken(audio, p, ctx):
    raise RuntimeError("kaboom")


def _silence(audio, p, ctx):
    return ToolResult(audio.with_samples(np.zeros_like(audio.samples)))


def _split(audio, p, ctx):
    low = audio.with_samples(audio.samples * 0.25)
    rest = audio.with_samples(audio.samples * 0.75)
    return ToolResult(audio, extra={"vocals": low, "other": rest})


def reg(**runs) -> Registry:
    specs = {
        name: ToolSpec(name=name, description=name, params=GainParams, run=fn, stage=stage)
        for name, (fn, stage) in runs.items()
    }
    return Registry(specs)


@pytest.fixture
def mix():
    return Audio(sine(440, 1.0, 48000, 0.5, 2) + noise(1.0, 48000, 0.01, 2), 48000)


def test_gentle_step_that_collapses_the_signal_is_rolled_back(mix):
    ex = Executor(reg(eq=(_scramble, Stage.TONE), compress=(_gain, Stage.DYNAMICS)))
    res = ex.run(mix, [S("eq", {"amount": 0.3}), S("compress", {"gain_db": -3, "amount": 0.3})])
    assert [o.status for o in res.outcomes] == ["rolled_back", "applied"]
    assert "SI-SDR" in res.outcomes[0].why
    # the rollback means the next step ran on the original, not on the scrambled audio
    assert si_sdr_channels(res.audio.samples, mix.samples) > 30


def test_a_strong_step_may_change_the_sound(mix):
    ex = Executor(reg(eq=(_scramble, Stage.TONE)))
    res = ex.run(mix, [S("eq", {"amount": 0.9})])
    assert res.outcomes[0].status == "applied"


def test_failing_and_silent_tools_are_skipped_or_rolled_back(mix):
    ex = Executor(reg(eq=(_broken, Stage.TONE), reverb=(_silence, Stage.SPACE)))
    res = ex.run(mix, [S("eq"), S("reverb")])
    assert res.outcomes[0].status == "skipped" and "kaboom" in res.outcomes[0].why
    assert res.outcomes[1].status == "rolled_back" and "silent" in res.outcomes[1].why
    np.testing.assert_array_equal(res.audio.samples, mix.samples)


def test_peaks_over_full_scale_are_trimmed_without_master_and_left_with_it(mix):
    ex = Executor(reg(eq=(_gain, Stage.TONE), master=(_gain, Stage.MASTER)))
    res = ex.run(mix, [S("eq", {"gain_db": 9.0, "amount": 1.0})])  # 0.5 * +9 dB ≈ +3 dBFS peak
    assert res.outcomes[0].status == "trimmed"
    assert np.abs(res.audio.samples).max() <= 10 ** (-1.4 / 20)
    res2 = ex.run(
        mix, [S("eq", {"gain_db": 9.0, "amount": 1.0}), S("master", {"gain_db": -6, "amount": 1.0})]
    )
    assert [o.status for o in res2.outcomes] == ["applied", "applied"]
    res3 = ex.run(mix, [S("eq", {"gain_db": 20.0, "amount": 1.0})])  # far too loud: refuse it
    assert res3.outcomes[0].status == "rolled_back"


def test_unavailable_tool_is_skipped_with_reason(mix):
    ex = Executor(Registry())
    res = ex.run(mix, [S("restore")] if not Registry()["restore"].available else [S("not_a_tool")])
    assert res.outcomes[0].status == "skipped" and res.outcomes[0].why


def test_stem_steps_run_on_the_stem_and_sum_back(mix):
    ex = Executor(reg(separate=(_split, Stage.SEPARATE), eq=(_gain, Stage.TONE)))
    res = ex.run(mix, [S("eq", {"gain_db": -40.0, "amount": 1.0}, target="vocals")])
    assert res.outcomes[0].status == "applied"
    # the "vocals" stem (a quarter of the mix) went down 40 dB; the rest is untouched
    np.testing.assert_allclose(res.audio.samples, mix.samples * (0.75 + 0.25 * 0.01), atol=1e-5)


def test_events_stream_per_step(mix):
    events = []
    ex = Executor(reg(eq=(_gain, Stage.TONE)))
    ex.run(mix, [S("eq"), S("eq", {"gain_db": -1})], emit=events.append)
    kinds = [(e["event"], e["index"]) for e in events]
    assert kinds == [("step_started", 0), ("step_finished", 0), ("step_started", 1), ("step_finished", 1)]


def test_a_space_effect_at_half_amount_is_no_collapse_but_a_scrambled_one_is(mix):
    """Reverb at amount 0.5 ("double the reverb") blends wet and dry with equal power: its SI-SDR against the
    input sits near 0 dB by design and the step stays. A space step that replaces the signal is still undone."""
    from tools.registry import get_tool

    real = Executor(Registry({"reverb": get_tool("reverb")}))
    res = real.run(mix, [S("reverb", {"amount": 0.5})], emit=lambda e: None)
    assert res.outcomes[0].status == "applied", res.outcomes[0].why
    assert res.outcomes[0].measures["si_sdr_vs_input_db"] < 3.0  # far from the input, as asked
    bad = Executor(reg(reverb=(_scramble, Stage.SPACE))).run(
        mix, [S("reverb", {"amount": 0.5})], emit=lambda e: None
    )
    assert bad.outcomes[0].status == "rolled_back"
