"""The S3-compatible audio store (memory/objectstore.py) against a real S3 server (moto's, tests/s3server.py):
versions and blobs round-trip bit-identical, two nodes with their own disk caches share one bucket, the
disk cache stays within its budget, presigned URLs serve the bytes, and a bad configuration is a clear
error. Also the API on it: a download through `?redirect=true` is a 307 to the same bytes."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("boto3")

from memory.objectstore import S3AudioStore, open_s3_store, parse_url
from memory.storage import AudioStore, StorageError
from tests.s3server import ACCESS_KEY, REGION, SECRET_KEY, s3_server  # noqa: F401  (fixture)
from tools.audio import Audio


def bits(audio: Audio) -> np.ndarray:
    return audio.samples.view(np.uint32)


def pcm16(seconds: float, seed: int) -> Audio:
    ints = np.random.default_rng(seed).integers(-32768, 32768, (2, int(seconds * 48000)))
    return Audio((ints / 32768).astype(np.float32), 48000)


def floaty(seconds: float, seed: int) -> Audio:
    x = np.random.default_rng(seed).standard_normal((2, int(seconds * 48000))) * 0.2
    return Audio(x.astype(np.float32), 48000)


def open_node(server, bucket: str, cache_dir, *, prefix: str = "pre/fix", cache_bytes: int = 64 << 20):
    return open_s3_store(
        f"s3://{bucket}/{prefix}",
        endpoint_url=server.endpoint,
        region=REGION,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        allow_http=True,
        cache_dir=cache_dir,
        cache_bytes=cache_bytes,
    )


@pytest.fixture
def bucket(s3_server):  # noqa: F811
    return s3_server.new_bucket()


def test_versions_round_trip_between_two_nodes(s3_server, bucket, tmp_path):  # noqa: F811
    one = open_node(s3_server, bucket, tmp_path / "one")
    two = open_node(s3_server, bucket, tmp_path / "two")  # another machine: its own empty cache
    assert isinstance(one, AudioStore)
    a, b = pcm16(0.5, 1), floaty(0.5, 2)
    ia, ib = one.put(a), one.put(b)
    assert sorted(two.ids()) == sorted([ia, ib])
    for vid, audio in ((ia, a), (ib, b)):
        assert two.exists(vid)
        np.testing.assert_array_equal(bits(two.get(vid)), bits(audio))
    keys = {
        o["Key"]: o["Size"] for o in s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]
    }  # the layout: under the prefix, encoded by content
    assert keys == {
        f"pre/fix/audio/{ia[:2]}/{ia}.flac": two.nbytes(ia),
        f"pre/fix/audio/{ib[:2]}/{ib}.f32.zst": two.nbytes(ib),
    }
    assert two.nbytes(ia) < a.samples.nbytes * 0.55
    # the second node read them once: now from its disk cache, with the bucket's copy gone it still reads
    assert two.remove(ia) and not two.remove(ia)
    assert not one.exists(ia) and list(one.ids()) == [ib]
    with pytest.raises(KeyError):
        open_node(s3_server, bucket, tmp_path / "three").get(ia)
    with pytest.raises(KeyError):
        two.nbytes(ia)
    assert one.put(a) == ia and two.exists(ia)  # put again after a remove elsewhere: stored again


def test_the_disk_cache_holds_what_a_node_read_within_its_budget(s3_server, bucket, tmp_path):  # noqa: F811
    writer = open_node(s3_server, bucket, tmp_path / "w")
    audios = [floaty(0.5, seed) for seed in range(5)]
    ids = [writer.put(a) for a in audios]
    size = writer.nbytes(ids[0])
    budget = int(size * 2.5)
    reader = open_node(s3_server, bucket, tmp_path / "r", cache_bytes=budget)
    reader._decoded.max_bytes = 0  # measure the disk cache alone
    for vid, audio in zip(ids, audios, strict=True):
        np.testing.assert_array_equal(bits(reader.get(vid)), bits(audio))
        on_disk = sum(p.stat().st_size for p in (tmp_path / "r").rglob("*") if p.is_file())
        assert on_disk <= budget
    cached = [p.name.split(".")[0] for p in (tmp_path / "r").rglob("*.f32.zst")]
    assert ids[-1] in cached and ids[0] not in cached  # the most recent stay
    # a cached version is read without the bucket: remove it behind the reader's back
    s3_server.client().delete_object(Bucket=bucket, Key=f"pre/fix/audio/{ids[-1][:2]}/{ids[-1]}.f32.zst")
    np.testing.assert_array_equal(bits(reader.get(ids[-1])), bits(audios[-1]))


def test_blobs_and_a_presigned_url(s3_server, bucket, tmp_path):  # noqa: F811
    import httpx

    store = open_node(s3_server, bucket, tmp_path / "c")
    store.put_blob("renditions/index/ab/x.wav-24", b"0123")
    src = tmp_path / "r.flac"
    payload = bytes(range(256)) * 1000
    src.write_bytes(payload)
    store.put_blob("renditions/ab/abc.flac", src)
    assert not src.exists()
    other = open_node(s3_server, bucket, tmp_path / "d")
    assert other.read_blob("renditions/index/ab/x.wav-24") == b"0123"
    assert other.blob_size("renditions/ab/abc.flac") == len(payload)
    assert other.read_blob("renditions/none") is None and other.blob_size("renditions/none") is None
    path = other.blob_path("renditions/ab/abc.flac")
    assert path is not None and path.read_bytes() == payload and (tmp_path / "d") in path.parents
    assert other.blob_path("renditions/none") is None
    assert sorted(other.blob_keys("renditions")) == ["renditions/ab/abc.flac", "renditions/index/ab/x.wav-24"]
    url = other.blob_url(
        "renditions/ab/abc.flac", expires_s=60, filename="song.flac", media_type="audio/flac"
    )
    assert url is not None and url.startswith(s3_server.endpoint) and "Signature" in url
    r = httpx.get(url)
    assert r.status_code == 200 and r.content == payload
    assert 'filename="song.flac"' in r.headers.get("content-disposition", "")
    assert other.remove_blob("renditions/ab/abc.flac") and not other.remove_blob("renditions/ab/abc.flac")
    assert store.blob_size("renditions/ab/abc.flac") is None
    with pytest.raises(ValueError):
        store.put_blob("../escape", b"x")


def test_configuration_errors_say_what_to_fix(s3_server, tmp_path):  # noqa: F811
    with pytest.raises(StorageError, match="does not exist") as err:
        open_node(s3_server, "no-such-bucket-here", tmp_path)
    assert "no-such-bucket-here" in str(err.value) and "MIXPILOT_STORAGE_URL" in str(err.value)
    with pytest.raises(StorageError, match="MIXPILOT_STORAGE_ALLOW_HTTP"):
        open_s3_store("s3://b", endpoint_url=s3_server.endpoint, access_key_id="a", secret_access_key="b")
    with pytest.raises(StorageError, match="s3://BUCKET"):
        parse_url("https://bucket/prefix")
    with pytest.raises(StorageError, match="or neither"):
        open_s3_store("s3://b", endpoint_url=s3_server.endpoint, allow_http=True, access_key_id="a")
    assert parse_url("s3://b/a/b/") == ("b", "a/b/") and parse_url("s3://b") == ("b", "")


def test_settings_choose_the_backend(s3_server, bucket, tmp_path):  # noqa: F811
    from app.runtime import open_store
    from memory.storage import LocalAudioStore
    from tests.apiclient import make_settings

    assert isinstance(open_store(make_settings(tmp_path / "a")), LocalAudioStore)
    settings = make_settings(
        tmp_path / "b",
        storage_url=f"s3://{bucket}/p",
        storage_endpoint_url=s3_server.endpoint,
        storage_access_key_id=ACCESS_KEY,
        storage_secret_access_key=SECRET_KEY,
        storage_allow_http=True,
        storage_cache_mb=1,
    )
    store = open_store(settings)
    assert isinstance(store, S3AudioStore) and store.prefix == "p/"
    assert store.disk is not None and store.disk.max_bytes == 1024 * 1024
    assert tmp_path / "b" in store.disk.root.parents


def test_api_download_redirects_to_a_presigned_url_of_the_same_bytes(s3_server, bucket, tmp_path):  # noqa: F811
    import httpx
    from fastapi.testclient import TestClient

    from app.api.main import create_app
    from tests.apiclient import make_settings, register, upload

    settings = make_settings(
        tmp_path / "data",
        job_runner="thread",
        storage_url=f"s3://{bucket}/api",
        storage_endpoint_url=s3_server.endpoint,
        storage_access_key_id=ACCESS_KEY,
        storage_secret_access_key=SECRET_KEY,
        storage_allow_http=True,
    )
    with TestClient(create_app(settings)) as api:
        h = register(api)
        f = upload(api, h)
        direct = api.get(f"/api/v1/files/{f['id']}/download", params={"format": "flac"}, headers=h)
        assert direct.status_code == 200, direct.text
        r = api.get(
            f"/api/v1/files/{f['id']}/download",
            params={"format": "flac", "redirect": "true"},
            headers=h,
            follow_redirects=False,
        )
        assert r.status_code == 307 and r.headers["etag"] == direct.headers["etag"]
        fetched = httpx.get(r.headers["location"])
        assert fetched.status_code == 200 and fetched.content == direct.content
    # nothing of the audio in the data dir but the cache: versions and renditions are in the bucket
    names = {o["Key"].split("/")[1] for o in s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]}
    assert names == {"audio", "renditions"}
    assert not (tmp_path / "data" / "audio").exists() or not any((tmp_path / "data" / "audio").rglob("*.*"))


def test_ready_checks_the_bucket(s3_server, bucket, tmp_path):  # noqa: F811
    """/ready says the object store answers, and is a 503 naming the bucket when it does not."""
    from fastapi.testclient import TestClient

    from app.api.main import create_app
    from tests.apiclient import make_settings

    def settings(name: str, data: str):
        return make_settings(
            tmp_path / data,
            job_runner="thread",
            storage_url=f"s3://{name}/api",
            storage_endpoint_url=s3_server.endpoint,
            storage_access_key_id=ACCESS_KEY,
            storage_secret_access_key=SECRET_KEY,
            storage_allow_http=True,
        )

    with TestClient(create_app(settings(bucket, "ok"))) as api:
        r = api.get("/ready")
        assert r.status_code == 200, r.text
        assert "S3AudioStore reachable" in r.json()["checks"]["storage"]["detail"]
        client = s3_server.client()  # the bucket goes away under a running service
        for obj in client.list_objects_v2(Bucket=bucket).get("Contents", []):
            client.delete_object(Bucket=bucket, Key=obj["Key"])
        client.delete_bucket(Bucket=bucket)
        r = api.get("/ready")
        assert r.status_code == 503
        storage = r.json()["checks"]["storage"]
        assert not storage["ok"] and f"bucket '{bucket}' does not exist" in storage["detail"]
