"""`AudioStore` on S3-compatible object storage (AWS S3, MinIO, Ceph, R2, GCS's S3 API).

Chosen by ``MIXPILOT_STORAGE_URL=s3://BUCKET[/PREFIX]``: every API process and worker that names the same
bucket sees the same versions and downloads, on any machine, with no shared disk. Layout under the prefix:
``audio/<id[:2]>/<id>.flac|.f32.zst`` (versions, encoded by `memory.storage.encode`: content-addressed,
so two nodes writing the same version write the same object) and blobs under their keys
(``renditions/...``).

Client: boto3. It is the S3 SDK every S3-compatible server tests against (custom endpoint, path-style
addressing, region, presigned GETs with a response Content-Disposition), pure Python with wheels for every
platform, thread-safe clients (the API calls the store from its thread pool), and the test server
(moto) is built on the same botocore, so the tests need nothing besides. obstore (Rust, async-first) would
be faster for huge objects but adds a native wheel and an async API the store does not need: versions are
single objects of a few tens of MB read from worker threads.

A `DiskCache` in the data dir (``storage_cache_mb``) keeps the encoded versions and downloads this node
read or wrote: the versions of a conversation a worker is on are read from its own disk after the first
time. The decoded-audio LRU in memory (`memory.storage.DecodedCache`) sits in front of it, as for the
local store.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from memory.diskcache import DiskCache
from memory.storage import (
    _ID,
    DEFAULT_CACHE_BYTES,
    SUFFIXES,
    DecodedCache,
    StorageError,
    audio_id,
    check_id,
    check_key,
    decode,
    encode,
    export_audio,
)
from tools.audio import Audio, AudioError


def parse_url(url: str) -> tuple[str, str]:
    """(bucket, prefix ending in '/' or empty) of ``s3://bucket[/prefix]``; StorageError otherwise."""
    u = urlparse(url)
    if u.scheme != "s3" or not u.netloc:
        raise StorageError(f"MIXPILOT_STORAGE_URL={url!r}: expected s3://BUCKET[/PREFIX]")
    prefix = u.path.strip("/")
    return u.netloc, f"{prefix}/" if prefix else ""


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


class S3AudioStore:
    """Versions and blobs in one bucket under one prefix; see the module docstring."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        prefix: str = "",
        *,
        cache: DiskCache | None = None,
        cache_items: int = 16,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        where: str = "",
    ) -> None:
        self.client, self.bucket, self.prefix = client, bucket, prefix
        self.disk = cache
        self.where = where or f"s3://{bucket}/{prefix}"
        self._decoded = DecodedCache(items=cache_items, max_bytes=cache_bytes)

    # ---- plumbing

    def _key(self, rel: str) -> str:
        return f"{self.prefix}{rel}"

    @staticmethod
    def _vrel(version_id: str, suffix: str) -> str:
        return f"audio/{version_id[:2]}/{version_id}{suffix}"

    def check(self) -> None:
        """StorageError with what to fix when the bucket cannot be used."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = _code(exc)
            if code in ("404", "NoSuchBucket", "NotFound"):
                raise StorageError(
                    f"bucket '{self.bucket}' does not exist at {self.where}: create it, or fix "
                    "MIXPILOT_STORAGE_URL / MIXPILOT_STORAGE_ENDPOINT_URL"
                ) from None
            if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                raise StorageError(
                    f"bucket '{self.bucket}' at {self.where} refused these credentials ({code}): check "
                    "MIXPILOT_STORAGE_ACCESS_KEY_ID / MIXPILOT_STORAGE_SECRET_ACCESS_KEY"
                ) from None
            raise StorageError(f"bucket '{self.bucket}' at {self.where}: {exc}") from None
        except BotoCoreError as exc:
            raise StorageError(f"object storage at {self.where} not reachable: {exc}") from None

    def _list(self, rel_prefix: str) -> Iterator[tuple[str, int]]:
        """(key relative to the prefix, size) of every object whose key starts with `rel_prefix`."""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._key(rel_prefix)
        )
        for page in pages:
            for obj in page.get("Contents", ()):
                yield obj["Key"][len(self.prefix) :], int(obj["Size"])

    def _find(self, version_id: str) -> tuple[str, int] | None:
        """(suffix, size) of the stored version, or None."""
        check_id(version_id)
        found = dict(self._list(f"audio/{version_id[:2]}/{version_id}."))
        for suffix in SUFFIXES:
            size = found.get(self._vrel(version_id, suffix))
            if size is not None:
                return suffix, size
        return None

    def _cached_version(self, version_id: str) -> tuple[str, Path] | None:
        if self.disk is None:
            return None
        for suffix in SUFFIXES:
            p = self.disk.get(self._vrel(version_id, suffix))
            if p is not None:
                return suffix, p
        return None

    def _download(self, rel: str) -> Path:
        """The object's bytes in a local file: the disk cache's copy, or a temporary file (no cache)."""
        fd, tmp_name = tempfile.mkstemp(prefix=".dl-", dir=self.disk.root if self.disk is not None else None)
        import os

        os.close(fd)
        tmp = Path(tmp_name)
        try:
            self.client.download_file(self.bucket, self._key(rel), str(tmp))
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return self.disk.put(rel, tmp) if self.disk is not None else tmp

    # ---- versions

    def put(self, audio: Audio) -> str:
        vid = audio_id(audio)
        if self._find(vid) is None:
            suffix, data = encode(audio)
            rel = self._vrel(vid, suffix)
            self.client.put_object(Bucket=self.bucket, Key=self._key(rel), Body=data)
            if self.disk is not None:
                self.disk.put(rel, data)
        self._decoded.put(vid, audio)
        return vid

    def get(self, version_id: str) -> Audio:
        cached = self._decoded.get(version_id)
        if cached is not None:
            return cached
        local = self._cached_version(version_id)
        temporary = False
        if local is None:
            found = self._find(version_id)
            if found is None:
                raise KeyError(f"no audio version '{version_id}'")
            suffix = found[0]
            local = suffix, self._download(self._vrel(version_id, suffix))
            temporary = self.disk is None
        try:
            audio = decode(local[0], local[1])
        except (AudioError, FileNotFoundError) as exc:
            raise KeyError(f"audio version '{version_id}' is damaged: {exc}") from None
        finally:
            if temporary:
                local[1].unlink(missing_ok=True)
        self._decoded.put(version_id, audio)
        return audio

    def exists(self, version_id: str) -> bool:
        try:
            return self._find(version_id) is not None
        except KeyError:
            return False

    def remove(self, version_id: str) -> bool:
        self._decoded.drop(version_id)
        try:
            check_id(version_id)
        except KeyError:
            return False
        existed = False
        for rel, _ in list(self._list(f"audio/{version_id[:2]}/{version_id}.")):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(rel))
            existed = True
        if self.disk is not None:
            for suffix in SUFFIXES:
                self.disk.discard(self._vrel(version_id, suffix))
        return existed

    def ids(self) -> Iterator[str]:
        seen: set[str] = set()
        for rel, _ in self._list("audio/"):
            vid = rel.rsplit("/", 1)[-1].split(".", 1)[0]
            if _ID.match(vid) and vid not in seen:
                seen.add(vid)
                yield vid

    def nbytes(self, version_id: str) -> int:
        found = self._find(version_id)
        if found is None:
            raise KeyError(f"no audio version '{version_id}'")
        return found[1]

    def export(
        self,
        version_id: str,
        path: str | Path,
        *,
        format: str | None = None,
        bit_depth: int | None = None,
        mp3_bitrate_kbps: int = 320,
    ) -> Path:
        return export_audio(
            self.get(version_id),
            version_id,
            path,
            format=format,
            bit_depth=bit_depth,
            mp3_bitrate_kbps=mp3_bitrate_kbps,
        )

    @property
    def cached_bytes(self) -> int:
        """Bytes of decoded audio held in memory."""
        return self._decoded.nbytes

    # ---- blobs (cached on disk by key: write a key's bytes once, as content-addressed names are)

    def put_blob(self, key: str, data: bytes | Path) -> None:
        rel = check_key(key)
        if isinstance(data, Path):
            self.client.upload_file(str(data), self.bucket, self._key(rel))
            if self.disk is not None:
                self.disk.put(rel, data)
            else:
                data.unlink(missing_ok=True)
        else:
            self.client.put_object(Bucket=self.bucket, Key=self._key(rel), Body=data)
            if self.disk is not None:
                self.disk.discard(rel)

    def read_blob(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self._key(check_key(key)))
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        return bytes(obj["Body"].read())

    def blob_size(self, key: str) -> int | None:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(check_key(key)))
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        return int(head["ContentLength"])

    def blob_path(self, key: str) -> Path | None:
        rel = check_key(key)
        if self.disk is not None and (p := self.disk.get(rel)) is not None:
            return p
        if self.blob_size(rel) is None:
            return None
        return self._download(rel)

    def blob_url(
        self, key: str, *, expires_s: float, filename: str | None = None, media_type: str | None = None
    ) -> str | None:
        params: dict[str, str] = {"Bucket": self.bucket, "Key": self._key(check_key(key))}
        if filename:
            safe = filename.replace('"', "_").replace("\\", "_")
            params["ResponseContentDisposition"] = f'attachment; filename="{safe}"'
        if media_type:
            params["ResponseContentType"] = media_type
        return str(self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=int(expires_s)))

    def remove_blob(self, key: str) -> bool:
        rel = check_key(key)
        existed = self.blob_size(rel) is not None
        if existed:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(rel))
        if self.disk is not None:
            self.disk.discard(rel)
        return existed

    def blob_keys(self, prefix: str) -> Iterator[str]:
        for rel, _ in self._list(check_key(prefix.rstrip("/")) + "/"):
            yield rel


def make_client(
    *,
    endpoint_url: str | None = None,
    region: str = "us-east-1",
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    allow_http: bool = False,
) -> Any:
    """A boto3 S3 client; path-style addressing for a custom endpoint (MinIO, Ceph, test servers)."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError as exc:
        raise StorageError(f"S3 storage needs boto3: pip install 'mixpilot[s3]' ({exc})") from None
    if endpoint_url:
        scheme = urlparse(endpoint_url).scheme
        if scheme not in ("http", "https"):
            raise StorageError(
                f"MIXPILOT_STORAGE_ENDPOINT_URL={endpoint_url!r}: expected http(s)://HOST[:PORT]"
            )
        if scheme == "http" and not allow_http:
            raise StorageError(
                f"MIXPILOT_STORAGE_ENDPOINT_URL={endpoint_url!r} is plain http: set "
                "MIXPILOT_STORAGE_ALLOW_HTTP=true for a local store, or use https"
            )
    if (access_key_id is None) != (secret_access_key is None):
        raise StorageError(
            "set both MIXPILOT_STORAGE_ACCESS_KEY_ID and MIXPILOT_STORAGE_SECRET_ACCESS_KEY, or neither"
        )
    config = Config(
        region_name=region,
        signature_version="s3v4",
        retries={"max_attempts": 5, "mode": "standard"},
        s3={"addressing_style": "path" if endpoint_url else "auto"},
        connect_timeout=10,
        read_timeout=60,
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        config=config,
    )


def open_s3_store(
    url: str,
    *,
    endpoint_url: str | None = None,
    region: str = "us-east-1",
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    allow_http: bool = False,
    cache_dir: Path | None = None,
    cache_bytes: int = 0,
    check: bool = True,
) -> S3AudioStore:
    """The store of ``s3://bucket/prefix``; StorageError (what to fix) when the bucket cannot be used."""
    bucket, prefix = parse_url(url)
    client = make_client(
        endpoint_url=endpoint_url,
        region=region,
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
        allow_http=allow_http,
    )
    where = f"{endpoint_url or 'AWS S3'} (s3://{bucket}/{prefix})"
    disk = DiskCache(cache_dir, max_bytes=cache_bytes) if cache_dir is not None else None
    store = S3AudioStore(client, bucket, prefix, cache=disk, where=where)
    if check:
        store.check()
    return store
