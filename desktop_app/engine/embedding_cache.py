"""Image embeddings computed once: in memory for this session, on disk for the next.

The vision encoder is the slow part of a run on a CPU, and llama-cpp-python's chat handlers
re-encode every photo on every call. An embedding depends only on the photo's pixels, the size it
was prepared to and the vision projector, so that triple is the key; a re-run of the same album
reads them back. Disk files are written atomically at the end of a run (``flush``) and the folder is
kept under a size limit (oldest used first out).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np

from desktop_app.engine.images import PREPARATION_VERSION

logger = logging.getLogger(__name__)

DEFAULT_MEMORY_BYTES = 512 * 1024 * 1024
DEFAULT_DISK_BYTES = 2 * 1024 * 1024 * 1024
_SUFFIX = ".npy"


def embedding_key(content_hash: str, prepared_size: tuple[int, int], projector_id: str) -> str:
    """The cache key of one photo's embedding (hex sha256)."""
    text = f"v{PREPARATION_VERSION}|{content_hash}|{prepared_size[0]}x{prepared_size[1]}|{projector_id}"
    return hashlib.sha256(text.encode()).hexdigest()


class EmbeddingCache:
    """A two-level (memory LRU, disk folder) store of float32 ``(tokens, width)`` arrays."""

    def __init__(
        self,
        folder: Path | None,
        *,
        memory_bytes: int = DEFAULT_MEMORY_BYTES,
        disk_bytes: int = DEFAULT_DISK_BYTES,
    ) -> None:
        self.folder = folder
        self.memory_bytes = memory_bytes
        self.disk_bytes = disk_bytes
        self._memory: OrderedDict[str, np.ndarray] = OrderedDict()
        self._memory_used = 0
        self.hits = 0
        self.misses = 0
        self._pending: dict[str, np.ndarray] = {}

    def _path(self, key: str) -> Path | None:
        return self.folder / key[:2] / f"{key}{_SUFFIX}" if self.folder is not None else None

    def get(self, key: str, shape: tuple[int, int]) -> np.ndarray | None:
        """The cached embedding of ``key`` if it has ``shape``; None otherwise."""
        array = self._memory.get(key)
        if array is not None and array.shape == shape:
            self._memory.move_to_end(key)
            self.hits += 1
            return array
        path = self._path(key)
        if path is not None and path.is_file():
            try:
                array = np.load(path, allow_pickle=False)
            except (OSError, ValueError) as err:
                logger.warning("dropping unreadable cached embedding %s: %s", path, err)
                self._remove(path)
                array = None
            if array is not None and array.shape == shape and array.dtype == np.float32:
                os.utime(path)  # most recently used survives trimming
                self._remember(key, array)
                self.hits += 1
                return array
            if array is not None:
                logger.debug("cached embedding %s has shape %s, not %s", path, array.shape, shape)
        self.misses += 1
        return None

    def put(self, key: str, array: np.ndarray) -> None:
        """Keep ``array`` in memory now; it goes to disk at the next ``flush``.

        Deferring the disk write keeps it out of the time to first token.
        """
        array = np.ascontiguousarray(array, dtype=np.float32)
        self._remember(key, array)
        if self.folder is not None:
            self._pending[key] = array

    def flush(self) -> None:
        """Write pending embeddings to disk (atomically), then trim the folder to its limit.

        No fsync: the cache is regenerable, and a file cut short by a power loss fails to load
        and is dropped. A full or read-only disk only loses the cache, never the story.
        """
        pending, self._pending = self._pending, {}
        written = False
        for key, array in pending.items():
            path = self._path(key)
            assert path is not None
            buffer = io.BytesIO()
            np.save(buffer, array, allow_pickle=False)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp.write_bytes(buffer.getvalue())
                os.replace(tmp, path)
                written = True
            except OSError as err:
                logger.warning("cannot write embedding cache %s: %s", path, err)
                self._remove(tmp)
        if written:
            self._trim_disk()

    def clear_memory(self) -> None:
        self._memory.clear()
        self._memory_used = 0

    def _remember(self, key: str, array: np.ndarray) -> None:
        if array.nbytes > self.memory_bytes:
            return
        old = self._memory.pop(key, None)
        if old is not None:
            self._memory_used -= old.nbytes
        self._memory[key] = array
        self._memory_used += array.nbytes
        while self._memory_used > self.memory_bytes and self._memory:
            _, evicted = self._memory.popitem(last=False)
            self._memory_used -= evicted.nbytes

    @staticmethod
    def _remove(path: Path) -> None:
        with contextlib.suppress(OSError):
            path.unlink()

    def _trim_disk(self) -> None:
        if self.folder is None or not self.folder.is_dir():
            return
        entries = []
        for path in self.folder.glob(f"*/*{_SUFFIX}"):
            try:
                stat = path.stat()
            except OSError:
                continue
            entries.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if total <= self.disk_bytes:
                break
            self._remove(path)
            total -= size
