"""The local audio store (memory/storage.py) and the disk cache (memory/diskcache.py): lossless compressed
versions (24-bit FLAC when exact, zstd float32 otherwise) that read back bit-identical, versions
written before compression (float WAV) still read, ids/nbytes/remove, blobs, a bounded LRU disk cache."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import soundfile as sf

from memory.diskcache import DiskCache
from memory.storage import (
    AudioStore,
    LocalAudioStore,
    audio_id,
    decode,
    encode,
    exact_24bit,
)
from tools.audio import Audio, load, save


def bits(audio: Audio) -> np.ndarray:
    return audio.samples.view(np.uint32)


def pcm16(seconds: float = 1.0, rate: int = 48000, channels: int = 2, seed: int = 0) -> Audio:
    rng = np.random.default_rng(seed)
    ints = rng.integers(-32768, 32768, (channels, int(seconds * rate)))
    return Audio((ints / 32768).astype(np.float32), rate)


def floaty(seconds: float = 1.0, rate: int = 48000, channels: int = 2, seed: int = 1) -> Audio:
    rng = np.random.default_rng(seed)
    return Audio((rng.standard_normal((channels, int(seconds * rate))) * 0.2).astype(np.float32), rate)


def test_exact_24bit_tells_integer_samples_from_float_ones():
    assert exact_24bit(pcm16().samples)
    edges = np.array([[-1.0, (2**23 - 1) / 2**23, 0.0, 1 / 2**23]], dtype=np.float32)
    assert exact_24bit(edges)
    assert not exact_24bit(np.array([[1.0]], dtype=np.float32))  # +1.0 is one step over 24-bit range
    assert not exact_24bit(np.array([[0.5 / 2**23]], dtype=np.float32))  # between two 24-bit steps
    assert not exact_24bit(np.array([[-0.0, 0.5]], dtype=np.float32))  # -0.0: FLAC would lose its sign
    assert not exact_24bit(floaty().samples)


@pytest.mark.parametrize("channels", [1, 2, 6])
@pytest.mark.parametrize("rate", [22050, 48000, 96000])
def test_encoding_is_lossless_to_the_bit(rate, channels):
    for audio, suffix in ((pcm16(0.5, rate, channels), ".flac"), (floaty(0.5, rate, channels), ".f32.zst")):
        got_suffix, data = encode(audio)
        assert got_suffix == suffix
        back = decode(got_suffix, data)
        assert back.sample_rate == rate and back.samples.shape == audio.samples.shape
        np.testing.assert_array_equal(bits(back), bits(audio))
        assert audio_id(back) == audio_id(audio)


def test_odd_float_values_survive_the_zstd_form():
    s = np.array(
        [[-0.0, 0.0, 1e-45, -1e-45, 3.4e38, -3.4e38, 1.0, -1.0, 0.1, np.nextafter(np.float32(1), 2)]],
        dtype=np.float32,
    )
    suffix, data = encode(Audio(s, 44100))
    assert suffix == ".f32.zst"
    np.testing.assert_array_equal(bits(decode(suffix, data)), s.view(np.uint32))


def test_damaged_data_is_an_audio_error():
    from tools.audio import AudioError

    suffix, data = encode(floaty(0.1))
    with pytest.raises(AudioError):
        decode(suffix, data[: len(data) // 2])
    with pytest.raises(AudioError):
        decode(".flac", b"not flac at all")


def test_real_recordings_store_bit_identical_and_smaller(shared_fixtures, tmp_path):
    """A decoded 16-bit upload is stored as FLAC at about half of float WAV and less; the float output of
    processing as zstd float32, smaller than float WAV; both read back to the bit in a fresh store."""
    song = load(shared_fixtures / "music" / "Kevin_MacLeod_-_Vibe_Ace.flac", max_duration_s=None)
    processed = Audio(np.tanh(song.samples * 1.7) * 0.8, song.sample_rate)  # float output, as a tool makes
    store = LocalAudioStore(tmp_path / "audio")
    for audio, suffix, at_most in ((song, ".flac", 0.55), (processed, ".f32.zst", 0.95)):
        vid = store.put(audio)
        store.compact()  # write-behind: the compressed form once the compactor is done
        path = store.path(vid)
        assert path.name == f"{vid}{suffix}"
        float_wav = 44 + audio.samples.nbytes
        assert store.nbytes(vid) == path.stat().st_size < at_most * float_wav, (suffix, store.nbytes(vid))
        fresh = LocalAudioStore(tmp_path / "audio")  # no decoded copy in memory: read from disk
        np.testing.assert_array_equal(bits(fresh.get(vid)), bits(audio))


def test_versions_written_as_float_wav_before_compression_still_read(tmp_path):
    """A data dir from before: ``<id>.wav`` (32-bit float) reads, counts, lists, is not stored twice, removes."""
    audio = floaty(0.5)
    vid = audio_id(audio)
    old = tmp_path / "audio" / vid[:2] / f"{vid}.wav"
    old.parent.mkdir(parents=True)
    save(audio, old, bit_depth=32)
    store = LocalAudioStore(tmp_path / "audio")
    assert store.exists(vid) and list(store.ids()) == [vid]
    np.testing.assert_array_equal(bits(store.get(vid)), bits(audio))
    assert store.nbytes(vid) == old.stat().st_size
    assert store.put(audio) == vid
    assert sorted(p.name for p in old.parent.iterdir()) == [old.name]  # no second copy
    assert store.remove(vid) and not old.exists() and not store.exists(vid)
    with pytest.raises(KeyError):
        store.get(vid)


def test_ids_nbytes_remove(tmp_path):
    store = LocalAudioStore(tmp_path / "audio")
    assert isinstance(store, AudioStore)
    a, b = store.put(pcm16(0.2)), store.put(floaty(0.2))
    assert sorted(store.ids()) == sorted([a, b])
    assert store.nbytes(a) > 0 and store.nbytes(b) > 0
    assert store.remove(a) and not store.remove(a)
    assert list(store.ids()) == [b]
    for bad in ("nope", "../etc", ""):
        assert not store.exists(bad) and not store.remove(bad)
        with pytest.raises(KeyError):
            store.get(bad)
        with pytest.raises(KeyError):
            store.nbytes(bad)
    with pytest.raises(KeyError):
        store.nbytes(a)


def test_export_is_the_same_bytes_from_a_compressed_version(tmp_path):
    audio = pcm16(0.5)
    store = LocalAudioStore(tmp_path / "audio")
    vid = store.put(audio)
    first = store.export(vid, tmp_path / "a.wav", bit_depth=16).read_bytes()
    again = LocalAudioStore(tmp_path / "audio").export(vid, tmp_path / "b.wav", bit_depth=16).read_bytes()
    assert first == again
    y, _ = sf.read(tmp_path / "b.wav", dtype="float32", always_2d=True)
    assert np.max(np.abs(y.T - audio.samples)) <= 2 / 32768  # the stored audio, within the dither


def test_local_blobs(tmp_path):
    store = LocalAudioStore(tmp_path / "audio", blob_root=tmp_path)
    store.put_blob("renditions/ab/x.wav", b"hello")
    src = tmp_path / "scratch.bin"
    src.write_bytes(b"a file's bytes")
    store.put_blob("renditions/cd/y.flac", src)
    assert not src.exists()  # taken over
    assert (tmp_path / "renditions" / "ab" / "x.wav").read_bytes() == b"hello"
    assert store.read_blob("renditions/cd/y.flac") == b"a file's bytes"
    assert store.blob_size("renditions/ab/x.wav") == 5 and store.blob_size("renditions/zz/none") is None
    path = store.blob_path("renditions/cd/y.flac")
    assert path is not None and path.read_bytes() == b"a file's bytes"
    assert sorted(store.blob_keys("renditions")) == ["renditions/ab/x.wav", "renditions/cd/y.flac"]
    assert store.blob_url("renditions/ab/x.wav", expires_s=60) is None  # served by the API itself
    assert store.remove_blob("renditions/ab/x.wav") and not store.remove_blob("renditions/ab/x.wav")
    assert store.read_blob("renditions/ab/x.wav") is None and store.blob_path("renditions/ab/x.wav") is None
    for bad in ("../outside", "/abs/path", "a/../../b", "a/./b", ""):
        with pytest.raises(ValueError, match="bad blob key"):
            store.put_blob(bad, b"x")


def test_disk_cache_keeps_the_recently_used_within_its_budget(tmp_path):
    cache = DiskCache(tmp_path / "cache", max_bytes=10_000)
    for i in range(3):
        cache.put(f"k/{i}", bytes(3000))
        t = time.time() - 100 + i  # distinct, ordered use times
        os.utime(cache.path(f"k/{i}"), (t, t))
    assert cache.get("k/0") is not None  # used now: the newest
    cache.put("k/3", bytes(3000))  # 12 000 > 10 000: the least recently used go, down to 90%
    left = sorted(p.name for p in (tmp_path / "cache" / "k").iterdir())
    assert left == ["0", "2", "3"], left
    assert sum(p.stat().st_size for p in (tmp_path / "cache").rglob("*") if p.is_file()) <= 10_000
    assert cache.get("k/1") is None and cache.get("k/3") is not None


def test_disk_cache_counts_what_is_already_there_and_keeps_the_last_file(tmp_path):
    DiskCache(tmp_path / "c", max_bytes=100_000).put("a", bytes(5000))
    again = DiskCache(tmp_path / "c", max_bytes=1000)  # a restart with a smaller budget
    assert again.nbytes == 5000
    p = again.put("b", bytes(2000))
    assert p.is_file() and not (tmp_path / "c" / "a").exists()  # over budget: only the newest stays
    with pytest.raises(ValueError):
        DiskCache(tmp_path / "d", max_bytes=-1)


def test_redirect_on_the_local_store_serves_the_bytes(tmp_path):
    """`?redirect=true` where there is no object store: no presigned URL, the same bytes as a plain download."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from app.api.main import create_app
    from tests.apiclient import make_settings, register, upload

    with TestClient(create_app(make_settings(tmp_path / "data", job_runner="thread"))) as api:
        h = register(api)
        f = upload(api, h)
        url = f"/api/v1/files/{f['id']}/download"
        plain = api.get(url, headers=h)
        r = api.get(url, params={"redirect": "true"}, headers=h, follow_redirects=False)
        assert (
            r.status_code == 200 and r.content == plain.content and r.headers["etag"] == plain.headers["etag"]
        )
        assert (tmp_path / "data" / "renditions").is_dir()  # stored where they always were


def test_write_behind_puts_raw_then_compresses_without_losing_a_bit(tmp_path):
    """`put` writes the fast raw form; the compactor swaps in the compressed one; reads are bit-identical
    before, during and after; a version removed before its compaction stays removed; raw versions left by a
    process that stopped are compressed by `compact()` (what `mixpilot gc` runs)."""
    from memory.storage import write_raw

    store = LocalAudioStore(tmp_path / "audio")
    a, b = floaty(2.0, seed=1), pcm16(2.0, seed=2)
    va, vb = store.put(a), store.put(b)
    fresh = LocalAudioStore(tmp_path / "audio", write_behind=False)
    for vid, audio in ((va, a), (vb, b)):
        np.testing.assert_array_equal(bits(fresh.get(vid)), bits(audio))
    store.compact()
    assert store.path(va).name.endswith(".f32.zst") and store.path(vb).name.endswith(".flac")
    assert not list((tmp_path / "audio").rglob("*.f32"))
    for vid, audio in ((va, a), (vb, b)):
        np.testing.assert_array_equal(bits(LocalAudioStore(tmp_path / "audio").get(vid)), bits(audio))

    # removed before its compaction: the compactor does not bring it back
    c = floaty(1.0, seed=3)
    slow = LocalAudioStore(tmp_path / "other", write_behind=False)
    vc = slow.put(c)
    slow.remove(vc)
    write_raw(tmp_path / "other" / vc[:2] / f"{vc}.f32", c)
    assert slow.remove(vc) and not slow.compact_one(vc) and not slow.exists(vc)

    # a raw file left behind by a stopped process
    d = floaty(1.0, seed=4)
    from memory.storage import audio_id

    vd = audio_id(d)
    write_raw(tmp_path / "audio" / vd[:2] / f"{vd}.f32", d)
    assert store.compact() == 1 and store.path(vd).name.endswith(".f32.zst")
    np.testing.assert_array_equal(bits(LocalAudioStore(tmp_path / "audio").get(vd)), bits(d))


def test_a_damaged_stored_file_is_a_clear_error_not_a_crash(tmp_path):
    """Versions are read block by block from their files: a truncated FLAC, zstd or raw file is 'damaged'
    (KeyError with the reason), never a partial array."""
    store = LocalAudioStore(tmp_path / "audio", write_behind=False)
    ids = {"flac": store.put(pcm16(1.0, seed=5)), "zst": store.put(floaty(1.0, seed=6))}
    from memory.storage import audio_id, write_raw

    loose = floaty(1.0, seed=7)  # the raw form a write-behind store leaves until its compactor runs
    ids["f32"] = audio_id(loose)
    write_raw(tmp_path / "audio" / ids["f32"][:2] / f"{ids['f32']}.f32", loose)
    for vid in ids.values():
        owner = store
        path = owner.path(vid)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        with pytest.raises(KeyError, match="damaged"):
            type(owner)(path.parents[1]).get(vid)
