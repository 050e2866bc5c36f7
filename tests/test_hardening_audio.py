"""Bounded memory per upload: the decoded size is checked from the header before decoding (per upload and
per user), the decoder never reads past the budget, the in-memory audio cache is bounded in bytes, and
a download of the same version is the same bytes (dither seeded by the version id).

The API cases run on SQLite and on PostgreSQL (tests/services.py: a failure under CI=true when it is down).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import soundfile as sf

from memory.storage import LocalAudioStore as AudioStore
from tests.services import pg_url  # noqa: F401  (fixture)
from tools.audio import Audio, AudioTooLarge, ffmpeg_executable, load


def _bomb(path, seconds: float, sr: int = 48000, channels: int = 2) -> None:
    """A small FLAC that decodes to `seconds` of audio: a short tone, then digital silence."""
    x = np.zeros((int(seconds * sr), channels), dtype=np.float32)
    x[: sr // 100] = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(sr // 100) / sr)[:, None]
    sf.write(path, x, sr, subtype="PCM_16", format="FLAC")


def test_budget_is_checked_from_the_header_before_decoding(tmp_path, monkeypatch):
    p = tmp_path / "bomb.flac"
    _bomb(p, 20.0)
    assert p.stat().st_size < 50_000  # a few kB on disk ...
    budget = 48000 * 2 * 5  # ... 5 s of 48 kHz stereo allowed

    def no_decoding(*a, **k):
        raise AssertionError("decoded although the header already said it is too large")

    monkeypatch.setattr(sf, "read", no_decoding)
    with pytest.raises(AudioTooLarge, match=r"decodes to 8 MB .*the limit is 2 MB"):
        load(p, max_samples=budget)


def test_a_file_within_the_budget_loads(tmp_path):
    p = tmp_path / "ok.flac"
    _bomb(p, 2.0)
    a = load(p, max_samples=48000 * 2 * 5, require_signal=True)
    assert a.frames == 96000 and a.channels == 2


def test_the_decoder_stops_at_the_budget_when_the_header_has_no_length(tmp_path, monkeypatch):
    """A header without a frame count (streamed FLAC: 0) cannot make the decoder read more than the budget."""
    p = tmp_path / "nolen.flac"
    _bomb(p, 10.0, channels=1)
    real_info, reads = sf.info, []

    def info_without_length(path):
        i = real_info(path)
        i.frames = 0
        return i

    real_read = sf.read

    def counting_read(*a, **k):
        data, sr = real_read(*a, **k)
        reads.append(data.shape[0])
        return data, sr

    monkeypatch.setattr(sf, "info", info_without_length)
    monkeypatch.setattr(sf, "read", counting_read)
    with pytest.raises(AudioTooLarge):
        load(p, max_samples=48000)
    assert reads == [48001]  # one frame past the budget, not the 480 000 in the file


@pytest.mark.skipif(ffmpeg_executable() is None, reason="needs ffmpeg")
def test_ffmpeg_formats_are_checked_from_the_container_duration(tmp_path):
    import subprocess

    wav = tmp_path / "x.wav"
    _bomb(wav.with_suffix(".flac"), 6.0, channels=1)
    x, sr = sf.read(wav.with_suffix(".flac"))
    sf.write(wav, x, sr)
    m4a = tmp_path / "x.m4a"
    subprocess.run(
        [ffmpeg_executable(), "-v", "error", "-y", "-i", str(wav), "-c:a", "aac", str(m4a)], check=True
    )
    with pytest.raises(AudioTooLarge, match="decodes to"):
        load(m4a, max_samples=48000 * 2)
    assert load(m4a, max_samples=48000 * 10).frames >= 48000 * 5


def test_audio_cache_is_bounded_in_bytes(tmp_path):
    store = AudioStore(tmp_path, cache_items=100, cache_bytes=1_000_000)
    ids = []
    for i in range(6):  # 6 × 384 kB
        ids.append(store.put(Audio(np.full((2, 48000), 0.01 * (i + 1), dtype=np.float32), 48000)))
        assert store.cached_bytes <= 1_000_000
    assert store.cached_bytes == 2 * 384_000  # the two latest
    big = Audio(np.full((2, 200_000), 0.1, dtype=np.float32), 48000)  # 1.6 MB: over the whole budget
    vid = store.put(big)
    assert store.cached_bytes <= 1_000_000
    assert store.get(vid).frames == 200_000  # still stored and readable
    assert store.cached_bytes <= 1_000_000
    assert all(store.get(v).frames == 48000 for v in ids)


@pytest.mark.parametrize("fmt,depth", [("wav", 16), ("wav", 24), ("flac", 16), ("flac", 24)])
def test_the_same_download_is_the_same_bytes(tmp_path, fmt, depth):
    store = AudioStore(tmp_path / "audio")
    rng = np.random.default_rng(3)
    a = Audio((0.1 * rng.standard_normal((2, 24000))).astype(np.float32), 48000)
    b = Audio((0.1 * rng.standard_normal((2, 24000))).astype(np.float32), 48000)
    va, vb = store.put(a), store.put(b)

    def digest(vid: str, name: str) -> str:
        out = store.export(vid, tmp_path / f"{name}.{fmt}", bit_depth=depth)
        return hashlib.sha256(out.read_bytes()).hexdigest()

    assert digest(va, "a1") == digest(va, "a2")
    store2 = AudioStore(tmp_path / "audio")  # another process: same bytes
    out = store2.export(va, tmp_path / f"a3.{fmt}", bit_depth=depth)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == digest(va, "a4")
    # still dithered: TPDF noise of about ±1 LSB, and a different sequence for another version
    y, _ = sf.read(out, dtype="float64", always_2d=True)
    err = y.T - a.samples
    assert 0.2 < np.std(err) * 2 ** (depth - 1) < 0.8
    ya, _ = sf.read(tmp_path / f"a1.{fmt}", dtype="float64", always_2d=True)
    yb, _ = sf.read(store.export(vb, tmp_path / f"b.{fmt}", bit_depth=depth), dtype="float64", always_2d=True)
    assert not np.allclose((ya.T - a.samples)[:, :100], (yb.T - b.samples)[:, :100])


# ------------------------------------------------------------------ the API, on SQLite and PostgreSQL


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, tmp_path):
    if request.param == "postgres":
        return {"database_url": request.getfixturevalue("pg_url")}
    return {}


@pytest.fixture
def api_factory(tmp_path, backend):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from app.api.main import create_app
    from tests.apiclient import make_settings

    def make(**overrides):
        settings = make_settings(tmp_path / "data", job_runner="thread", **{**backend, **overrides})
        return TestClient(create_app(settings)), settings

    return make


def test_api_refuses_a_decompression_bomb_and_keeps_nothing(api_factory, tmp_path):
    from tests.apiclient import register, stored_files

    p = tmp_path / "bomb.flac"
    _bomb(p, 30.0)  # 11.5 MB decoded, ~10 kB uploaded
    client, settings = api_factory(max_decoded_mb=4.0)
    with client as api:
        h = register(api)
        with open(p, "rb") as f:
            r = api.post("/api/v1/files", files={"file": ("b.flac", f, "audio/flac")}, headers=h)
        assert r.status_code == 413, r.text
        assert "decodes to" in r.json()["detail"] and "limit is 4 MB" in r.json()["detail"]
        assert str(settings.data_dir) not in r.text
        assert not [f for f in stored_files(settings.data_dir) if "audio" in f.parts or "uploads" in f.parts]
        assert api.get("/api/v1/files", headers=h).json()["items"] == []


def test_api_per_user_quota(api_factory, tmp_path):
    from tests.apiclient import SONG, SPEECH, register, upload

    # the song decodes to 0.7 MB, the speech to 0.26 MB: a 1 MB quota holds the song, not both
    client, _ = api_factory(user_audio_mb=0.9)
    with client as api:
        h = register(api)
        upload(api, h, SONG)
        with open(SPEECH, "rb") as f:
            r = api.post("/api/v1/files", files={"file": ("s.flac", f, "audio/flac")}, headers=h)
        assert r.status_code == 413, r.text
        assert "you may keep" in r.json()["detail"]
        other = register(api)  # another user's quota is their own
        upload(api, other, SPEECH)
