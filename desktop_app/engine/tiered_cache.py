"""A two-level store: a memory LRU for this session, a size-capped disk folder for the next.

The embedding cache (photo embeddings) and the prompt cache (the KV state after a prompt) are
both regenerable, keyed by a hex digest, and too slow to recompute to lose at a restart. This
holds what they share: memory first, then disk; disk files written atomically at the end of a run
(``flush``, keeping the write out of the time to first token); the folder trimmed to its limit,
least recently used first out; an unreadable file dropped, never an error. Subclasses say how a
value becomes bytes and back (``_encode``/``_decode``) and how big it is in memory.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import OrderedDict
from pathlib import Path
from typing import Generic, TypeVar

from desktop_app.errors import disk_full_error, is_disk_full

logger = logging.getLogger(__name__)

V = TypeVar("V")


class CorruptEntry(ValueError):
    """A cache file that cannot be decoded (cut short, overwritten, from another version)."""


class TieredCache(Generic[V]):
    """Memory LRU (``memory_bytes``) over a disk folder (``disk_bytes``) of ``KEY[:2]/KEY+suffix``."""

    suffix = ".bin"
    default_memory_bytes = 256 * 1024 * 1024
    default_disk_bytes = 1024 * 1024 * 1024

    def __init__(
        self, folder: Path | None, *, memory_bytes: int | None = None, disk_bytes: int | None = None
    ) -> None:
        self.folder = folder
        self.memory_bytes = self.default_memory_bytes if memory_bytes is None else memory_bytes
        self.disk_bytes = self.default_disk_bytes if disk_bytes is None else disk_bytes
        self._memory: OrderedDict[str, V] = OrderedDict()
        self._memory_used = 0
        self._pending: dict[str, V] = {}
        self.hits = 0
        self.misses = 0

    # -- what a subclass provides -------------------------------------------------------------

    def _encode(self, value: V) -> bytes:
        raise NotImplementedError

    def _decode(self, key: str, data: bytes) -> V:
        """The value stored in ``data``; ``CorruptEntry`` if it is not a valid entry for ``key``."""
        raise NotImplementedError

    def _nbytes(self, value: V) -> int:
        raise NotImplementedError

    # -- the store ----------------------------------------------------------------------------

    @property
    def memory_used(self) -> int:
        """Bytes the values kept in memory hold (``memory_bytes`` is the cap)."""
        return self._memory_used

    def path(self, key: str) -> Path | None:
        """Where ``key`` lives on disk (None for a memory-only cache)."""
        return self.folder / key[:2] / f"{key}{self.suffix}" if self.folder is not None else None

    def _lookup(self, key: str) -> V | None:
        """The value of ``key`` from memory, else from disk (then kept in memory); None if absent.

        Hit and miss counts are the caller's: a value of the wrong shape is still a miss.
        """
        value = self._memory.get(key)
        if value is not None:
            self._memory.move_to_end(key)
            return value
        path = self.path(key)
        if path is None or not path.is_file():
            return None
        try:
            value = self._decode(key, path.read_bytes())
        except (OSError, CorruptEntry) as err:
            logger.warning("dropping unreadable cache file %s: %s", path, err)
            self._remove(path)
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # most recently used survives trimming
        self._remember(key, value)
        return value

    def has(self, key: str) -> bool:
        """Whether ``key`` is held in memory or on disk, without reading it or making it recent
        (a question about the next run must not change which entries that run finds). A
        damaged disk file still counts: the run finds out and drops it."""
        if key in self._memory or key in self._pending:
            return True
        path = self.path(key)
        return path is not None and path.is_file()

    def put(self, key: str, value: V) -> None:
        """Keep ``value`` in memory now; it goes to disk at the next ``flush``."""
        self._remember(key, value)
        if self.folder is not None:
            self._pending[key] = value

    def discard(self, key: str) -> None:
        """Forget ``key`` everywhere (an entry llama.cpp refused must not be offered again)."""
        old = self._memory.pop(key, None)
        if old is not None:
            self._memory_used -= self._nbytes(old)
        self._pending.pop(key, None)
        path = self.path(key)
        if path is not None:
            self._remove(path)

    def flush(self) -> None:
        """Write pending values to disk (atomically), then trim the folder to its limit.

        No fsync: the cache is regenerable, and a file cut short by a power loss fails to decode
        and is dropped. A full or read-only disk only loses the cache, never the story.
        """
        pending, self._pending = self._pending, {}
        written = False
        for key, value in pending.items():
            path = self.path(key)
            assert path is not None
            tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
            try:
                data = self._encode(value)
                if len(data) > self.disk_bytes:
                    continue  # it would evict everything else and then itself
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp.write_bytes(data)
                os.replace(tmp, path)
                written = True
            except OSError as err:
                self._remove(tmp)
                if is_disk_full(err, path.parent):
                    # Every other entry would fail the same way: the run goes on without them.
                    full = disk_full_error(
                        path.parent.parent,
                        what="the cache",
                        kept="nothing was lost: the story goes on, only slower next time",
                        then="the next run caches again",
                    )
                    logger.warning("%s (%d entries not kept)", full, len(pending))
                    break
                logger.warning("cannot write cache file %s: %s", path, err)
        if written:
            self._trim_disk()

    def clear_memory(self) -> None:
        self._memory.clear()
        self._memory_used = 0

    def _remember(self, key: str, value: V) -> None:
        size = self._nbytes(value)
        if size > self.memory_bytes:
            return
        old = self._memory.pop(key, None)
        if old is not None:
            self._memory_used -= self._nbytes(old)
        self._memory[key] = value
        self._memory_used += size
        while self._memory_used > self.memory_bytes and self._memory:
            _, evicted = self._memory.popitem(last=False)
            self._memory_used -= self._nbytes(evicted)

    @staticmethod
    def _remove(path: Path) -> None:
        with contextlib.suppress(OSError):
            path.unlink()

    def _trim_disk(self) -> None:
        if self.folder is None or not self.folder.is_dir():
            return
        entries = []
        for path in self.folder.glob(f"*/*{self.suffix}"):
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
