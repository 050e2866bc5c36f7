"""Audio-feature vectors in ChromaDB: similar-input search with metadata filters.

`PersistentClient` in the data dir by default, `HttpClient` when ``MIXPILOT_CHROMA_URL`` is set.
We always hand Chroma our own embeddings (`memory.features`) and create the collection with
``embedding_function=None``: Chroma's default embedding function downloads a model, and we
never want that. Distances are squared L2 (``hnsw:space = l2``) on the standardised features.

One collection per feature version (``mixpilot_audio_features_v1``, …), so old vectors are
never compared with new ones and the common query needs no metadata filter: Chroma answers
an unfiltered HNSW query over 10,000 vectors in a few ms, while a filter that matches most
of the collection (``feature_version == 1``) makes it scan (~50 ms). Every vector still
carries metadata ``owner_id``, ``feature_version``, ``content_type``, ``configuration_id``
and ``audio_id``. An owner filter is selective and goes to Chroma as ``where``; the content
type, which the embedding itself separates well (speech probability, spectrum), is applied
to an over-fetched result (``k × 3``) here.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

try:
    import fcntl
except ImportError:  # not POSIX: one process per data dir there
    fcntl = None  # type: ignore[assignment]

COLLECTION = "mixpilot_audio_features"


@dataclass
class VectorItem:
    id: str
    vector: Sequence[float]
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Hit:
    id: str
    distance: float  # squared L2
    metadata: dict[str, Any]


def _clean(meta: dict[str, Any]) -> dict[str, Any]:
    """Chroma metadata values must be str/int/float/bool (no None)."""
    return {k: v for k, v in meta.items() if v is not None}


def _settings():
    from chromadb.config import Settings

    return Settings(anonymized_telemetry=False, allow_reset=False)


class VectorStore:
    """One Chroma collection of audio embeddings."""

    def __init__(
        self,
        *,
        feature_version: int,
        path: str | Path | None = None,
        url: str | None = None,
        collection: str = COLLECTION,
        client: Any = None,
    ) -> None:
        self.feature_version = int(feature_version)
        self.path, self.url, self.name = path, url, f"{collection}_v{self.feature_version}"
        self._client, self._collection = client, None
        self._injected = client is not None
        self._lock = threading.Lock()
        self._seen = -1
        self.reopened = 0  # how often another process's writes made this one reload (tests, diagnostics)

    @property
    def collection(self) -> Any:
        """The Chroma collection, connected on first use (importing chromadb takes seconds)."""
        if self._collection is None:
            with self._lock:
                if self._collection is None:
                    client = self._client or self._connect()
                    self._collection = client.get_or_create_collection(
                        name=self.name, embedding_function=None, metadata={"hnsw:space": "l2"}
                    )
                    self._client = client
        return self._collection

    def _connect(self) -> Any:
        import chromadb

        if self.url:
            u = urlparse(self.url if "://" in self.url else f"http://{self.url}")
            return chromadb.HttpClient(
                host=u.hostname or "localhost",
                port=u.port or (443 if u.scheme == "https" else 8000),
                ssl=u.scheme == "https",
                settings=_settings(),
            )
        if self.path is not None:
            Path(self.path).mkdir(parents=True, exist_ok=True)
            return chromadb.PersistentClient(path=str(self.path), settings=_settings())
        return chromadb.EphemeralClient(settings=_settings())

    # -------------------------------------------------------------- several processes, one directory
    # Embedded Chroma keeps its HNSW index in memory per process and never looks at what other
    # processes wrote: a job process would miss every vector the others added, and an owner-filtered
    # query then fails ("Error finding id"). So in the embedded mode every write takes an exclusive
    # file lock and bumps a generation number in the directory; every operation first compares that
    # number with the one this process last saw and, when another process wrote since, reopens the
    # client (which loads the index from disk). Reads take the lock shared.

    @contextlib.contextmanager
    def _coherent(self, *, write: bool) -> Iterator[None]:
        if self.url or self.path is None or self._injected or fcntl is None:
            yield
            return

        Path(self.path).mkdir(parents=True, exist_ok=True)
        with open(Path(self.path) / ".mixpilot.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX if write else fcntl.LOCK_SH)
            try:
                gen = self._generation()
                if self._collection is not None and gen != self._seen:
                    self._reopen()
                self._seen = gen
                yield
                if write:
                    self._seen = gen + 1
                    tmp = Path(self.path) / f".mixpilot-generation.{os.getpid()}"
                    tmp.write_text(str(self._seen))
                    os.replace(tmp, Path(self.path) / ".mixpilot-generation")
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _generation(self) -> int:
        if self.path is None:
            return 0
        try:
            return int((Path(self.path) / ".mixpilot-generation").read_text() or 0)
        except (OSError, ValueError):
            return 0

    def _reopen(self) -> None:
        """Drop this process's client (and Chroma's cached system for the directory) and connect again."""
        with self._lock:
            old, self._client, self._collection = self._client, None, None
            if old is not None:
                try:
                    old.close()
                except Exception:  # a client that cannot close is dropped anyway
                    pass
        self.reopened += 1

    def add(self, items: Sequence[VectorItem]) -> None:
        """Insert or replace (idempotent: a repair pass may add the same id twice)."""
        if not items:
            return
        with self._coherent(write=True):
            self.collection.upsert(
                ids=[it.id for it in items],
                embeddings=[np.asarray(it.vector, dtype=np.float32).tolist() for it in items],
                metadatas=[_clean(it.metadata) for it in items],
            )

    def query(
        self,
        vector: Sequence[float],
        *,
        k: int = 20,
        owner_id: str | None = None,
        content_type: str | None = None,
        where: dict[str, Any] | None = None,
    ) -> list[Hit]:
        """The `k` nearest vectors (optionally one owner's, one content type), nearest first."""
        clauses: list[dict[str, Any]] = []
        if owner_id is not None:
            clauses.append({"owner_id": owner_id})
        for key, value in (where or {}).items():
            clauses.append({key: value})
        flt = None if not clauses else clauses[0] if len(clauses) == 1 else {"$and": clauses}
        n = max(1, int(k)) * (3 if content_type is not None else 1)
        with self._coherent(write=False):
            res = self.collection.query(
                query_embeddings=[np.asarray(vector, dtype=np.float32).tolist()],
                n_results=n,
                where=flt,
                include=["metadatas", "distances"],
            )
        ids = (res.get("ids") or [[]])[0]
        dists = (res.get("distances") or [[]])[0]
        metas = (res.get("metadatas") or [[]])[0]
        hits = [
            Hit(id=i, distance=float(d), metadata=dict(m or {}))
            for i, d, m in zip(ids, dists, metas, strict=False)
        ]
        if content_type is not None:
            hits = [h for h in hits if h.metadata.get("content_type") in (None, content_type)]
        return hits[: max(1, int(k))]

    def existing(self, ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        with self._coherent(write=False):
            return set(self.collection.get(ids=list(ids), include=[]).get("ids") or [])

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            with self._coherent(write=True):
                self.collection.delete(ids=list(ids))

    def count(self) -> int:
        with self._coherent(write=False):
            return int(self.collection.count())
