"""The KV cache after a prompt, saved so that a later run reads only what changed.

On a CPU the prompt is most of the wait: every photo through the vision tower, then a few
thousand tokens through the text model. After a run reads a prompt, the state of sequence 0
(``llama_state_seq_get_data``) is kept, in memory for this session and on disk for the next
(``TieredCache``), with the chunk marks of the prompt it holds (``prompt_prefix``). A later run
restores the kept state sharing the most leading chunks with its own prompt
(``llama_state_seq_set_data``), drops the cells after them and reads only the rest: the same
album again reads one token, an appended photo reads that photo and the text after it.

A state is keyed by the digest of its whole prompt (``prompt_prefix.chunk_prefixes``), which
covers the text model and the projector, the K/V layout (a state records K/V types and layout,
so it is restored only into a context made the same way), the rendered prompt and every photo's
embedding key in order (its pixels and the size it was prepared to, i.e. the detail). Not the
context size: a state restores into any such context that holds its cells. Anything else, such
as sampling, seed or strict format, is applied after the prompt.

llama.cpp facts this relies on (docs/llamacpp.md, sections 5 and 8):

- with M-RoPE an image advances positions by max(rows, cols) but fills rows*cols cells, so the
  positions are stored as read, never recomputed from the cell count;
- the state holds K/V and each cell's M-RoPE positions (restored since llama.cpp PR #20132/#20273,
  in the vendored snapshot) but no logits: the prompt's last token is evaluated again to get the
  first token's distribution (one token instead of the whole prompt);
- a failed restore can leave half-written cells (llama.cpp #27068): the sequence is cleared.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from desktop_app.engine.prompt_prefix import ChunkMark, PrefixIndex
from desktop_app.engine.tiered_cache import CorruptEntry, TieredCache

logger = logging.getLogger(__name__)

# Keep a few albums' prompts (a 7B's KV is 56 KiB per token: a 5-photo album at low detail is
# about 75 MB, 20 photos at high detail 1.2 GB).
DEFAULT_MEMORY_BYTES = 512 * 1024 * 1024
DEFAULT_DISK_BYTES = 4 * 1024 * 1024 * 1024
FORMAT_VERSION = 2  # 2: chunk marks (prefix reuse); a version-1 file is dropped when met
_MAGIC = b"STKV"
# magic, version, n_past, cells, last token, state size, sha256 of marks + state, marks
_HEADER = struct.Struct("<4sIqqqq32sI")
_MARK = struct.Struct("<32sqq")  # digest, position after the chunk, cells after it
_SEQ = 0  # the backend runs one sequence


@dataclass(frozen=True)
class SavedPrompt:
    """A prompt's KV state and what is needed to continue from it or from a prefix of it."""

    n_past: int  # the next position (M-RoPE: not the number of cells)
    cells: int  # KV cells the prompt fills
    last_token: int  # the prompt's last token, evaluated again for the logits
    state: bytes | bytearray  # llama_state_seq_get_data of sequence 0
    marks: tuple[ChunkMark, ...] = field(default=())  # one per chunk, in order

    @property
    def key(self) -> str:
        """The digest of the whole prompt: its key in the cache."""
        return self.marks[-1].prefix


def _marks_bytes(marks: Sequence[ChunkMark]) -> bytes:
    return b"".join(_MARK.pack(bytes.fromhex(m.prefix), m.n_pos, m.cells) for m in marks)


def _read_marks(data: bytes, offset: int, count: int) -> tuple[ChunkMark, ...]:
    marks = []
    for index in range(count):
        digest, n_pos, cells = _MARK.unpack_from(data, offset + index * _MARK.size)
        marks.append(ChunkMark(digest.hex(), n_pos, cells))
    return tuple(marks)


class PromptCache(TieredCache[SavedPrompt]):
    """Saved prompts by the digest of their whole prompt: memory LRU over a size-capped disk
    folder, with an index of every chunk prefix they hold (``longest``)."""

    suffix = ".kv"
    default_memory_bytes = DEFAULT_MEMORY_BYTES
    default_disk_bytes = DEFAULT_DISK_BYTES

    def __init__(self, folder: Path | None, **limits: int | None) -> None:
        super().__init__(folder, **limits)
        self._index = PrefixIndex()
        self._scanned = False  # the disk folder's headers are read into the index on first use

    def get(self, key: str) -> SavedPrompt | None:
        saved = self._lookup(key)
        if saved is None:
            self.misses += 1
        else:
            self.hits += 1
        return saved

    def put(self, key: str, value: SavedPrompt) -> None:
        super().put(key, value)
        self._index.add(key, value.marks, value.cells)

    def longest(self, prefixes: Sequence[str], *, max_cells: int) -> tuple[int, str] | None:
        """(chunks shared, key) of the kept state sharing the most leading chunks with a prompt
        of chunk digests ``prefixes`` that a context of ``max_cells`` holds, without reading it
        (a damaged file still counts: the run finds out); None when no state shares a chunk."""
        self._scan_disk()
        for count, key in self._index.longest(prefixes, max_cells=max_cells):
            if self.has(key):
                return count, key
        return None

    def _scan_disk(self) -> None:
        """Index the states on disk by their headers (read once; the states stay there)."""
        if self._scanned or self.folder is None:
            return
        self._scanned = True
        for path in self.folder.glob(f"*/*{self.suffix}"):
            try:
                with path.open("rb") as file:
                    head = file.read(_HEADER.size)
                    magic, version, _, cells, _, _, _, count = _HEADER.unpack(head)
                    if magic != _MAGIC or version != FORMAT_VERSION:
                        continue  # dropped if a run ever looks it up
                    marks = _read_marks(file.read(count * _MARK.size), 0, count)
            except (OSError, struct.error):
                continue
            self._index.add(path.stem, marks, cells)

    def _encode(self, value: SavedPrompt) -> bytes:
        marks = _marks_bytes(value.marks)
        header = _HEADER.pack(
            _MAGIC,
            FORMAT_VERSION,
            value.n_past,
            value.cells,
            value.last_token,
            len(value.state),
            hashlib.sha256(marks + value.state).digest(),
            len(value.marks),
        )
        return header + marks + value.state

    def _decode(self, key: str, data: bytes) -> SavedPrompt:
        if len(data) < _HEADER.size:
            raise CorruptEntry("shorter than its header")
        magic, version, n_past, cells, last_token, size, digest, count = _HEADER.unpack_from(data)
        if magic != _MAGIC or version != FORMAT_VERSION:
            raise CorruptEntry("not a prompt state of this version")
        start = _HEADER.size + count * _MARK.size
        body = data[_HEADER.size :]
        # A wrong byte in K/V or in a position would not fail to load, it would silently change
        # the story.
        if len(data) != start + size or hashlib.sha256(body).digest() != digest:
            raise CorruptEntry("cut short or damaged")
        marks = _read_marks(data, _HEADER.size, count)
        if n_past <= 0 or cells <= 0 or not marks or marks[-1].prefix != key:
            raise CorruptEntry("no prompt in it, or another prompt's")
        return SavedPrompt(n_past, cells, last_token, data[start:], marks)

    def _nbytes(self, value: SavedPrompt) -> int:
        return len(value.state)


def capture(ctx: int, *, last_token: int, marks: Sequence[ChunkMark]) -> SavedPrompt | None:
    """The KV state of the sequence in ``ctx`` as it is now (right after the prompt whose
    chunks ``marks`` describe)."""
    import llama_cpp

    size = llama_cpp.llama_state_seq_get_size(ctx, _SEQ)
    if size <= 0:
        return None
    state = bytearray(size)  # filled in place: one copy of a state that can be a gigabyte
    written = llama_cpp.llama_state_seq_get_data(
        ctx, (ctypes.c_uint8 * size).from_buffer(state), size, _SEQ
    )
    if written <= 0:
        return None
    del state[written:]
    end = marks[-1]
    return SavedPrompt(end.n_pos, end.cells, last_token, state, tuple(marks))


def restore(ctx: int, saved: SavedPrompt) -> bool:
    """Replace the context's KV cache by ``saved``; False (and an empty cache) if llama.cpp refuses."""
    import llama_cpp

    memory = llama_cpp.llama_get_memory(ctx)
    llama_cpp.llama_memory_clear(memory, True)
    # A pointer into the state itself: no copy of what can be a gigabyte.
    if isinstance(saved.state, bytearray):
        source = (ctypes.c_uint8 * len(saved.state)).from_buffer(saved.state)
    else:
        source = ctypes.cast(ctypes.c_char_p(saved.state), ctypes.POINTER(ctypes.c_uint8))
    if llama_cpp.llama_state_seq_set_data(ctx, source, len(saved.state), _SEQ) == 0:
        # llama.cpp #27068: a refused state can leave cells half written; never decode on them.
        llama_cpp.llama_memory_clear(memory, True)
        return False
    return True


def keep_to(ctx: int, n_pos: int) -> None:
    """Drop the sequence's cells at position ``n_pos`` and after (by position: an image's cells
    all sit at the position it starts at, so a photo before ``n_pos`` stays whole)."""
    import llama_cpp

    llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(ctx), _SEQ, n_pos, -1)
