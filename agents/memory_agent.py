"""MemoryAgent: remembers what was applied, learns from ratings, recommends settings.

- `record_turn` (after a process/adjust turn): stores the configuration actually applied
  (``mixing_configurations``) and the input's audio embedding (``audio_feature_vectors`` in
  SQL, then Chroma); returns the configuration id, which is the *turn id* feedback names.
- `feedback`: stores the rating (1–5, aspects, comment, liked) in SQL and folds it into the
  configuration's score. Needs neither Chroma nor Redis.
- `recommend` (the graph's recall node, before planning): finds similar inputs whose
  configurations were rated, and returns a configuration for the parameters the request
  leaves open: ``{"params": {tool: {param: value}}, "genre", "evidence", "confidence"}``.

The agent orchestrates; each concern lives in its own module:

- `memory.repository.MemoryRepository`: SQL (through `memory.db`) and Chroma, on the one
  sync → async bridge (`memory.bridge`); durable writes and `repair`.
- `agents.memory_estimator`: the pure estimator on typed neighbours (ideal-point fit, aspect
  fits, shrinkage to the genre preset, the evidence line).
- `agents.semantic.comments`: feedback comments ("too bright") read as the follow-up they would be.
- `tools.genres`: genre words and presets.

The embedding (`memory.features`) and the recommendation cache (`memory.cache`, Redis or in
process) are called from the caller's thread.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from agents.memory_estimator import LABELS, LEARNED_TOOLS, Neighbour, recommend_from
from agents.semantic import comments as C
from memory import db
from memory import features as F
from memory.cache import cache_key, get_json, set_json
from memory.repository import MemoryRepository, RatedMatch, TurnRecord
from tools.genres import genre_in

log = logging.getLogger("mixpilot.memory")

K_GLOBAL, K_OWN = 64, 24
EMBED_TTL_S = 7 * 24 * 3600
REC_TTL_S = 300


def genre_from_request(request: str) -> str | None:
    """The genre a request names ("like hip hop" → hip_hop, "for a podcast" → speech), or None."""
    return genre_in(request)


def applied_params(
    outcomes: list[dict[str, Any]], plan: dict[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """{tool: params} of the steps that were actually applied (else the plan's steps)."""
    out: dict[str, dict[str, Any]] = {}
    steps = [o for o in outcomes or [] if o.get("status") in ("applied", "trimmed")]
    if not outcomes:
        steps = list((plan or {}).get("steps") or [])
    for s in steps:
        params = {
            k: v for k, v in dict(s.get("params") or {}).items() if isinstance(v, (int, float, str, bool))
        }
        out.setdefault(s["tool"], {}).update(params)
    return out


def comment_directions(comment: str | None, params: dict[str, dict[str, Any]]) -> dict[tuple[str, str], int]:
    """What a feedback comment says about the learned settings that were played: (tool, param) → +1 / −1
    (`agents.semantic.comments.comment_directions` on the tools memory learns). Praise or an
    unreadable comment: {}."""
    learned = {t: ps for t, ps in params.items() if t in LEARNED_TOOLS and isinstance(ps, dict)}
    return C.comment_directions(comment, learned)


def _neighbour(match: RatedMatch) -> Neighbour:
    dirs: dict[tuple[str, str], int] = {}
    for c in match.comments:  # a later comment on the same turn wins
        dirs.update(comment_directions(c, match.params))
    return Neighbour(
        similarity=match.similarity,
        own=match.own,
        score=match.score,
        params=match.params,
        genre=match.genre,
        aspects=match.aspects,
        dirs=dirs,
        same_type=match.same_type,
    )


class MemoryAgent:
    """See the module docstring. Build with `open_memory`; close at shutdown."""

    def __init__(
        self,
        *,
        database_url: str,
        vectors: Any = None,
        cache: Any = None,
        store: Any = None,
        repair: bool = True,
    ) -> None:
        self.repo = MemoryRepository(database_url=database_url, vectors=vectors)
        self.cache, self.store = cache, store
        self._gen = 0
        if repair:
            try:
                self.repair()
            except Exception as exc:  # Chroma down at start: try again next start
                log.warning("memory repair failed (%s); will retry on next start", exc)

    @property
    def database_url(self) -> str:
        return self.repo.database_url

    @property
    def vectors(self) -> Any:
        return self.repo.vectors

    def close(self) -> None:
        self.repo.close()

    def __enter__(self) -> MemoryAgent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def repair(self) -> int:
        """Index every vector committed to SQL but missing from Chroma; returns how many."""
        return self.repo.repair()

    # ------------------------------------------------------------------ embeddings and cache

    def _vector(
        self, *, audio_id: str | None, audio: Any = None, analysis: dict[str, Any] | None
    ) -> np.ndarray | None:
        key = cache_key("emb", F.FEATURE_VERSION, audio_id) if audio_id else None
        if key:
            cached = get_json(self.cache, key)
            if isinstance(cached, list) and len(cached) == F.DIMENSION:
                return np.asarray(cached, dtype=np.float32)
        if audio is None and audio_id and self.store is not None:
            try:
                audio = self.store.get(audio_id)
            except KeyError:
                audio = None
        if audio is None:
            return None
        vec = F.embed(audio, analysis or None)
        if key:
            set_json(self.cache, key, [float(v) for v in vec], EMBED_TTL_S)
        return vec

    def _generation(self) -> int:
        got = get_json(self.cache, "memgen")
        return int(got) if isinstance(got, int) else self._gen

    def _bump_generation(self) -> None:
        self._gen = self._generation() + 1
        try:
            set_json(self.cache, "memgen", self._gen, None)
        except Exception:  # caches never fail a request
            pass

    # ------------------------------------------------------------------ record and feedback

    def record_turn(
        self,
        *,
        user_id: str | None,
        thread_id: str | None,
        audio_id: str | None,
        audio: Any,
        analysis: dict[str, Any] | None,
        plan: dict[str, Any] | None,
        outcomes: list[dict[str, Any]],
        result_id: str | None,
        request: str | None = None,
        job_id: str | None = None,
        inputs: dict[str, str] | None = None,
    ) -> str:
        """Store the configuration applied in one turn and the input's vector; returns the turn id.

        A turn that matched a reference (``inputs["reference"]``, an audio id in the store) also
        stores that reference's analysis and long-term band spectrum in ``reference_tracks``
        (once per owner and recording)."""
        owner = user_id or db.LOCAL_USER_ID
        params = applied_params(outcomes, plan)
        genre = (params.get("genre_preset") or {}).get("genre") or genre_from_request(request or "")
        ctype = F.content_type(analysis)
        if genre is None and ctype == "speech":
            genre = "speech"
        kind = (
            "reference_match"
            if "reference_match" in params
            else "genre_preset"
            if "genre_preset" in params
            else "learned"
            if (plan or {}).get("source") == "memory"
            else "manual"
        )
        vec = self._vector(audio_id=audio_id, audio=audio, analysis=analysis)
        reference = (
            self._reference(owner, (inputs or {}).get("reference")) if "reference_match" in params else None
        )
        config_id = self.repo.record_turn(
            TurnRecord(
                owner=owner,
                params=params,
                genre=genre,
                kind=kind,
                content_type=ctype,
                thread_id=thread_id,
                audio_id=audio_id,
                result_id=result_id,
                request=request,
                plan=plan,
                job_id=job_id,
                vector=vec,
                reference=reference,
            )
        )
        self._bump_generation()
        return config_id

    def _reference(self, owner: str, ref_id: str | None) -> dict[str, Any] | None:
        """{audio_id, name, analysis, spectrum} of a reference not yet stored for this owner, else None."""
        if not ref_id or self.store is None:
            return None
        try:
            if self.repo.has_reference(owner=owner, audio_id=ref_id):
                return None
            ref = self.store.get(ref_id)
        except KeyError:
            return None
        from tools.analysis import analyze

        an = analyze(ref).to_dict()
        raw = F.raw_features(ref, an)
        spectrum = [raw.get(name) for name in F.FEATURE_NAMES[: F.N_BANDS]]
        an = {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in an.items()
        }  # JSON-safe
        return {
            "audio_id": ref_id,
            "name": None,
            "analysis": an,
            "spectrum": [None if v is None or not math.isfinite(v) else round(float(v), 2) for v in spectrum],
        }

    def feedback(
        self,
        *,
        user_id: str | None,
        turn_id: str,
        rating: int,
        aspects: dict[str, int] | None = None,
        comment: str | None = None,
        liked: bool | None = None,
        job_id: str | None = None,
    ) -> list[str]:
        """Store a rating for a turn (its id, a job id, or the result/input audio id).

        Returns what the comment was understood to ask of the settings played ("lower
        brightness"), for the reply; [] without a comment, or one that asks nothing of them.
        """
        owner = user_id or db.LOCAL_USER_ID
        params = self.repo.add_feedback(
            owner=owner,
            turn_id=turn_id,
            rating=rating,
            aspects=aspects,
            comment=comment,
            liked=liked,
            job_id=job_id,
        )
        self._bump_generation()
        return [
            f"{'higher' if d > 0 else 'lower'} {LABELS.get(k, (f'{k[0]} {k[1]}',))[0]}"
            for k, d in sorted(comment_directions(comment, params).items())
        ]

    def find_turn(self, *, user_id: str | None, ref: str) -> dict[str, Any] | None:
        """The turn (configuration) `ref` names for this user, as a dict, or None."""
        return self.repo.find_turn(owner=user_id or db.LOCAL_USER_ID, ref=ref)

    def references(self, *, user_id: str | None) -> list[dict[str, Any]]:
        """This user's stored reference tracks (oldest first): {id, audio_id, genre, analysis, spectrum}."""
        return self.repo.references(owner=user_id or db.LOCAL_USER_ID)

    def recent_turns(self, *, user_id: str | None, limit: int = 50) -> list[dict[str, Any]]:
        return self.repo.recent_turns(owner=user_id or db.LOCAL_USER_ID, limit=limit)

    # ------------------------------------------------------------------ recommend

    def recommend(
        self,
        *,
        analysis: dict[str, Any],
        request: str,
        user_id: str | None,
        audio_id: str | None,
        audio: Any = None,
        genre: str | None = None,
    ) -> dict[str, Any] | None:
        """A configuration for the parameters the request leaves open (`agents.memory_estimator`), or None."""
        owner = user_id or db.LOCAL_USER_ID
        genre = genre or genre_from_request(request)
        ctype = F.content_type(analysis)
        rkey = cache_key("rec", owner, audio_id, genre, ctype, self._generation()) if audio_id else None
        if rkey:
            cached = get_json(self.cache, rkey)
            if isinstance(cached, dict):
                return cached or None
        vec = self._vector(audio_id=audio_id, audio=audio, analysis=analysis)
        matches = (
            self.repo.rated_matches(vec, owner=owner, content_type=ctype, k_global=K_GLOBAL, k_own=K_OWN)
            if vec is not None
            else []
        )
        rec = recommend_from([_neighbour(m) for m in matches], genre=genre, ctype=ctype)
        if rkey:
            set_json(self.cache, rkey, rec or {}, REC_TTL_S)
        return rec


def open_memory(
    *,
    data_dir: str | Path,
    database_url: str | None = None,
    chroma_url: str | None = None,
    cache: Any = None,
    store: Any = None,
    migrate_empty: bool = True,
) -> MemoryAgent:
    """Build the agent from settings values.

    Database: `database_url`, else SQLite in the data dir. An *empty* database is migrated
    to head here (the one-command default just works); a database that is behind raises
    `memory.migrate.SchemaOutOfDate` ("run `mixpilot migrate`"). Vectors: Chroma server at
    `chroma_url`, else a PersistentClient in ``data_dir/chroma``.
    """
    from memory import migrate
    from memory.vectors import VectorStore

    data_dir = Path(data_dir)
    url = database_url or db.default_database_url(data_dir)
    if migrate_empty and migrate.current_revision(url) is None:
        migrate.upgrade(url)
    migrate.check_schema_current(url)
    vectors = None
    try:
        vectors = VectorStore(
            feature_version=F.FEATURE_VERSION,
            url=chroma_url,
            path=None if chroma_url else data_dir / "chroma",
        )
    except Exception as exc:  # Chroma server down: run without similarity search, repair later
        log.warning("vector store unavailable (%s); recommendations fall back to genre presets", exc)
    return MemoryAgent(database_url=url, vectors=vectors, cache=cache, store=store)
