"""The service every surface calls: import audio, run a conversation turn, export.

The CLI, the HTTP API and the chat UI all go through `Mixpilot`, so there is one
implementation of the pipeline. Build it once at start-up and close it at shutdown.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.graph import Deps, build_graph
from memory.storage import AudioStore, LocalAudioStore
from tools.audio import Audio, load
from tools.registry import Registry, default_registry

#: seconds of the loudest part that `Mixpilot.preview` renders
PREVIEW_S = 15.0


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
    turn_id: str | None = (
        None  # what `Mixpilot.feedback` rates (None when memory is off or nothing was applied)
    )
    #: the turn contract (ARCHITECTURE.md): `answer` for answer/clarify/none turns, the diagnosis findings,
    #: the plan a confirming next turn ("yes", "do it") runs, and a platform check when one was asked about
    answer: str | None = None
    findings: list[dict[str, Any]] = field(default_factory=list)
    suggested_steps: list[dict[str, Any]] = field(default_factory=list)
    checks: dict[str, Any] | None = None

    @property
    def skipped(self) -> list[dict[str, Any]]:
        return [s for s in self.steps if s["status"] in ("skipped", "rolled_back")]

    def to_dict(self) -> dict[str, Any]:
        return {
            "thread_id": self.thread_id,
            "kind": self.kind,
            "output_id": self.output_id,
            "plan": self.plan,
            "steps": self.steps,
            "metrics_before": self.metrics_before,
            "metrics_after": self.metrics_after,
            "explanation": self.explanation,
            "notes": self.notes,
            "turn_id": self.turn_id,
            "answer": self.answer,
            "findings": self.findings,
            "suggested_steps": self.suggested_steps,
            "checks": self.checks,
        }


def sqlite_checkpointer(path: Path):
    from langgraph.checkpoint.sqlite import SqliteSaver

    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False)
    saver = SqliteSaver(conn)
    saver.setup()
    return saver, conn


def postgres_checkpointer(conninfo: str):
    """LangGraph's PostgresSaver on a small psycopg pool, for a libpq URL (`libpq_url`).

    Threads then live in the same database as the memory, so API processes and arq workers on
    several machines continue the same conversations. `setup()` runs LangGraph's own idempotent
    migrations (its ``checkpoint_migrations`` table), not Alembic's.
    """
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool

    pool = ConnectionPool(
        conninfo,
        min_size=1,
        max_size=4,
        open=True,
        timeout=10,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
    )
    try:
        saver = PostgresSaver(pool)  # type: ignore[arg-type]  # rows are dicts (row_factory=dict_row above)
        saver.setup()
    except Exception:
        pool.close()
        raise
    return saver, pool


def libpq_url(url: str | None) -> str | None:
    """The libpq form (``postgresql://u@h:5432/db``) of a PostgreSQL URL with any SQLAlchemy driver
    (``postgresql+asyncpg://…``); None for anything else (SQLite, no URL)."""
    if not url:
        return None
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if u.get_backend_name() not in ("postgresql", "postgres"):
        return None
    return u.set(drivername="postgresql").render_as_string(hide_password=False)


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
        threads_url: str | None = None,
        store: AudioStore | None = None,
    ) -> None:
        """`threads_url`: a PostgreSQL URL keeps conversation threads there (`postgres_checkpointer`);
        otherwise they live in ``threads.sqlite`` in the data dir. `store`: the audio store to share
        (with the memory agent, say); by default one in ``audio/`` of the data dir."""
        self.data_dir = Path(data_dir)
        self.store = store if store is not None else LocalAudioStore(self.data_dir / "audio")
        self.registry = registry or default_registry()
        self._conn = None
        pg = libpq_url(threads_url) if checkpointer is None else None
        if pg:
            checkpointer, self._conn = postgres_checkpointer(pg)
        elif checkpointer is None:
            checkpointer, self._conn = sqlite_checkpointer(self.data_dir / "threads.sqlite")
        self.checkpointer = checkpointer
        self.graph = build_graph(checkpointer)
        self.memory, self.cache, self.llm = memory, cache, llm
        self.max_duration_s = max_duration_s

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        for resource in (self.memory, self.cache):
            if resource is not None and hasattr(resource, "close"):
                resource.close()

    def __enter__(self) -> Mixpilot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- audio in and out

    def import_audio(self, source: str | Path | Audio) -> str:
        audio = (
            source
            if isinstance(source, Audio)
            else load(source, max_duration_s=self.max_duration_s, require_signal=True)
        )
        from tools.dsp import warm_compiled

        warm_compiled()  # audio is here: a master may follow (its compiled passes load meanwhile)
        return self.store.put(audio)

    def audio(self, version_id: str) -> Audio:
        return self.store.get(version_id)

    def export(
        self,
        version_id: str,
        path: str | Path,
        *,
        format: str | None = None,
        bit_depth: int | None = None,
        mp3_bitrate_kbps: int = 320,
    ) -> Path:
        """Write a stored version; its dither is seeded by the version id (same download, same bytes)."""
        return self.store.export(
            version_id, path, format=format, bit_depth=bit_depth, mp3_bitrate_kbps=mp3_bitrate_kbps
        )

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
        deps = Deps(
            store=self.store,
            registry=self.registry,
            memory=self.memory,
            cache=self.cache,
            user_id=user_id,
            llm=self.llm,
        )
        payload: dict[str, Any] = {
            "request": request,
            "audio_id": audio_id,
            "inputs": inputs or {},
            "plan_only": plan_only,
        }
        final: dict[str, Any] = {}
        for mode, chunk in self.graph.stream(payload, config, context=deps, stream_mode=["custom", "values"]):
            if mode == "custom":
                if on_event is not None:
                    on_event(chunk)
            else:
                final = chunk
        state = self.graph.get_state(config).values
        turn = (state.get("turns") or [{}])[-1]
        result = TurnResult(
            thread_id=thread_id,
            kind=turn.get("kind", final.get("kind", "")),
            output_id=turn.get("result_id") or None,
            plan=turn.get("plan") or {},
            steps=turn.get("outcomes") or [],
            metrics_before=turn.get("metrics_before") or {},
            metrics_after=turn.get("metrics_after") or {},
            explanation=turn.get("explanation", ""),
            notes=list(state.get("notes") or []),
            answer=turn.get("answer"),
            findings=list(turn.get("findings") or []),
            suggested_steps=list(turn.get("suggested_steps") or []),
            checks=turn.get("checks"),
        )
        if (
            self.memory is not None
            and result.kind in ("process", "adjust")
            and result.output_id
            and any(o.get("status") in ("applied", "trimmed") for o in result.steps)
        ):
            try:
                result.turn_id = self.memory.record_turn(
                    user_id=user_id,
                    thread_id=thread_id,
                    audio_id=turn.get("source_id") or None,
                    audio=self.store.get(turn["source_id"]),
                    analysis=result.metrics_before,
                    plan=result.plan,
                    outcomes=result.steps,
                    result_id=result.output_id,
                    request=request,
                    inputs=inputs,
                )
            except Exception as exc:  # memory trouble never fails a turn
                result.notes.append(f"memory unavailable: this turn was not remembered ({exc})")
        return result

    def feedback(
        self,
        turn_id: str,
        *,
        rating: int,
        aspects: dict[str, int] | None = None,
        comment: str | None = None,
        liked: bool | None = None,
        user_id: str | None = None,
    ) -> list[str]:
        """Rate a turn (1–5, optional aspect ratings 1–5, comment, liked); `turn_id` from `TurnResult`.

        Returns what the comment was understood to ask ("lower brightness"; see `MemoryAgent.feedback`)."""
        if self.memory is None:
            raise RuntimeError("memory is not configured: feedback cannot be stored")
        return self.memory.feedback(
            user_id=user_id, turn_id=turn_id, rating=rating, aspects=aspects, comment=comment, liked=liked
        )

    def preview(
        self, request: str, *, audio_id: str, seconds: float = PREVIEW_S, user_id: str | None = None
    ) -> dict[str, Any]:
        """`request`'s plan rendered on the loudest `seconds` of a stored version: something to listen to
        in a moment, before (or instead of) the full render.

        The plan is made for the whole recording (a plan-only turn on a new thread: analysis and diagnosis
        of the whole file), and a `master` step aims the excerpt at the gain the whole file needs: its
        target moves by the excerpt's loudness over the whole file's. Returns ``preview_id`` and
        ``source_excerpt_id`` (stored versions), ``start_s``, ``seconds``, ``plan``, ``steps`` (outcomes)
        and ``match_gain_db``: the gain that plays the preview at the source excerpt's loudness, so that
        louder never passes for better.
        """
        import math

        from agents.executor import Executor
        from agents.plan import Step
        from tools.analysis import is_speech
        from tools.loudness import integrated_lufs, k_weighted_blocks
        from tools.master import MasterParams, resolve_targets

        audio = self.audio(audio_id)
        blocks = k_weighted_blocks(audio)
        per_hop = blocks.hop // blocks.chunk
        window = max(1, int(round(seconds * 10)))  # 100 ms hops
        power = blocks.window_mean_power(window, per_hop)
        start = int(power.argmax()) * blocks.hop if power.size else 0
        length = min(audio.frames, int(round(seconds * audio.sample_rate)))
        start = min(start, audio.frames - length)
        excerpt = audio.with_samples(audio.samples[:, start : start + length])
        planned = self.turn(request, audio_id=audio_id, plan_only=True, user_id=user_id)
        # the plan-only turn measured the whole file already (its analysis, as the planner saw it)
        analysis = dict(planned.metrics_before or {}) or self.analysis(audio_id)
        whole, part = analysis.get("integrated_lufs"), integrated_lufs(excerpt)
        offset = part - whole if isinstance(whole, (int, float)) and math.isfinite(part) else 0.0
        steps = []
        for raw in planned.plan.get("steps") or []:
            step = Step.model_validate(raw)
            if step.tool == "master":
                target, ceiling = resolve_targets(MasterParams.model_validate(step.params))
                params = {k: v for k, v in step.params.items() if k != "platform"}
                params.update(target_lufs=min(max(target + offset, -30.0), -6.0), true_peak_dbtp=ceiling)
                step = step.model_copy(update={"params": params})
            steps.append(step)
        result = Executor(self.registry).run(
            excerpt, steps, is_speech=is_speech(analysis), cache=self.cache, analysis=analysis
        )
        from tools.dsp import loudness_match_db

        match = loudness_match_db(part, integrated_lufs(result.audio))
        return {
            "preview_id": self.store.put(result.audio),
            "source_excerpt_id": self.store.put(excerpt),
            "start_s": round(start / audio.sample_rate, 2),
            "seconds": round(length / audio.sample_rate, 2),
            "plan": planned.plan,
            "steps": [o.to_dict() for o in result.outcomes],
            "match_gain_db": round(match, 2),
        }

    def history(self, thread_id: str) -> list[dict[str, Any]]:
        state = self.graph.get_state({"configurable": {"thread_id": thread_id}}).values
        return list(state.get("turns") or [])

    def thread_context(self, thread_id: str) -> dict[str, Any] | None:
        """The last processing plan and the current version of a thread, or None if unknown."""
        state = self.graph.get_state({"configurable": {"thread_id": thread_id}}).values
        if not state:
            return None
        previous = None
        for t in reversed(state.get("turns") or []):
            if t.get("kind") in ("process", "adjust") and t.get("plan"):
                previous = t["plan"]
                break
        timeline = state.get("timeline") or []
        return {
            "previous_plan": previous,
            "current_id": timeline[-1] if timeline else None,
            "original_id": state.get("original_id"),
        }

    def thread_ids(self) -> list[str]:
        """Every conversation thread the checkpointer holds (one SQL query on the SQLite and Postgres savers)."""
        saver = self.checkpointer
        sql = "SELECT DISTINCT thread_id FROM checkpoints"
        conn = getattr(saver, "conn", None)
        if isinstance(conn, sqlite3.Connection):  # SqliteSaver
            with saver.cursor(transaction=False) as cur:
                cur.execute(sql)
                return sorted(str(r[0]) for r in cur.fetchall())
        if hasattr(saver, "_cursor"):  # PostgresSaver (rows are dicts: see postgres_checkpointer)
            with saver._cursor() as cur:
                cur.execute(sql)
                return sorted(str(r["thread_id"] if isinstance(r, dict) else r[0]) for r in cur.fetchall())
        return sorted({str(c.config["configurable"]["thread_id"]) for c in saver.list(None)})

    def referenced_versions(self, among: Collection[str] | None = None) -> set[str]:
        """The stored versions a conversation can still reach (`memory.retention`): each thread's original,
        timeline and inputs, and the source and result of every turn (undo and an earlier version picked).

        With `among`, only those of `among` (and the walk stops once all of them are found)."""
        wanted = None if among is None else set(among)
        found: set[str] = set()
        for thread_id in self.thread_ids():
            if wanted is not None and wanted <= found:
                break
            found |= self.thread_versions(thread_id)
        return found if wanted is None else found & wanted

    def thread_versions(self, thread_id: str) -> set[str]:
        """The stored versions one thread reaches (see `referenced_versions`); empty for an unknown thread."""
        state = self.graph.get_state({"configurable": {"thread_id": thread_id}}).values
        found: set[str] = {v for v in state.get("timeline") or [] if v}
        found.update(str(v) for v in (state.get("inputs") or {}).values() if v)
        if state.get("original_id"):
            found.add(state["original_id"])
        for turn in state.get("turns") or []:
            found.update(turn[k] for k in ("source_id", "result_id") if turn.get(k))
        return found

    def last_plan(self, thread_id: str) -> dict[str, Any] | None:
        for t in reversed(self.history(thread_id)):
            if t.get("plan"):
                return t["plan"]
        return None

    # ----------------------------------------------------------------- measurements (every surface renders these)

    def analysis(self, version_id: str) -> dict[str, Any]:
        """`tools.analysis.analyze` of a stored version as a dict, cached by content id (the graph's own entry)."""
        from agents.measure import analysis_of

        return analysis_of(self.store, self.cache, version_id)

    def diagnose(self, version_id: str, *, genre: str | None = None) -> dict[str, Any]:
        """`tools.diagnose.diagnose` of a stored version: ``{findings, facts}``, cached by content id
        (and genre, which sets the tonal target of music)."""
        from agents.measure import diagnosis_of

        return diagnosis_of(self.store, self.cache, version_id, genre=genre)

    def is_speech(self, version_id: str) -> bool:
        """Whether a stored version reads as speech (`tools.analysis.SPEECH_THRESHOLD` on its analysis)."""
        from tools.analysis import is_speech

        return is_speech(self.analysis(version_id))

    def quality(
        self,
        version_id: str,
        reference_id: str | None = None,
        *,
        degraded_id: str | None = None,
        speech: bool | None = None,
    ) -> dict[str, float | None]:
        """Quality metrics of a stored version (`tools.metrics.evaluate`).

        Speech (`speech` None: decided from the analysis) gets DNSMOS (non-intrusive: no reference needed).
        With a clean `reference_id` of the same material: SI-SDR, SDR, LSD, for speech PESQ and STOI, and
        the composite score (relative to `degraded_id`, the input, when given). A metric that cannot run
        here (its package missing) is None; the reference and input are resampled to the version's rate.
        """
        from tools import metrics

        out = self.audio(version_id)
        if speech is None:
            speech = self.is_speech(version_id)

        def at_rate(vid: str | None):
            if not vid:
                return None
            a = self.audio(vid)
            return a.resample(out.sample_rate) if a.sample_rate != out.sample_rate else a

        ref = at_rate(reference_id)
        degraded = at_rate(degraded_id) if ref is not None else None
        return metrics.evaluate(out, ref, degraded=degraded, dnsmos=speech, speech=speech)

    def stems_available(self) -> tuple[bool, str]:
        """(available, why not) for `stems` (the registry's `separate` tool)."""
        if "separate" not in self.registry:
            return False, "the separate tool is not registered"
        return self.registry["separate"].availability()

    def stems(self, version_id: str, *, stems: list[str] | None = None) -> dict[str, str]:
        """Split a stored version into stems (`separate`): stem name → the stored stem's version id.

        Separations are cached through the service cache; raises ValueError when `separate` is
        unavailable here (the message says why)."""
        from tools.registry import ToolContext

        ok, why = self.stems_available()
        if not ok:
            raise ValueError(f"stems need the separate tool, which is unavailable here: {why}")
        params = {"stems": list(stems)} if stems else {}
        res = self.registry["separate"](self.audio(version_id), params, ToolContext(cache=self.cache))
        found = {name: a for name, a in (res.extra or {}).items() if isinstance(a, Audio)}
        if not found:
            raise ValueError("separation returned no stems")
        return {name: self.store.put(a) for name, a in sorted(found.items())}
