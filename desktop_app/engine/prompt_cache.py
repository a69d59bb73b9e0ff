"""The KV cache after a prompt, saved so that Generate-again skips photo encoding and prompt reading.

On a CPU the prompt is most of the wait: every photo through the vision tower, then a few
thousand tokens through the text model. Pressing Generate again on the same album (another seed,
another try) needs exactly the same KV cache, so after a cold run the state of sequence 0
(``llama_state_seq_get_data``) is kept, in memory for this session and on disk for the next
(``TieredCache``), and the next identical run restores it (``llama_state_seq_set_data``).

What must match for a state to be reused is all in the key (``prompt_key``): the text model and
the projector, the rendered prompt (instruction and chat template), every photo's embedding key
in order (its pixels and the size it was prepared to, i.e. the detail), and the context's settings
(a state records K/V types and layout, so it is restored only into a context made the same way).
Anything else, such as sampling, seed or strict format, is applied after the prompt.

llama.cpp facts this relies on (docs/llamacpp.md, sections 5 and 8):

- with M-RoPE an image advances positions by max(rows, cols) but fills rows*cols cells, so the
  position to continue from (``n_past``) is stored, never recomputed from the cell count;
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
from dataclasses import dataclass

from desktop_app.engine.tiered_cache import CorruptEntry, TieredCache

logger = logging.getLogger(__name__)

# Keep a few albums' prompts (a 7B's KV is 56 KiB per token: a 5-photo album at low detail is
# about 75 MB, 20 photos at high detail 1.2 GB).
DEFAULT_MEMORY_BYTES = 512 * 1024 * 1024
DEFAULT_DISK_BYTES = 4 * 1024 * 1024 * 1024
FORMAT_VERSION = 1
_MAGIC = b"STKV"
_HEADER = struct.Struct("<4sIqqqq32s")  # magic, version, n_past, cells, last token, size, sha256
_SEQ = 0  # the backend runs one sequence


@dataclass(frozen=True)
class SavedPrompt:
    """A prompt's KV state and what is needed to continue from it."""

    n_past: int  # the next position (M-RoPE: not the number of cells)
    cells: int  # KV cells the prompt fills
    last_token: int  # the prompt's last token, evaluated again for the logits
    state: bytes | bytearray  # llama_state_seq_get_data of sequence 0


def prompt_key(
    *,
    text_model_id: str,
    projector_id: str,
    prompt_text: str,
    photo_keys: Sequence[str],
    context_settings: str,
) -> str:
    """The cache key (hex sha256) of a prompt: everything the KV state after it depends on."""
    digest = hashlib.sha256(f"prompt-v{FORMAT_VERSION}".encode())
    for part in (text_model_id, projector_id, context_settings, prompt_text, *photo_keys):
        encoded = part.encode("utf-8")
        digest.update(struct.pack("<Q", len(encoded)) + encoded)  # no two lists hash alike
    digest.update(struct.pack("<Q", len(photo_keys)))
    return digest.hexdigest()


class PromptCache(TieredCache[SavedPrompt]):
    """Saved prompts by ``prompt_key``: memory LRU over a size-capped disk folder."""

    suffix = ".kv"
    default_memory_bytes = DEFAULT_MEMORY_BYTES
    default_disk_bytes = DEFAULT_DISK_BYTES

    def get(self, key: str) -> SavedPrompt | None:
        saved = self._lookup(key)
        if saved is None:
            self.misses += 1
        else:
            self.hits += 1
        return saved

    def _encode(self, value: SavedPrompt) -> bytes:
        header = _HEADER.pack(
            _MAGIC,
            FORMAT_VERSION,
            value.n_past,
            value.cells,
            value.last_token,
            len(value.state),
            hashlib.sha256(value.state).digest(),
        )
        return header + value.state

    def _decode(self, key: str, data: bytes) -> SavedPrompt:
        if len(data) < _HEADER.size:
            raise CorruptEntry("shorter than its header")
        magic, version, n_past, cells, last_token, size, digest = _HEADER.unpack_from(data)
        if magic != _MAGIC or version != FORMAT_VERSION:
            raise CorruptEntry("not a prompt state of this version")
        state = data[_HEADER.size :]
        # A wrong byte in K/V would not fail to load, it would silently change the story.
        if len(state) != size or hashlib.sha256(state).digest() != digest:
            raise CorruptEntry("cut short or damaged")
        if n_past <= 0 or cells <= 0:
            raise CorruptEntry("no prompt in it")
        return SavedPrompt(n_past, cells, last_token, state)

    def _nbytes(self, value: SavedPrompt) -> int:
        return len(value.state)


def capture(ctx: int, *, n_past: int, cells: int, last_token: int) -> SavedPrompt | None:
    """The KV state of the sequence in ``ctx`` as it is now (right after the prompt)."""
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
    return SavedPrompt(n_past, cells, last_token, state)


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
