"""Every registered tool under the same invariants, pedalboard-style (its tests/test_fuzz.py).

For each tool in `tools.registry.default_registry()`, at several sample rates and channel counts:

- the caller's `Audio` (and every ``ctx.inputs`` entry) is not changed;
- the output is float32, finite, at the input's sample rate, as long as the input, with the
  input's channel count (unless the tool documents otherwise: `CHANNEL_RULES`);
- silence in gives silence out (or, for tools that add a second input, a finite result), or a
  clear `ToolError` / `ValueError`;
- every numeric parameter's bounds (min and max of its pydantic ``Params`` field) and every choice
  of a ``Literal`` or ``bool`` parameter are accepted, and the output keeps the invariants.

Tools that cannot run here (missing weights or packages) are skipped with the reason the
registry gives. Clips are short (0.6 s) so the whole file stays fast.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Callable
from typing import Any

import annotated_types
import numpy as np
import pytest

from tools.audio import Audio
from tools.registry import ToolContext, ToolError, ToolResult, ToolSpec, default_registry

SECONDS = 0.6
NAMES = list(default_registry())

#: tools whose output channel count may differ from the input's, and when (documented in the tool)
CHANNEL_RULES: dict[str, Callable[[dict[str, Any], int], int]] = {
    # delay: ``ping_pong`` bounces between two channels, so a mono input comes back stereo
    "delay": lambda params, ch: 2 if params.get("style") == "ping_pong" and ch == 1 else ch,
}


def _spec(name: str) -> ToolSpec:
    spec = default_registry()[name]
    ok, why = spec.availability()
    if not ok:
        pytest.skip(f"{name} cannot run here: {why}")
    return spec


def _signal(sr: int, channels: int, seed: int = 0) -> np.ndarray:
    """A tone with a little noise and an onset: something every tool has work to do on."""
    n = int(SECONDS * sr)
    t = np.arange(n) / sr
    rng = np.random.default_rng(seed)
    tone = 0.25 * np.sin(2 * np.pi * 220.0 * t) * np.minimum(1.0, t / 0.05)
    x = tone[None, :] + 0.03 * rng.standard_normal((channels, n))
    if channels > 1:
        x[1] = np.roll(x[1], 11) * 0.9  # the channels differ (stereo tools have something to do)
    return x.astype(np.float32)


def _context(spec: ToolSpec, sr: int, channels: int) -> ToolContext:
    """The second inputs a tool needs (a voice, a reference), at the same rate and channel count."""
    n = int(SECONDS * sr)
    t = np.arange(n) / sr
    voice = (0.2 * np.sin(2 * np.pi * 440.0 * t) * (np.sin(2 * np.pi * 3.0 * t) > 0)).astype(np.float32)
    other = np.repeat(voice[None, :], channels, axis=0)
    return ToolContext(inputs={key: Audio(other, sr) for key in spec.needs_inputs})


def _check_output(name: str, result: ToolResult, audio: Audio, params: dict[str, Any]) -> None:
    out = result.audio
    assert isinstance(out, Audio), f"{name}: the result is not an Audio"
    assert out.samples.dtype == np.float32, f"{name}: output dtype {out.samples.dtype}"
    assert out.sample_rate == audio.sample_rate, (
        f"{name}: sample rate {audio.sample_rate} → {out.sample_rate}"
    )
    assert np.isfinite(out.samples).all(), f"{name}: non-finite samples in the output"
    want = CHANNEL_RULES.get(name, lambda p, ch: ch)(params, audio.channels)
    assert out.channels == want, (
        f"{name}: {audio.channels} channel(s) in, {out.channels} out (expected {want})"
    )
    assert out.frames == audio.frames, f"{name}: {audio.frames} frames in, {out.frames} out"
    for key, stem in result.extra.items():
        assert stem.samples.dtype == np.float32 and stem.sample_rate == audio.sample_rate, (
            f"{name}: extra {key}"
        )
        assert np.isfinite(stem.samples).all(), f"{name}: extra {key} is not finite"
        assert stem.samples.shape == audio.samples.shape, f"{name}: extra {key} shape {stem.samples.shape}"


def _run_unchanged(spec: ToolSpec, audio: Audio, params: dict[str, Any], ctx: ToolContext) -> ToolResult:
    """Run the tool and assert it left its input and the context's inputs alone."""
    before = audio.samples.copy()
    before_inputs = {k: v.samples.copy() for k, v in ctx.inputs.items()}
    result = spec(audio, params, ctx)
    np.testing.assert_array_equal(audio.samples, before, err_msg=f"{spec.name} changed its input")
    for k, v in ctx.inputs.items():
        np.testing.assert_array_equal(
            v.samples, before_inputs[k], err_msg=f"{spec.name} changed ctx.inputs[{k!r}]"
        )
    return result


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("sr", [22050, 48000])
@pytest.mark.parametrize("name", NAMES)
def test_defaults_keep_the_invariants(name: str, sr: int, channels: int) -> None:
    spec = _spec(name)
    audio = Audio(_signal(sr, channels), sr)
    result = _run_unchanged(spec, audio, {}, _context(spec, sr, channels))
    _check_output(name, result, audio, {})
    assert all(isinstance(w, str) and w for w in result.warnings), f"{name}: empty or non-text warning"


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("sr", [22050, 48000])
@pytest.mark.parametrize("name", NAMES)
def test_silence_in_gives_silence_or_a_clear_error(name: str, sr: int, channels: int) -> None:
    spec = _spec(name)
    audio = Audio(np.zeros((channels, int(SECONDS * sr)), np.float32), sr)
    try:
        result = _run_unchanged(spec, audio, {}, _context(spec, sr, channels))
    except (ToolError, ValueError) as exc:
        assert str(exc).strip(), f"{name}: an error on silence must say why"
        return
    _check_output(name, result, audio, {})
    # a mix of silence and a voice is the voice; on its own, nothing comes from nothing
    if not spec.needs_inputs:
        peak = float(np.abs(result.audio.samples).max())
        assert peak <= 1e-3, f"{name}: silence in, peak {20 * math.log10(peak):.1f} dBFS out"


def _choices(annotation: Any) -> list[Any]:
    """The values of a Literal or bool parameter (inside Optional too); [] for anything else."""
    if annotation is bool:
        return [False, True]
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return list(typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return [v for arg in typing.get_args(annotation) if arg is not type(None) for v in _choices(arg)]
    return []


def _bound_cases(spec: ToolSpec) -> list[tuple[str, Any]]:
    """(param, value) for every numeric bound and every Literal/bool choice of the tool's Params."""
    cases: list[tuple[str, Any]] = []
    for key, field in spec.params.model_fields.items():
        for meta in field.metadata:
            if isinstance(meta, annotated_types.Ge):
                cases.append((key, meta.ge))
            elif isinstance(meta, annotated_types.Le):
                cases.append((key, meta.le))
            elif isinstance(meta, annotated_types.Gt):  # exclusive: just inside
                lo = float(meta.gt)  # type: ignore[arg-type]
                cases.append((key, lo + 1e-3 * max(1.0, abs(lo))))
            elif isinstance(meta, annotated_types.Lt):
                hi = float(meta.lt)  # type: ignore[arg-type]
                cases.append((key, hi - 1e-3 * max(1.0, abs(hi))))
        cases.extend((key, value) for value in _choices(field.annotation))
    return cases


@pytest.mark.parametrize("name", NAMES)
def test_every_param_bound_and_choice_is_accepted(name: str) -> None:
    spec = _spec(name)
    sr, channels = 22050, 2
    audio = Audio(_signal(sr, channels, seed=1), sr)
    cases = _bound_cases(spec)
    if not cases:
        pytest.skip(f"{name} has no bounded or enumerated parameters")
    for key, value in cases:
        params = {key: value}
        spec.parse_params(params)  # the bound itself validates
        try:
            result = _run_unchanged(spec, audio, params, _context(spec, sr, channels))
        except (ToolError, ValueError) as exc:
            # a choice that needs a companion parameter (dynamic_eq target='custom' needs freq_hz) or something
            # missing here (separate model='demucs' without its weights) must say so
            assert isinstance(value, str), f"{name}: {key}={value!r} (a bound) was refused: {exc}"
            assert str(exc).strip(), f"{name}: {key}={value!r} refused without a reason"
            continue
        _check_output(name, result, audio, params)


def test_every_canonical_tool_is_covered() -> None:
    """The parametrisation above is the registry: a new tool is fuzzed without touching this file."""
    assert len(NAMES) == len(default_registry()) >= 21
