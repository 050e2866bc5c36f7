"""Stable downloads: one stored rendition per version, format and bit depth; strong ETags, 304, HEAD, ranges."""

from __future__ import annotations

import hashlib
import io
import shutil

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient

from app.api.main import create_app
from tests.apiclient import make_settings, register, upload

FORMATS = [("flac", 16), ("flac", 24), ("wav", 16), ("wav", 24), ("wav", 32), ("mp3", None)]


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    settings = make_settings(tmp_path_factory.mktemp("dl-data"))
    with TestClient(create_app(settings)) as client:
        client.settings = settings
        headers = register(client)
        client.mp_auth = headers
        client.mp_file = upload(client, headers)
        yield client


def _get(api, fmt, depth, **headers):
    params = {"format": fmt} | ({"bit_depth": depth} if depth else {})
    return api.get(
        f"/api/v1/files/{api.mp_file['id']}/download", params=params, headers=api.mp_auth | headers
    )


@pytest.mark.parametrize(("fmt", "depth"), FORMATS)
def test_same_bytes_and_strong_etag_every_time(api, fmt, depth):
    first, second, third = (_get(api, fmt, depth) for _ in range(3))
    for r in (first, second, third):
        assert r.status_code == 200, r.text
        assert r.headers["etag"] == f'"{hashlib.sha256(r.content).hexdigest()}"'
        assert r.headers["accept-ranges"] == "bytes"
    assert first.content == second.content == third.content
    assert first.headers["etag"] == second.headers["etag"] == third.headers["etag"]


def test_one_export_per_version_format_and_depth(api, monkeypatch):
    service = api.app.state.mp.service
    calls: list[tuple] = []
    real = service.export

    def counting(*args, **kwargs):
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "export", counting)
    tags = {_get(api, "flac", 16).headers["etag"] for _ in range(2)}  # stored by the test above: no export
    assert calls == [] and len(tags) == 1
    for _ in range(3):
        assert _get(api, "wav", None).status_code == 200  # wav's default depth is 24: stored too
    assert calls == []
    assert _get(api, "wav", None).headers["etag"] == _get(api, "wav", 24).headers["etag"]


def test_if_none_match_answers_304(api):
    tag = _get(api, "flac", 24).headers["etag"]
    for value in (tag, f"W/{tag}", f'"other", {tag}', "*"):
        r = _get(api, "flac", 24, **{"If-None-Match": value})
        assert r.status_code == 304 and r.content == b"" and r.headers["etag"] == tag, value
    assert _get(api, "flac", 24, **{"If-None-Match": '"stale"'}).status_code == 200
    other = _get(api, "flac", 16).headers["etag"]
    assert other != tag and _get(api, "flac", 16, **{"If-None-Match": tag}).status_code == 200


def test_head_gives_the_headers_only(api):
    full = _get(api, "wav", 16)
    r = api.head(
        f"/api/v1/files/{api.mp_file['id']}/download",
        params={"format": "wav", "bit_depth": 16},
        headers=api.mp_auth,
    )
    assert r.status_code == 200 and r.content == b""
    assert r.headers["etag"] == full.headers["etag"]
    assert int(r.headers["content-length"]) == len(full.content)
    other = register(api)
    assert api.head(f"/api/v1/files/{api.mp_file['id']}/download", headers=other).status_code == 404


@pytest.mark.parametrize(("fmt", "depth"), FORMATS)
def test_download_resumed_with_ranges_is_bit_identical(api, fmt, depth):
    full = _get(api, fmt, depth)
    tag, size = full.headers["etag"], len(full.content)
    cut = size // 3
    head = _get(api, fmt, depth, Range=f"bytes=0-{cut - 1}")
    assert head.status_code == 206 and head.headers["content-range"] == f"bytes 0-{cut - 1}/{size}"
    tail = _get(api, fmt, depth, Range=f"bytes={cut}-", **{"If-Range": tag})
    assert tail.status_code == 206 and tail.headers["etag"] == tag
    joined = head.content + tail.content
    assert joined == full.content
    if fmt != "mp3":
        a, sr = sf.read(io.BytesIO(joined), dtype="float32")
        b, _ = sf.read(io.BytesIO(full.content), dtype="float32")
        assert sr == 22050 and np.array_equal(a, b)
    # a resume against other bytes (If-Range names another tag) gets the whole file again
    again = _get(api, fmt, depth, Range=f"bytes={cut}-", **{"If-Range": '"not-this"'})
    assert again.status_code == 200 and again.content == full.content


def test_renditions_are_reproduced_bit_identically(api):
    """The dither is seeded by the version and float WAVs carry no time stamp (PEAK chunk): the same bytes
    come back after the stored ones are gone."""
    before = {(f, d): _get(api, f, d).headers["etag"] for f, d in FORMATS}
    shutil.rmtree(api.settings.data_dir / "renditions")
    after = {(f, d): _get(api, f, d).headers["etag"] for f, d in FORMATS}
    assert after == before


def test_bad_combinations_are_422(api):
    assert _get(api, "mp3", 16).status_code == 422
    assert _get(api, "flac", 32).status_code == 422
