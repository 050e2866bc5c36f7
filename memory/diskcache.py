"""A folder of files by key, bounded in bytes: the least recently used go first.

The object store keeps the versions and downloads a node has read or written here, so a worker reads the
versions of the conversation it is working on from its own disk, not the network. Files are written
atomically (a rename) and only ever replaced whole, so a reader sees a whole file or none. Several
processes of one node (the API and its job processes) may share the folder: each counts what it adds and,
over the budget, rescans the folder and removes the files used longest ago (a read touches the file's
mtime) until it is under 90% of the budget. The file just added is never the one removed, so a budget of
0 keeps exactly the last file.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from memory.storage import check_key, write_atomic

#: after an eviction the cache holds at most this share of its budget (so it does not rescan on every put)
LOW_WATER = 0.9


class DiskCache:
    def __init__(self, root: str | Path, *, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._total = self._scan_total()

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    def get(self, key: str) -> Path | None:
        """The cached file (marked as just used), or None."""
        p = self.path(key)
        try:
            os.utime(p)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return p

    def put(self, key: str, data: bytes | Path) -> Path:
        """Cache bytes, or take over a file (moved when it is on the same file system); the cached path."""
        p = self.path(key)
        if isinstance(data, Path):
            p.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(data, p)
            except OSError:
                write_atomic(p, data)
                data.unlink(missing_ok=True)
        else:
            write_atomic(p, data)
        size = p.stat().st_size
        with self._lock:
            self._total += size
            over = self._total > self.max_bytes
        if over:
            self._evict(keep=p)
        return p

    def discard(self, key: str) -> None:
        p = self.path(key)
        try:
            size = p.stat().st_size
            p.unlink()
        except (FileNotFoundError, NotADirectoryError):
            return
        with self._lock:
            self._total = max(0, self._total - size)

    @property
    def nbytes(self) -> int:
        """Bytes in the folder (as of the last count: other processes may have added some since)."""
        return self._total

    def _files(self) -> list[tuple[float, int, Path]]:
        found = []
        for p in self.root.rglob("*"):
            if p.name.startswith("."):  # a write in progress
                continue
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            if p.is_file():
                found.append((st.st_mtime, st.st_size, p))
        return found

    def _scan_total(self) -> int:
        return sum(size for _, size, _ in self._files())

    def _evict(self, *, keep: Path) -> None:
        with self._lock:
            files = sorted(self._files(), key=lambda f: f[0])
            total = sum(size for _, size, _ in files)
            target = int(self.max_bytes * LOW_WATER)
            for _, size, p in files:
                if total <= target:
                    break
                if p == keep:
                    continue
                try:
                    p.unlink()
                except FileNotFoundError:
                    pass
                total -= size
            self._total = total
