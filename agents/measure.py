"""Measurements of stored audio versions, cached by content id.

Version ids are content hashes, so a measurement of one is valid for as long as it lives:
one cache entry per version (``kind:v1:{id}``) through `memory.cache` (Redis or in-process),
shared by the graph, the service and every surface.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from memory.storage import AudioStore

MEASURE_TTL_S = 7 * 24 * 3600


def cached_json(
    cache: Any, key: str, compute: Callable[[], dict[str, Any]], ttl_s: float | None = MEASURE_TTL_S
) -> dict[str, Any]:
    """`compute()` once per key: later calls (any process sharing the cache) read the stored JSON."""
    from memory.cache import get_json, set_json

    got = get_json(cache, key)
    if isinstance(got, dict):
        return got
    result = compute()
    set_json(cache, key, result, ttl_s)
    return result


def diagnosis_of(
    store: AudioStore, cache: Any, version_id: str, *, genre: str | None = None
) -> dict[str, Any]:
    """`tools.diagnose.diagnose` of a stored version as its dict (``{findings, facts}``), cached
    (per genre when one is given: it sets the tonal target of music)."""
    from tools.diagnose import diagnose

    key = f"diagnosis:v1:{version_id}" + (f":{genre}" if genre else "")
    return cached_json(cache, key, lambda: diagnose(store.get(version_id), genre=genre).to_dict())
