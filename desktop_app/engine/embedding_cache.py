"""Image embeddings computed once: in memory for this session, on disk for the next.

The vision encoder is the slow part of a run on a CPU, and llama-cpp-python's chat handlers
re-encode every photo on every call. An embedding depends only on the photo's pixels, the size it
was prepared to and the vision projector, so that triple is the key; a re-run of the same album
reads them back. The memory/disk mechanics (atomic writes at ``flush``, LRU trimming, unreadable
files dropped) are ``TieredCache``'s.
"""

from __future__ import annotations

import hashlib
import io
import logging

import numpy as np

from desktop_app.engine.images import PREPARATION_VERSION
from desktop_app.engine.tiered_cache import CorruptEntry, TieredCache

logger = logging.getLogger(__name__)

DEFAULT_MEMORY_BYTES = 512 * 1024 * 1024
DEFAULT_DISK_BYTES = 2 * 1024 * 1024 * 1024


def embedding_key(content_hash: str, prepared_size: tuple[int, int], projector_id: str) -> str:
    """The cache key of one photo's embedding (hex sha256)."""
    text = f"v{PREPARATION_VERSION}|{content_hash}|{prepared_size[0]}x{prepared_size[1]}|{projector_id}"
    return hashlib.sha256(text.encode()).hexdigest()


class EmbeddingCache(TieredCache[np.ndarray]):
    """A two-level (memory LRU, disk folder) store of float32 ``(tokens, width)`` arrays."""

    suffix = ".npy"
    default_memory_bytes = DEFAULT_MEMORY_BYTES
    default_disk_bytes = DEFAULT_DISK_BYTES

    def get(self, key: str, shape: tuple[int, int]) -> np.ndarray | None:
        """The cached embedding of ``key`` if it has ``shape``; None otherwise."""
        array = self._lookup(key)
        if array is not None and array.shape == shape:
            self.hits += 1
            return array
        if array is not None:
            logger.debug("cached embedding %s has shape %s, not %s", key, array.shape, shape)
        self.misses += 1
        return None

    def put(self, key: str, array: np.ndarray) -> None:
        """Keep ``array`` in memory now; it goes to disk at the next ``flush``."""
        super().put(key, np.ascontiguousarray(array, dtype=np.float32))

    def _encode(self, value: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        np.save(buffer, value, allow_pickle=False)
        return buffer.getvalue()

    def _decode(self, key: str, data: bytes) -> np.ndarray:
        try:
            array = np.load(io.BytesIO(data), allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:
            raise CorruptEntry(str(err)) from err
        if array.dtype != np.float32 or array.ndim != 2:
            raise CorruptEntry(f"holds {array.dtype} {array.shape}, not a float32 embedding")
        return array

    def _nbytes(self, value: np.ndarray) -> int:
        return value.nbytes
