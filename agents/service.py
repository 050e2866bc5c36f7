"""The service every surface calls: import audio, run a conversation turn, export.

The CLI, the HTTP API and the chat UI all go through `Mixpilot`, so there is one
implementation of the pipeline. Build it once at start-up and close it at shutdown.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.graph import Deps, build_graph
from memory.storage import AudioStore
from tools.audio import Audio, load, save
from tools.registry import Registry, default_registry


@dataclass
class TurnResult:
    """What one turn produced: the output version, the plan as run, outcomes, metrics, explanation."""

    thread_id: str
    kind: str
    output_id: str | None
    plan: dict[str, Any]
    steps: list[dict[str, Any]]
    metrics_before: dict[str, Any]
    metrics_after: dict[str, Any]
    explanation: str
    notes: list[str] = field(default_factory=list)

    @property
    def skipped(self) -> list[dict[str, Any]]:
        return [s for s in self.steps if s["status"] in ("skipped", "rolled_back")]

    def to_dict(self) -> dict[str, Any]:
        return {
            "thread_id": self.thread_id, "kind": self.kind, "output_id": self.output_id, "plan": self.plan,
            "steps": self.steps, "metrics_before": self.metrics_before, "metrics_after": self.metrics_after,
            "explanation": self.explanation, "notes": self.notes,
        }


def sqlite_checkpointer(path: Path):
    from langgraph.checkpoint.sqlite import SqliteSaver

    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False)
    saver = SqliteSaver(conn)
    saver.setup()
    return saver, conn


class Mixpilot:
    def __init__(
        self,
        *,
        data_dir: str | Path,
        registry: Registry | None = None,
        checkpointer: Any = None,
        memory: Any = None,
        cache: Any = None,
        llm: Any = None,
        max_duration_s: float | None = 30 * 60.0,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.store = AudioStore(self.data_dir / "audio")
        self.registry = registry or default_registry()
        self._conn = None
        if checkpointer is None:
            checkpointer, self._conn = sqlite_checkpointer(self.data_dir / "threads.sqlite")
        self.checkpointer = checkpointer
        self.graph = build_graph(checkpointer)
        self.memory, self.cache, self.llm = memory, cache, llm
        self.max_duration_s = max_duration_s

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Mixpilot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- audio in and out

    def import_audio(self, source: str | Path | Audio) -> str:
        audio = source if isinstance(source, Audio) else load(source, max_duration_s=self.max_duration_s,
                                                              require_signal=True)
        return self.store.put(audio)

    def audio(self, version_id: str) -> Audio:
        return self.store.get(version_id)

    def export(self, version_id: str, path: str | Path, *, format: str | None = None, bit_depth: int | None = None,
               mp3_bitrate_kbps: int = 320) -> Path:
        return save(self.store.get(version_id), path, format=format, bit_depth=bit_depth,
                    mp3_bitrate_kbps=mp3_bitrate_kbps)

    # ----------------------------------------------------------------- conversation

    def new_thread_id(self) -> str:
        return uuid.uuid4().hex

    def turn(
        self,
        request: str,
        *,
        thread_id: str | None = None,
        audio_id: str | None = None,
        inputs: dict[str, str] | None = None,
        plan_only: bool = False,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        user_id: str | None = None,
    ) -> TurnResult:
        """Run one turn of a conversation; `on_event` gets progress events as they happen."""
        thread_id = thread_id or self.new_thread_id()
        config = {"configurable": {"thread_id": thread_id}}
        deps = Deps(store=self.store, registry=self.registry, memory=self.memory, cache=self.cache,
                    user_id=user_id, llm=self.llm)
        payload: dict[str, Any] = {"request": request, "audio_id": audio_id, "inputs": inputs or {},
                                   "plan_only": plan_only}
        final: dict[str, Any] = {}
        for mode, chunk in self.graph.stream(payload, config, context=deps, stream_mode=["custom", "values"]):
            if mode == "custom":
                if on_event is not None:
                    on_event(chunk)
            else:
                final = chunk
        state = self.graph.get_state(config).values
        turn = (state.get("turns") or [{}])[-1]
        return TurnResult(
            thread_id=thread_id,
            kind=turn.get("kind", final.get("kind", "")),
            output_id=turn.get("result_id") or None,
            plan=turn.get("plan") or {},
            steps=turn.get("outcomes") or [],
            metrics_before=turn.get("metrics_before") or {},
            metrics_after=turn.get("metrics_after") or {},
            explanation=turn.get("explanation", ""),
            notes=list(state.get("notes") or []),
        )

    def history(self, thread_id: str) -> list[dict[str, Any]]:
        state = self.graph.get_state({"configurable": {"thread_id": thread_id}}).values
        return list(state.get("turns") or [])

    def last_plan(self, thread_id: str) -> dict[str, Any] | None:
        for t in reversed(self.history(thread_id)):
            if t.get("plan"):
                return t["plan"]
        return None
