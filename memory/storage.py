"""Audio file storage: every version of every recording, by id, in the data dir.

Versions are content-addressed (sha256 of sample rate, shape and samples), so storing
the same audio twice costs nothing and an id always means the same sound. Files are
32-bit float WAV (lossless for our float32 pipeline), written atomically. A small LRU of
decoded `Audio` keeps a conversation's recent versions in memory, bounded in bytes (a version
larger than the whole budget is never kept), so memory does not grow with what users upload.

`export` writes a version at 16/24 bits with TPDF dither seeded by the version's id: the same
download is the same bytes every time (caches and checksums hold).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from tools.audio import Audio, AudioError, load, save

_ID = re.compile(r"^[0-9a-f]{32}$")
#: decoded audio kept in memory per store (float32 samples)
DEFAULT_CACHE_BYTES = 256 * 1024 * 1024


def audio_id(audio: Audio) -> str:
    h = hashlib.sha256()
    h.update(f"{audio.sample_rate}:{audio.channels}:{audio.frames}:".encode())
    h.update(np.ascontiguousarray(audio.samples).data)  # the buffer itself: no bytes copy of a long recording
    return h.hexdigest()[:32]


class AudioStore:
    def __init__(
        self, root: str | Path, *, cache_items: int = 16, cache_bytes: int = DEFAULT_CACHE_BYTES
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._cache: OrderedDict[str, Audio] = OrderedDict()
        self._cache_items = cache_items
        self.cache_bytes = cache_bytes
        self._cached_bytes = 0
        self._lock = threading.Lock()

    def path(self, version_id: str) -> Path:
        if not _ID.match(version_id or ""):
            raise KeyError(f"no audio version '{version_id}'")
        return self.root / version_id[:2] / f"{version_id}.wav"

    def put(self, audio: Audio) -> str:
        vid = audio_id(audio)
        p = self.path(vid)
        if not p.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
            save(audio, p, bit_depth=32)
        self._remember(vid, audio)
        return vid

    def get(self, version_id: str) -> Audio:
        with self._lock:
            if version_id in self._cache:
                self._cache.move_to_end(version_id)
                return self._cache[version_id]
        p = self.path(version_id)
        if not p.exists():
            raise KeyError(f"no audio version '{version_id}'")
        try:
            audio = load(p, max_duration_s=None)
        except AudioError as exc:
            raise KeyError(f"audio version '{version_id}' is damaged: {exc}") from None
        self._remember(version_id, audio)
        return audio

    def remove(self, version_id: str) -> bool:
        """Delete a stored version (its file and its cached decode); False when it was not stored."""
        with self._lock:
            old = self._cache.pop(version_id, None)
            if old is not None:
                self._cached_bytes -= int(old.samples.nbytes)
        try:
            p = self.path(version_id)
        except KeyError:
            return False
        existed = p.exists()
        p.unlink(missing_ok=True)
        return existed

    def exists(self, version_id: str) -> bool:
        try:
            return self.path(version_id).exists()
        except KeyError:
            return False

    def export(
        self,
        version_id: str,
        path: str | Path,
        *,
        format: str | None = None,
        bit_depth: int | None = None,
        mp3_bitrate_kbps: int = 320,
    ) -> Path:
        """`tools.audio.save` of a version, with its 16/24-bit dither seeded by the version id (deterministic)."""
        audio = self.get(version_id)
        fmt = (format or Path(path).suffix.lstrip(".")).lower()
        depth = bit_depth or 24
        if fmt in ("wav", "flac") and depth in (16, 24):
            rng = np.random.default_rng(int(version_id, 16))
            return save(audio, path, format=format, bit_depth=depth, rng=rng)
        return save(audio, path, format=format, bit_depth=bit_depth, mp3_bitrate_kbps=mp3_bitrate_kbps)

    @property
    def cached_bytes(self) -> int:
        return self._cached_bytes

    def _remember(self, vid: str, audio: Audio) -> None:
        size = int(audio.samples.nbytes)
        with self._lock:
            old = self._cache.pop(vid, None)
            if old is not None:
                self._cached_bytes -= int(old.samples.nbytes)
            if size > self.cache_bytes:
                return
            self._cache[vid] = audio
            self._cached_bytes += size
            while self._cache and (
                len(self._cache) > self._cache_items or self._cached_bytes > self.cache_bytes
            ):
                _, dropped = self._cache.popitem(last=False)
                self._cached_bytes -= int(dropped.samples.nbytes)
