"""Embedded Chroma shared by several processes (the API's job processes): each sees the others' writes."""

from __future__ import annotations

import multiprocessing as mp

import numpy as np
import pytest

pytest.importorskip("chromadb")

from memory.vectors import VectorItem, VectorStore


def _add_in_another_process(path: str, owner: str, n: int, seed: int) -> None:
    store = VectorStore(feature_version=1, path=path)
    rng = np.random.default_rng(seed)
    store.add(
        [
            VectorItem(
                id=f"{owner}-{i}",
                vector=rng.normal(size=42).tolist(),
                metadata={"owner_id": owner, "content_type": "music"},
            )
            for i in range(n)
        ]
    )


def _run(path, owner, n, seed) -> None:
    p = mp.get_context("spawn").Process(target=_add_in_another_process, args=(str(path), owner, n, seed))
    p.start()
    p.join(120)
    assert p.exitcode == 0


def test_a_process_sees_vectors_another_process_added(tmp_path):
    path = tmp_path / "chroma"
    mine = VectorStore(feature_version=1, path=path)
    rng = np.random.default_rng(0)
    mine.add(
        [
            VectorItem(
                id="me-0",
                vector=rng.normal(size=42).tolist(),
                metadata={"owner_id": "me", "content_type": "music"},
            )
        ]
    )
    assert len(mine.query(rng.normal(size=42), k=10)) == 1  # the index is loaded in this process now
    _run(path, "other", 5, 1)
    # without the generation check this process answers from its stale in-memory index: 1 hit, and
    # the owner-filtered query fails inside Chroma ("Error finding id")
    assert len(mine.query(rng.normal(size=42), k=10)) == 6
    assert {h.id for h in mine.query(rng.normal(size=42), k=10, owner_id="other")} == {
        f"other-{i}" for i in range(5)
    }
    assert mine.reopened == 1
    mine.add([VectorItem(id="me-1", vector=rng.normal(size=42).tolist(), metadata={"owner_id": "me"})])
    _run(path, "third", 2, 2)
    assert mine.count() == 9
    assert len(mine.query(rng.normal(size=42), k=20)) == 9
    assert mine.reopened == 2
