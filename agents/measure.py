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


def _analysis_key(version_id: str) -> str:
    return f"analysis:v1:{version_id}"


def _diagnosis_key(version_id: str, genre: str | None) -> str:
    return f"diagnosis:v1:{version_id}" + (f":{genre}" if genre else "")


def analysis_of(store: AudioStore, cache: Any, version_id: str) -> dict[str, Any]:
    """`tools.analysis.analyze` of a stored version as its dict, cached (``analysis:v1:{id}``)."""
    from tools.analysis import analyze

    return cached_json(cache, _analysis_key(version_id), lambda: analyze(store.get(version_id)).to_dict())


def diagnosis_of(
    store: AudioStore, cache: Any, version_id: str, *, genre: str | None = None
) -> dict[str, Any]:
    """`tools.diagnose.diagnose` of a stored version as its dict (``{findings, facts}``), cached
    (per genre when one is given: it sets the tonal target of music)."""
    return measurements_of(store, cache, version_id, genre=genre)[1]


def measurements_of(
    store: AudioStore, cache: Any, version_id: str, *, genre: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(analysis, diagnosis) of a stored version, each cached as `analysis_of` / `diagnosis_of`
    cache it, from one analysis: the diagnosis is given the analysis (fresh, or rebuilt from its
    cached dict) instead of measuring the audio a second time."""
    from memory.cache import get_json, set_json
    from tools.analysis import analyze

    a_key, d_key = _analysis_key(version_id), _diagnosis_key(version_id, genre)
    cached, diagnosis = get_json(cache, a_key), get_json(cache, d_key)
    if isinstance(cached, dict) and isinstance(diagnosis, dict):
        return cached, diagnosis
    audio = store.get(version_id)
    measured = _analysis_from_dict(cached) if isinstance(cached, dict) else None
    if measured is None or not isinstance(cached, dict):
        measured = analyze(audio)
        analysis: dict[str, Any] = measured.to_dict()
        set_json(cache, a_key, analysis, MEASURE_TTL_S)
    else:
        analysis = cached
    if not isinstance(diagnosis, dict):
        from tools.diagnose import diagnose

        diagnosis = diagnose(audio, measured, genre=genre).to_dict()
        set_json(cache, d_key, diagnosis, MEASURE_TTL_S)
    return analysis, diagnosis


def _analysis_from_dict(data: dict[str, Any]) -> Any:
    """An `Analysis` from its cached dict, or None when a figure is missing (None for a float)."""
    from dataclasses import fields

    from tools.analysis import Analysis

    optional = {"integrated_lufs", "max_momentary_lufs", "max_short_term_lufs"}
    values: dict[str, Any] = {}
    for f in fields(Analysis):
        v = data.get(f.name)
        if v is None and f.name not in optional:
            return None
        values[f.name] = v
    return Analysis(**values)
