"""Graph state. Audio lives in the `AudioStore`; the state holds version ids only."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict


class Turn(TypedDict, total=False):
    request: str
    kind: str  # "process" | "undo" | "reset" | "adjust" | "plan_only" | "none"
    source_id: str  # what the turn's plan ran on
    result_id: str  # what the turn left as current
    plan: dict[str, Any]
    outcomes: list[dict[str, Any]]
    metrics_before: dict[str, Any]
    metrics_after: dict[str, Any]
    explanation: str
    answer: str | None  # answer / clarify / none turns: what mixpilot said
    findings: list[dict[str, Any]]
    suggested_steps: list[dict[str, Any]]
    checks: dict[str, Any] | None


class InputState(TypedDict, total=False):
    request: str
    audio_id: str | None  # a newly attached recording starts the thread's timeline again
    inputs: dict[str, str]  # further named inputs (voice, reference, music) by version id
    plan_only: bool


class State(InputState, total=False):
    original_id: str | None
    timeline: list[str]  # version ids; the last is current; undo pops
    turns: Annotated[list[Turn], operator.add]
    suggestion: list[dict[str, Any]]  # steps the last turn suggested; a confirming turn runs them
    # per-turn scratch
    kind: str
    source_id: str | None
    analysis: dict[str, Any]
    diagnosis: dict[str, Any] | None
    recommendation: dict[str, Any] | None
    plan: dict[str, Any]
    outcomes: list[dict[str, Any]]
    result_id: str | None
    metrics_after: dict[str, Any]
    explanation: str
    notes: list[str]


class OutputState(TypedDict, total=False):
    result_id: str | None
    plan: dict[str, Any]
    outcomes: list[dict[str, Any]]
    analysis: dict[str, Any]
    metrics_after: dict[str, Any]
    explanation: str
    notes: list[str]
    kind: str
