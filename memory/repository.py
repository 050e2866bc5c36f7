"""Memory's store: turns, ratings, references and audio vectors, through `memory.db` and the vector store.

Sync methods for sync callers (the graph, the API's worker threads); the SQL layer is SQLAlchemy
async, so the repository owns one `memory.bridge.LoopThread` and runs every database call on it:
the async engine and its pool always live on that one loop, whatever thread calls in. Chroma is
called from the caller's thread.

Durability: a turn's SQL rows are committed first (its vector row with ``indexed = False``), then
the vector goes to Chroma and the row is marked indexed. A crash or a Chroma outage in between
leaves ``indexed = False``; `repair` (run by the agent at every start) re-inserts those vectors.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from sqlalchemy.ext.asyncio import AsyncEngine

from memory import db
from memory import features as F
from memory.bridge import LoopThread

log = logging.getLogger("mixpilot.memory")
T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class RatedMatch:
    """A rated turn whose input is similar to the query: what the estimator learns from."""

    similarity: float
    own: bool
    score: float
    params: dict[str, dict[str, Any]]
    genre: str | None
    aspects: dict[str, float]
    #: the owner's own comments on that turn, oldest first (others' comments are never read)
    comments: tuple[str, ...]
    same_type: bool


@dataclass(frozen=True, kw_only=True)
class TurnRecord:
    """One turn to store: the configuration applied and, when known, the input's vector."""

    owner: str
    params: dict[str, dict[str, Any]]
    genre: str | None
    kind: str
    content_type: str
    thread_id: str | None = None
    audio_id: str | None = None
    result_id: str | None = None
    request: str | None = None
    plan: dict[str, Any] | None = None
    job_id: str | None = None
    vector: np.ndarray | None = None
    #: ``{audio_id, name, analysis, spectrum}`` of a reference track to remember, or None
    reference: dict[str, Any] | None = None


class MemoryRepository:
    """SQL (through `memory.db`) and vector-store orchestration. Close at shutdown."""

    def __init__(self, *, database_url: str, vectors: Any = None) -> None:
        self.database_url = db.normalize_url(database_url)
        self.vectors = vectors
        self._loop = LoopThread(name="mixpilot-memory")

        async def _init() -> AsyncEngine:  # the engine and its pool belong to the loop they are made on
            return db.make_engine(self.database_url)

        engine = self._loop.run(_init())
        self._engine: AsyncEngine | None = engine
        self.sessions = db.make_sessionmaker(engine)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 60.0) -> T:
        """Run a coroutine on the repository's loop (where its engine lives) and wait for it."""
        return self._loop.run(coro, timeout)

    def close(self) -> None:
        if self._engine is not None:
            try:
                self._loop.run(self._engine.dispose(), timeout=10)
            except Exception:  # closing anyway
                pass
            self._engine = None
        self._loop.close()

    # ------------------------------------------------------------------ writes

    def record_turn(self, turn: TurnRecord) -> str:
        """Store the configuration (and vector, and reference) of one turn; returns the turn id."""
        owner = turn.owner

        async def _store() -> tuple[str, str | None]:
            async with self.sessions() as s, s.begin():
                await db.ensure_user(s, user_id=owner)
                if turn.thread_id:
                    try:
                        async with s.begin_nested():
                            await db.ensure_conversation(s, owner_id=owner, thread_id=turn.thread_id)
                    except PermissionError:
                        pass
                cfg = await db.add_configuration(
                    s,
                    owner_id=owner,
                    params=turn.params,
                    thread_id=turn.thread_id,
                    audio_id=turn.audio_id,
                    result_id=turn.result_id,
                    genre=turn.genre,
                    type=turn.kind,
                    request=turn.request,
                    plan=turn.plan,
                )
                vid = None
                if turn.vector is not None:
                    row = await db.add_feature_vector(
                        s,
                        owner_id=owner,
                        vector=turn.vector.tolist(),
                        feature_version=F.FEATURE_VERSION,
                        audio_id=turn.audio_id,
                        configuration_id=cfg.id,
                        content_type=turn.content_type,
                        feature_type=F.FEATURE_TYPE,
                    )
                    vid = row.id
                if turn.job_id:
                    await db.update_job(s, owner_id=owner, job_id=turn.job_id, turn_id=cfg.id)
                if turn.reference is not None:
                    await db.add_reference_track(s, owner_id=owner, **turn.reference, genre=turn.genre)
                return cfg.id, vid

        config_id, vector_id = self.run(_store())
        if vector_id is not None:
            self.index(
                [
                    (
                        vector_id,
                        turn.vector,
                        {
                            "owner_id": owner,
                            "configuration_id": config_id,
                            "audio_id": turn.audio_id,
                            "content_type": turn.content_type,
                            "feature_version": F.FEATURE_VERSION,
                        },
                    )
                ]
            )
        return config_id

    def index(self, items: list[tuple[str, Any, dict[str, Any]]]) -> bool:
        """Chroma insert, then mark the SQL rows indexed. False (and rows left for `repair`) on failure."""
        if self.vectors is None or not items:
            return False
        from memory.vectors import VectorItem

        try:
            self.vectors.add([VectorItem(id=i, vector=v, metadata=m) for i, v, m in items])
        except Exception as exc:  # vector store down: SQL has it, repair re-inserts
            log.warning(
                "vector store unavailable (%s); %d vector(s) will be indexed on repair", exc, len(items)
            )
            return False

        async def _mark() -> None:
            async with self.sessions() as s, s.begin():
                await db.mark_indexed(s, vector_ids=[i for i, _, _ in items])

        self.run(_mark())
        return True

    def repair(self) -> int:
        """Index every vector committed to SQL but missing from Chroma; returns how many."""
        if self.vectors is None:
            return 0

        async def _todo() -> list[tuple[str, list[float], dict[str, Any]]]:
            async with self.sessions() as s:
                rows = await db.unindexed_vectors_any_owner(s, limit=100_000)
                return [
                    (
                        r.id,
                        r.vector,
                        {
                            "owner_id": r.owner_id,
                            "configuration_id": r.configuration_id,
                            "audio_id": r.audio_id,
                            "content_type": r.content_type,
                            "feature_version": r.feature_version,
                        },
                    )
                    for r in rows
                    if r.feature_version == F.FEATURE_VERSION
                ]

        todo = self.run(_todo())
        done = 0
        for start in range(0, len(todo), 1000):
            if self.index(todo[start : start + 1000]):
                done += len(todo[start : start + 1000])
        if done:
            log.info("memory repair: indexed %d vector(s)", done)
        return done

    def add_feedback(
        self,
        *,
        owner: str,
        turn_id: str,
        rating: int,
        aspects: dict[str, int] | None,
        comment: str | None,
        liked: bool | None,
        job_id: str | None,
    ) -> dict[str, dict[str, Any]]:
        """Store a rating for a turn (its id, a job id, or the result/input audio id); returns the turn's
        params. KeyError when there is no such turn."""

        async def _store() -> dict[str, dict[str, Any]]:
            async with self.sessions() as s, s.begin():
                cfg = await db.find_configuration(s, owner_id=owner, ref=turn_id)
                if cfg is None:
                    raise KeyError(f"no turn '{turn_id}' to rate (rate a turn id, job id or result audio id)")
                await db.add_feedback(
                    s,
                    owner_id=owner,
                    config_id=cfg.id,
                    rating=rating,
                    aspects=aspects,
                    comment=comment,
                    liked=liked,
                    job_id=job_id,
                )
                return dict(cfg.params or {})

        return self.run(_store())

    # ------------------------------------------------------------------ reads

    def find_turn(self, *, owner: str, ref: str) -> dict[str, Any] | None:
        async def _find() -> dict[str, Any] | None:
            async with self.sessions() as s:
                cfg = await db.find_configuration(s, owner_id=owner, ref=ref)
                if cfg is None:
                    return None
                return {
                    "id": cfg.id,
                    "audio_id": cfg.audio_id,
                    "result_id": cfg.result_id,
                    "genre": cfg.genre,
                    "params": cfg.params,
                    "score": cfg.score,
                    "rating_count": cfg.rating_count,
                }

        return self.run(_find())

    def references(self, *, owner: str) -> list[dict[str, Any]]:
        async def _list() -> list[dict[str, Any]]:
            async with self.sessions() as s:
                return [
                    {
                        "id": r.id,
                        "audio_id": r.audio_id,
                        "genre": r.genre,
                        "analysis": r.analysis,
                        "spectrum": r.spectrum,
                    }
                    for r in await db.list_reference_tracks(s, owner_id=owner)
                ]

        return self.run(_list())

    def has_reference(self, *, owner: str, audio_id: str) -> bool:
        return any(r["audio_id"] == audio_id for r in self.references(owner=owner))

    def recent_turns(self, *, owner: str, limit: int = 50) -> list[dict[str, Any]]:
        async def _list() -> list[dict[str, Any]]:
            async with self.sessions() as s:
                return [
                    {"id": c.id, "audio_id": c.audio_id, "result_id": c.result_id}
                    for c in await db.recent_configurations(s, owner_id=owner, limit=limit)
                ]

        return self.run(_list())

    def rated_matches(
        self, vec: np.ndarray, *, owner: str, content_type: str, k_global: int, k_own: int
    ) -> list[RatedMatch]:
        """Rated turns whose inputs are nearest to `vec`: `k_global` of this content type from everyone,
        plus `k_own` of the owner's own of any type (taste carries across). [] without a vector store."""
        if self.vectors is None:
            return []
        try:
            hits = self.vectors.query(vec, k=k_global, content_type=content_type)
            seen = {h.id for h in hits}
            hits += [h for h in self.vectors.query(vec, k=k_own, owner_id=owner) if h.id not in seen]
        except Exception as exc:  # no vector store: the caller recommends from the genre preset
            log.warning("vector search unavailable (%s)", exc)
            return []
        cfg_ids = [h.metadata.get("configuration_id") for h in hits if h.metadata.get("configuration_id")]

        async def _load() -> tuple[dict[str, dict[str, Any]], dict[str, list[str]]]:
            async with self.sessions() as s:
                configs = await db.configurations_by_ids_any_owner(s, ids=cfg_ids)
                mine = [c for c, v in configs.items() if v["owner_id"] == owner and v["rating_count"]]
                return configs, await db.feedback_comments(s, owner_id=owner, config_ids=mine)

        configs, comments = self.run(_load())
        out = []
        for h in hits:
            cid = h.metadata.get("configuration_id") or ""
            cfg = configs.get(cid)
            if cfg is None or not cfg["rating_count"] or cfg["score"] is None:
                continue
            out.append(
                RatedMatch(
                    similarity=F.similarity_from_sq_distance(h.distance),
                    own=cfg["owner_id"] == owner,
                    score=float(cfg["score"]),
                    params=cfg["params"],
                    genre=cfg["genre"],
                    aspects=cfg.get("aspects") or {},
                    comments=tuple(comments.get(cid, ())),
                    same_type=h.metadata.get("content_type", content_type) == content_type,
                )
            )
        return out
