"""Audio storage: every version of every recording by id, and the blobs made from them (download renditions).

`AudioStore` is the contract; two backends implement it: `LocalAudioStore` (a folder in the data dir,
the embedded default) and `memory.objectstore.S3AudioStore` (S3-compatible object storage, chosen by
``MIXPILOT_STORAGE_URL``; what API processes and workers on several machines share).
`app.runtime.open_store` builds the one the settings name.

Versions are content-addressed (sha256 of sample rate, shape and samples), so storing the same audio
twice costs nothing and an id always means the same sound, whatever the backend or the encoding.

Encoding (lossless; `encode`/`decode`, the same for every backend): a version whose float32 samples are
all exactly 24-bit values (every decoded 16/24-bit upload) is stored as 24-bit FLAC; any other (the float
output of processing) as its float32 bytes compressed with zstd. Reading back gives the same float32 bits (FLAC holds
the integers exactly; the zstd form is the bytes themselves). Measured on the music fixtures scaled to a
3-minute stereo version (``python bench/storage.py``): float WAV 63.5 MB; the decoded 16-bit uploads as
FLAC 24 10-22 MB (23% on average); the mastered float output as zstd level 6 36-47 MB (67% on average;
the low mantissa bits of processed float audio are noise: no lossless coder removes them, and FLAC cannot
hold them at all). zstd levels on one mastered excerpt: 1: 93% at 87 MB/s, 3: 77% at 42 MB/s, 6: 68% at
20 MB/s, 9: 65% at 12 MB/s, 19: 56% at 0.4 MB/s (minutes per version: too slow for a turn); level 6 costs
about 3 s per 3-minute version on one core. Splitting the bytes into planes first helps integer-valued
audio only (which goes to FLAC), not processed audio.
Versions written before this (32-bit float WAV, ``<id>.wav``) still read.

A small LRU of decoded `Audio` keeps a conversation's recent versions in memory, bounded in bytes (a version
larger than the whole budget is never kept), so memory does not grow with what users upload.

`export` writes a version at 16/24 bits with TPDF dither seeded by the version's id: the same download is
the same bytes every time (caches and checksums hold).

Blobs are opaque files under a relative key (``renditions/ab/<sha256>.flac``): `put_blob`, `read_blob`
(small ones), `blob_size`, `blob_path` (a local file with the bytes: the file itself, or the object store's disk-cache
copy), `blob_url` (a presigned URL where the backend has them), `remove_blob`, `blob_keys`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import queue
import re
import struct
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from tools.audio import Audio, AudioError, load, save

log = logging.getLogger("mixpilot.storage")

_ID = re.compile(r"^[0-9a-f]{32}$")
_KEY = re.compile(r"^(?!/)(?!.*(?:^|/)\.\.?(?:/|$))[A-Za-z0-9_.\-/]{1,512}$")
#: decoded audio kept in memory per store (float32 samples)
DEFAULT_CACHE_BYTES = 256 * 1024 * 1024
#: the encodings a version may be stored in, in the order they are looked for (".wav": written before
#: compression; read only)
#: in the order a reader looks: the compressed forms, then ``.f32`` (raw float32 behind the zstd header: what a
#: write-behind store writes first, for a fast turn, before its compactor re-encodes it), then old float WAVs
SUFFIXES = (".flac", ".f32.zst", ".f32", ".wav")
ZSTD_LEVEL = 6
_ZMAGIC = b"MPZ1"
_ZHEAD = struct.Struct("<4sIHQ")  # magic, sample rate, channels, frames
_FLAC_MAX_CHANNELS = 8
_FLAC_MAX_RATE = 655_350


class StorageError(RuntimeError):
    """The storage backend cannot be used (a missing bucket, refused credentials, a bad URL); the message
    says what to fix."""


def audio_id(audio: Audio) -> str:
    h = hashlib.sha256()
    h.update(f"{audio.sample_rate}:{audio.channels}:{audio.frames}:".encode())
    h.update(np.ascontiguousarray(audio.samples).data)  # the buffer itself: no bytes copy of a long recording
    return h.hexdigest()[:32]


def check_id(version_id: str) -> str:
    """The id itself; KeyError (as for a version that is not stored) when it cannot be an id."""
    if not _ID.match(version_id or ""):
        raise KeyError(f"no audio version '{version_id}'")
    return version_id


def check_key(key: str) -> str:
    """A blob key: a relative path of plain names (ValueError otherwise: no '..', no absolute path)."""
    if not _KEY.match(key or ""):
        raise ValueError(f"bad blob key {key!r}: a relative path of letters, digits, '_', '-', '.' and '/'")
    return key


# --------------------------------------------------------------------------------------------- encoding


def exact_24bit(samples: np.ndarray) -> bool:
    """Whether every sample is k / 2**23 for an integer k in [-2**23, 2**23 - 1] (24-bit FLAC holds it
    exactly). Scaling by a power of two is exact in float32, so the test is exact. A negative zero is
    not (an integer has one zero; its bits would change, and with them the version's id)."""
    if samples.size == 0 or samples.min() < -1.0 or samples.max() >= 1.0:
        return False
    scaled = samples * np.float32(2**23)
    return bool(np.all(scaled == np.rint(scaled)) and not np.any(np.signbit(samples) & (samples == 0)))


def _flac_fits(audio: Audio | _RawFile) -> bool:
    """Whether 24-bit FLAC holds `audio` exactly (its channels and rate within FLAC's, every sample
    24-bit), checked block by block."""
    s = audio.samples if isinstance(audio, Audio) else audio
    return (
        audio.channels <= _FLAC_MAX_CHANNELS
        and 1 <= audio.sample_rate <= _FLAC_MAX_RATE
        and all(exact_24bit(s[:, i : i + _BLOCK]) for i in range(0, max(audio.frames, 1), _BLOCK))
    )


def encode(audio: Audio) -> tuple[str, bytes]:
    """(suffix, bytes): 24-bit FLAC when exact, else zstd-compressed float32."""
    if _flac_fits(audio):
        return ".flac", _encode_flac(audio)
    return ".f32.zst", _encode_zstd(audio)


def decode(suffix: str, data: bytes | Path) -> Audio:
    """The `Audio` of `encode`'s bytes (or a file of them; ``.wav`` for versions from before compression).
    Raises AudioError for damaged data."""
    if suffix == ".wav":
        if isinstance(data, Path):
            return load(data, max_duration_s=None)
        raise AudioError("a stored .wav version is read from its file")
    if isinstance(data, Path):
        return read_file(suffix, data)
    raw = data
    if suffix == ".flac":
        return _decode_flac(raw)
    if suffix == ".f32.zst":
        return _decode_zstd(raw)
    raise AudioError(f"unknown stored encoding '{suffix}'")


# ---- files, block by block: what the local store reads and writes (memory: the output array and one block)

_BLOCK = 1 << 18  # frames per block


def read_file(suffix: str, path: Path) -> Audio:
    """A stored version's file decoded straight into one float32 (channels, frames) array."""
    if suffix == ".flac":
        import soundfile as sf

        try:
            with sf.SoundFile(path) as f:
                out = np.empty((f.channels, f.frames), dtype=np.float32)
                at = 0
                for block in f.blocks(blocksize=_BLOCK, dtype="int32", always_2d=True):
                    block >>= 8
                    out[:, at : at + len(block)] = block.T
                    at += len(block)
                rate = f.samplerate
        except FileNotFoundError:
            raise
        except Exception as exc:  # libsndfile's errors carry no class of their own
            raise AudioError(f"damaged FLAC version ({exc})") from None
        if at != out.shape[1]:
            raise AudioError(f"damaged FLAC version: {at} of {out.shape[1]} frames")
        out *= np.float32(2.0**-23)
        return Audio(out, int(rate))
    if suffix in (".f32", ".f32.zst"):
        with path.open("rb") as f:
            head = f.read(_ZHEAD.size)
            if len(head) < _ZHEAD.size:
                raise AudioError("damaged version: shorter than its header")
            magic, rate, channels, frames = _ZHEAD.unpack(head)
            if magic != _ZMAGIC:
                raise AudioError("damaged version: not a mixpilot audio file")
            out = np.empty((channels, frames), dtype="<f4")
            view = out.data.cast("B")
            reader = _zstd().ZstdDecompressor().stream_reader(f) if suffix == ".f32.zst" else f
            got = 0
            try:
                while got < len(view):
                    n = reader.readinto(view[got:])
                    if not n:
                        break
                    got += n
            except Exception as exc:
                raise AudioError(f"damaged version ({exc})") from None
            if got != len(view):
                raise AudioError(f"damaged version: {got} bytes for {channels * frames} samples")
        return Audio(out.astype(np.float32, copy=False), int(rate))
    return decode(suffix, path.read_bytes())


def write_raw(path: Path, audio: Audio) -> None:
    """The ``.f32`` form at `path`, atomically, without a copy of the samples."""
    s = np.ascontiguousarray(audio.samples, dtype="<f4")
    head = _ZHEAD.pack(_ZMAGIC, audio.sample_rate, audio.channels, audio.frames)
    write_atomic(path, [head, s.data.cast("B")])


class _RawFile:
    """A ``.f32`` file read block by block with `os.pread` (neither loaded nor mapped: its pages do not
    count against the process while the compactor runs beside a turn)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        magic, self.sample_rate, self.channels, self.frames = _ZHEAD.unpack(os.pread(fd, _ZHEAD.size, 0))
        if magic != _ZMAGIC:
            raise AudioError("not a mixpilot audio file")

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        i, j = key[1].start or 0, min(key[1].stop, self.frames)
        out = np.empty((self.channels, max(j - i, 0)), dtype="<f4")
        for c in range(self.channels):
            at = _ZHEAD.size + 4 * (c * self.frames + i)
            out[c] = np.frombuffer(os.pread(self.fd, 4 * (j - i), at), dtype="<f4")
        return out


def write_encoded(folder: Path, vid: str, audio: Audio | _RawFile) -> str:
    """`encode`'s form of `audio` as ``folder/<vid><suffix>``, written block by block (a 30-minute stereo
    version is never held twice); the suffix."""
    s = audio.samples if isinstance(audio, Audio) else audio
    exact = _flac_fits(audio)
    suffix = ".flac" if exact else ".f32.zst"
    path = folder / f"{vid}{suffix}"
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
    try:
        if exact:
            import soundfile as sf

            os.close(fd)
            with sf.SoundFile(
                tmp, "w", audio.sample_rate, audio.channels, subtype="PCM_24", format="FLAC"
            ) as f:
                for i in range(0, audio.frames, _BLOCK):
                    ints = (s[:, i : i + _BLOCK].T * np.float32(2**23)).astype(np.int32)
                    ints <<= 8
                    f.write(ints)
        else:
            with os.fdopen(fd, "wb") as out:
                out.write(_ZHEAD.pack(_ZMAGIC, audio.sample_rate, audio.channels, audio.frames))
                cctx = _zstd().ZstdCompressor(level=ZSTD_LEVEL)
                with cctx.stream_writer(out, size=4 * audio.channels * audio.frames, closefd=False) as w:
                    for c in range(audio.channels):  # the (channels, frames) float32 bytes, in order
                        for i in range(0, audio.frames, _BLOCK):
                            block = s[:, i : i + _BLOCK][c]
                            w.write(np.ascontiguousarray(block, dtype="<f4").tobytes())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return suffix


def _encode_flac(audio: Audio) -> bytes:
    import soundfile as sf

    # integers in the top 24 bits of int32: libsndfile writes them to PCM_24 by shifting (no float scaling)
    ints = (audio.samples.T * np.float32(2**23)).astype(np.int32)
    ints <<= 8
    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", audio.sample_rate, audio.channels, subtype="PCM_24", format="FLAC") as f:
        f.write(ints)
    return buf.getvalue()


def _decode_flac(raw: bytes) -> Audio:
    import soundfile as sf

    try:
        ints, rate = sf.read(io.BytesIO(raw), dtype="int32", always_2d=True)
    except Exception as exc:  # libsndfile's errors carry no class of their own
        raise AudioError(f"damaged FLAC version ({exc})") from None
    ints >>= 8
    samples = ints.T.astype(np.float32)
    samples *= np.float32(2.0**-23)
    return Audio(samples, int(rate))


def _zstd():
    try:
        import zstandard
    except ImportError as exc:  # a dependency of mixpilot itself; only a broken install lacks it
        raise StorageError(f"zstandard is needed to store audio: pip install zstandard ({exc})") from None
    return zstandard


def _encode_zstd(audio: Audio) -> bytes:
    s = np.ascontiguousarray(audio.samples, dtype="<f4")
    head = _ZHEAD.pack(_ZMAGIC, audio.sample_rate, audio.channels, audio.frames)
    return head + _zstd().ZstdCompressor(level=ZSTD_LEVEL).compress(s.data)


def _decode_zstd(raw: bytes) -> Audio:
    if len(raw) < _ZHEAD.size:
        raise AudioError("damaged version: shorter than its header")
    magic, rate, channels, frames = _ZHEAD.unpack_from(raw)
    if magic != _ZMAGIC:
        raise AudioError("damaged version: not a mixpilot zstd audio file")
    n = channels * frames
    try:
        body = _zstd().ZstdDecompressor().decompress(raw[_ZHEAD.size :], max_output_size=4 * n)
    except Exception as exc:
        raise AudioError(f"damaged version ({exc})") from None
    if len(body) != 4 * n:
        raise AudioError(f"damaged version: {len(body)} bytes for {n} samples")
    samples = np.frombuffer(body, dtype="<f4").reshape(channels, frames).astype(np.float32)
    return Audio(samples, int(rate))


def export_audio(
    audio: Audio,
    version_id: str,
    path: str | Path,
    *,
    format: str | None = None,
    bit_depth: int | None = None,
    mp3_bitrate_kbps: int = 320,
) -> Path:
    """`tools.audio.save` of a version, with its 16/24-bit dither seeded by the version id (deterministic)."""
    fmt = (format or Path(path).suffix.lstrip(".")).lower()
    depth = bit_depth or 24
    if fmt in ("wav", "flac") and depth in (16, 24):
        rng = np.random.default_rng(int(version_id, 16))
        return save(audio, path, format=format, bit_depth=depth, rng=rng)
    return save(audio, path, format=format, bit_depth=bit_depth, mp3_bitrate_kbps=mp3_bitrate_kbps)


def write_atomic(path: Path, data: bytes | Path | list[bytes | memoryview]) -> None:
    """`data` (bytes, a file's bytes, or buffers one after another) at `path` by a rename: readers see the
    old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            if isinstance(data, Path):
                with data.open("rb") as src:
                    while chunk := src.read(1024 * 1024):
                        out.write(chunk)
            elif isinstance(data, list):
                for part in data:
                    out.write(part)
            else:
                out.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------------------------- contract


@runtime_checkable
class AudioStore(Protocol):
    """Where versions and blobs live. Every method may be called from several threads at once."""

    def put(self, audio: Audio) -> str:
        """Store `audio` (nothing when it is already stored); its content id."""
        ...

    def get(self, version_id: str) -> Audio:
        """The stored version; KeyError when it is not stored (or damaged)."""
        ...

    def exists(self, version_id: str) -> bool: ...

    def remove(self, version_id: str) -> bool:
        """Delete a stored version (and its cached copies); False when it was not stored."""
        ...

    def ids(self) -> Iterator[str]:
        """Every stored version id (no order)."""
        ...

    def nbytes(self, version_id: str) -> int:
        """Bytes the version takes in storage (encoded); KeyError when it is not stored."""
        ...

    def export(
        self,
        version_id: str,
        path: str | Path,
        *,
        format: str | None = None,
        bit_depth: int | None = None,
        mp3_bitrate_kbps: int = 320,
    ) -> Path: ...

    def put_blob(self, key: str, data: bytes | Path) -> None:
        """Store bytes under `key`, replacing what was there, atomically. A file (Path) is taken over:
        moved or uploaded, it is gone afterwards."""
        ...

    def read_blob(self, key: str) -> bytes | None:
        """A (small) blob's bytes; None when there is none."""
        ...

    def blob_size(self, key: str) -> int | None:
        """The blob's size in bytes; None when there is none."""
        ...

    def blob_path(self, key: str) -> Path | None:
        """A local file holding the blob's bytes (to serve or read); None when there is none."""
        ...

    def blob_url(
        self, key: str, *, expires_s: float, filename: str | None = None, media_type: str | None = None
    ) -> str | None:
        """A presigned URL a client can GET the blob from without us; None where the backend has none."""
        ...

    def remove_blob(self, key: str) -> bool: ...

    def blob_keys(self, prefix: str) -> Iterator[str]:
        """Keys of the blobs under `prefix` (a folder: ``renditions/index/ab``)."""
        ...


class DecodedCache:
    """An LRU of decoded versions, bounded in items and bytes (float32 samples)."""

    def __init__(self, *, items: int = 16, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self._cache: OrderedDict[str, Audio] = OrderedDict()
        self.items, self.max_bytes, self.nbytes = items, max_bytes, 0
        self._lock = threading.Lock()

    def get(self, vid: str) -> Audio | None:
        with self._lock:
            audio = self._cache.get(vid)
            if audio is not None:
                self._cache.move_to_end(vid)
            return audio

    def drop(self, vid: str) -> None:
        with self._lock:
            old = self._cache.pop(vid, None)
            if old is not None:
                self.nbytes -= int(old.samples.nbytes)

    def put(self, vid: str, audio: Audio) -> None:
        size = int(audio.samples.nbytes)
        with self._lock:
            old = self._cache.pop(vid, None)
            if old is not None:
                self.nbytes -= int(old.samples.nbytes)
            if size > self.max_bytes:
                return
            self._cache[vid] = audio
            self.nbytes += size
            while self._cache and (len(self._cache) > self.items or self.nbytes > self.max_bytes):
                _, dropped = self._cache.popitem(last=False)
                self.nbytes -= int(dropped.samples.nbytes)


# --------------------------------------------------------------------------------------------- local


class LocalAudioStore:
    """Versions under ``root/ab/<id>.<suffix>``; blobs under ``blob_root/<key>`` (default ``root/blobs``)."""

    def __init__(
        self,
        root: str | Path,
        *,
        blob_root: str | Path | None = None,
        cache_items: int = 16,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        write_behind: bool = True,
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.blob_root = Path(blob_root) if blob_root is not None else self.root / "blobs"
        self._decoded = DecodedCache(items=cache_items, max_bytes=cache_bytes)
        # write-behind: `put` writes the raw form (a 3-minute stereo version: ~0.2 s instead of ~1.1 s of zstd
        # at level 6 on one core) and a low-priority thread re-encodes it; `compact()` waits for that
        self.write_behind = write_behind
        self._pending: queue.Queue[str] = queue.Queue()
        self._compactor: threading.Thread | None = None
        self._swap = threading.Lock()  # a compaction's swap against `remove`

    # ---- versions

    def _candidates(self, version_id: str) -> list[Path]:
        check_id(version_id)
        d = self.root / version_id[:2]
        return [d / f"{version_id}{s}" for s in SUFFIXES]

    def _stored(self, version_id: str) -> Path | None:
        for p in self._candidates(version_id):
            if p.is_file():
                return p
        return None

    def path(self, version_id: str) -> Path:
        """The file holding a version (``<id>.wav``, which does not exist, when it is not stored)."""
        return self._stored(version_id) or self._candidates(version_id)[-1]

    def put(self, audio: Audio) -> str:
        vid = audio_id(audio)
        if self._stored(vid) is None:
            if self.write_behind:
                write_raw(self.root / vid[:2] / f"{vid}.f32", audio)
                self._queue(vid)
            else:
                write_encoded(self.root / vid[:2], vid, audio)
        self._decoded.put(vid, audio)
        return vid

    def get(self, version_id: str) -> Audio:
        cached = self._decoded.get(version_id)
        if cached is not None:
            return cached
        for attempt in range(2):  # the compactor may swap the raw file for its compressed form meanwhile
            p = self._stored(version_id)
            if p is None:
                raise KeyError(f"no audio version '{version_id}'")
            suffix = ".f32.zst" if p.name.endswith(".f32.zst") else p.suffix
            try:
                audio = decode(suffix, p)
                break
            except FileNotFoundError as exc:
                if attempt:
                    raise KeyError(f"audio version '{version_id}' is damaged: {exc}") from None
            except AudioError as exc:
                raise KeyError(f"audio version '{version_id}' is damaged: {exc}") from None
        self._decoded.put(version_id, audio)
        return audio

    # ---- write-behind compression

    def _queue(self, vid: str) -> None:
        self._pending.put(vid)
        if self._compactor is None or not self._compactor.is_alive():
            self._compactor = threading.Thread(target=self._compact_loop, name="audio-compactor", daemon=True)
            self._compactor.start()

    def _compact_loop(self) -> None:
        with contextlib.suppress(OSError, AttributeError):  # Linux: this thread alone at the lowest priority
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        while True:
            vid = self._pending.get()
            try:
                self.compact_one(vid)
            except Exception:  # the raw form stays readable; `mixpilot gc` compacts it later
                log.warning("could not compress audio version %s", vid, exc_info=True)
            finally:
                self._pending.task_done()

    def compact_one(self, vid: str) -> bool:
        """Re-encode a raw ``.f32`` version (FLAC 24 when exact, else zstd); False when there was none."""
        raw = self.root / vid[:2] / f"{vid}.f32"
        try:
            fd = os.open(raw, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            with self._swap:  # encoded under the lock: a `remove` meanwhile must not find the file come back
                if not raw.exists():
                    return False
                write_encoded(self.root / vid[:2], vid, _RawFile(fd))
                raw.unlink(missing_ok=True)
        finally:
            os.close(fd)
        return True

    def compact(self) -> int:
        """Wait for queued compressions, then compress any raw version left (by a process that stopped before
        its compactor got to it). The number compressed here."""
        self._pending.join()
        done = 0
        for d in sorted(self.root.glob("[0-9a-f][0-9a-f]")):
            for p in d.glob("*.f32"):
                vid = p.name.split(".", 1)[0]
                if _ID.match(vid) and self.compact_one(vid):
                    done += 1
        return done

    def exists(self, version_id: str) -> bool:
        try:
            return self._stored(version_id) is not None
        except KeyError:
            return False

    def remove(self, version_id: str) -> bool:
        self._decoded.drop(version_id)
        try:
            paths = self._candidates(version_id)
        except KeyError:
            return False
        existed = False
        with self._swap:
            for p in paths:
                try:
                    p.unlink()
                    existed = True
                except FileNotFoundError:
                    pass
        return existed

    def ids(self) -> Iterator[str]:
        seen: set[str] = set()
        for d in sorted(self.root.glob("[0-9a-f][0-9a-f]")):
            for p in d.iterdir():
                vid = p.name.split(".", 1)[0]
                if _ID.match(vid) and vid not in seen and not p.name.startswith("."):
                    seen.add(vid)
                    yield vid

    def nbytes(self, version_id: str) -> int:
        p = self._stored(version_id)
        if p is None:
            raise KeyError(f"no audio version '{version_id}'")
        return p.stat().st_size

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

    @property
    def cache_bytes(self) -> int:
        return self._decoded.max_bytes

    # ---- blobs

    def _blob(self, key: str) -> Path:
        return self.blob_root / check_key(key)

    def put_blob(self, key: str, data: bytes | Path) -> None:
        target = self._blob(key)
        if isinstance(data, Path):
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(data, target)  # the same file system: a rename
                return
            except OSError:
                write_atomic(target, data)
                data.unlink(missing_ok=True)
                return
        write_atomic(target, data)

    def read_blob(self, key: str) -> bytes | None:
        try:
            return self._blob(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def blob_size(self, key: str) -> int | None:
        try:
            return self._blob(key).stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            return None

    def blob_path(self, key: str) -> Path | None:
        p = self._blob(key)
        return p if p.is_file() else None

    def blob_url(
        self, key: str, *, expires_s: float, filename: str | None = None, media_type: str | None = None
    ) -> str | None:
        return None

    def remove_blob(self, key: str) -> bool:
        p = self._blob(key)
        existed = p.is_file()
        p.unlink(missing_ok=True)
        return existed

    def blob_keys(self, prefix: str) -> Iterator[str]:
        base = self._blob(prefix.rstrip("/"))
        if not base.is_dir():
            return
        for p in base.rglob("*"):
            if p.is_file() and not p.name.startswith("."):
                yield p.relative_to(self.blob_root).as_posix()
