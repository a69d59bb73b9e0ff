"""The prompt as a chain of chunks, so that a run can reuse the longest prefix an earlier run read.

mtmd splits a prompt at its media markers: the text before the first photo (system prompt and
instruction), each photo, the text between photos, the text after the last one. The tokens of a
text chunk depend on its text alone (mtmd tokenizes each part separately) and a photo's cells on
its embedding, so the KV cache after chunk k depends only on chunks 1..k and on how the context
was made. Each chunk boundary is therefore named by a digest chained over everything before it
(``chunk_prefixes``): the context's K/V layout and both model files first, then each chunk, a
text by its text and a photo by its embedding key (pixels, prepared size, projector). Two prompts
share the KV cells of their first k chunks exactly when their k-th digests are equal.

A saved state records, for each chunk, that digest, the position after it and the cells after
it (``ChunkMark``): M-RoPE advances positions by max(rows, cols) of a photo's merged grid but
fills rows x cols cells, so positions are stored as llama.cpp reported them, never recomputed.
``PrefixIndex`` finds, among kept states, the one sharing the most chunks with a prompt.

The context size is not part of any digest: a state restores into any context made the same way
that holds its cells (``SavedPrompt.cells <= n_ctx``).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from desktop_app.engine.prompt import MEDIA_MARKER

DIGEST_VERSION = 2
_TEXT, _PHOTO = b"T", b"P"


@dataclass(frozen=True)
class ChunkMark:
    """Where a chunk of a read prompt ends in the KV cache."""

    prefix: str  # hex sha256 of the context settings and every chunk up to this one
    n_pos: int  # the position after this chunk (M-RoPE: not the number of cells)
    cells: int  # KV cells filled by this chunk and those before it


def chunk_prefixes(context_settings: str, prompt_text: str, photo_keys: Sequence[str]) -> list[str]:
    """The digest after each chunk of the prompt: text, photo 1, text, ..., photo n, text.

    ``context_settings`` names the model files and the K/V layout (never the context size);
    ``photo_keys`` are the photos' embedding keys in prompt order.
    """
    parts = prompt_text.split(MEDIA_MARKER)
    if len(parts) != len(photo_keys) + 1:
        raise ValueError(f"{len(parts) - 1} media markers for {len(photo_keys)} photos")
    digest = hashlib.sha256(f"prefix-v{DIGEST_VERSION}".encode())
    _feed(digest, _TEXT, context_settings)
    prefixes: list[str] = []
    for index, part in enumerate(parts):
        if index:
            _feed(digest, _PHOTO, photo_keys[index - 1])
            prefixes.append(digest.hexdigest())
        _feed(digest, _TEXT, part)
        prefixes.append(digest.hexdigest())
    return prefixes


def _feed(digest: hashlib._Hash, kind: bytes, text: str) -> None:
    encoded = text.encode("utf-8")
    digest.update(kind + struct.pack("<Q", len(encoded)) + encoded)  # no two chains hash alike


def shared(marks: Sequence[ChunkMark], prefixes: Sequence[str]) -> int:
    """How many leading chunks ``marks`` (a read prompt) shares with ``prefixes`` (another)."""
    count = 0
    for mark, prefix in zip(marks, prefixes, strict=False):
        if mark.prefix != prefix:
            break
        count += 1
    return count


def photos_in(chunks: int) -> int:
    """Photos among the first ``chunks`` chunks (they alternate text, photo, text, ...)."""
    return chunks // 2


class PrefixIndex:
    """Which kept states hold which chunk digests: ``longest`` offers states by shared length.

    Entries are hints, never trusted: a state evicted or dropped since is simply not found when
    the caller looks it up, and the caller checks the state's own marks.
    """

    def __init__(self) -> None:
        self._states: dict[str, set[str]] = {}  # digest -> keys of states holding it
        self._cells: dict[str, int] = {}  # state key -> cells of the whole state

    def add(self, key: str, marks: Iterable[ChunkMark], cells: int) -> None:
        for mark in marks:
            self._states.setdefault(mark.prefix, set()).add(key)
        self._cells[key] = cells

    def longest(self, prefixes: Sequence[str], *, max_cells: int) -> Iterator[tuple[int, str]]:
        """(chunks shared, state key), most chunks first, for states of at most ``max_cells``
        cells (a state restores only into a context that holds all of it)."""
        for count in range(len(prefixes), 0, -1):
            for key in sorted(self._states.get(prefixes[count - 1], ())):
                if self._cells.get(key, max_cells + 1) <= max_cells:
                    yield count, key
