"""Audio file storage: every version of every recording, by id, in the data dir.

Versions are content-addressed (sha256 of sample rate, shape and samples), so storing
the same audio twice costs nothing and an id always means the same sound. Files are
32-bit float WAV (lossless for our float32 pipeline), written atomically. A small LRU of
decoded `Audio` keeps a conversation's recent versions in memory.
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


def audio_id(audio: Audio) -> str:
    h = hashlib.sha256()
    h.update(f"{audio.sample_rate}:{audio.channels}:{audio.frames}:".encode())
    h.update(np.ascontiguousarray(audio.samples).tobytes())
    return h.hexdigest()[:32]


class AudioStore:
    def __init__(self, root: str | Path, *, cache_items: int = 16) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._cache: OrderedDict[str, Audio] = OrderedDict()
        self._cache_items = cache_items
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

    def exists(self, version_id: str) -> bool:
        try:
            return self.path(version_id).exists()
        except KeyError:
            return False

    def _remember(self, vid: str, audio: Audio) -> None:
        with self._lock:
            self._cache[vid] = audio
            self._cache.move_to_end(vid)
            while len(self._cache) > self._cache_items:
                self._cache.popitem(last=False)
