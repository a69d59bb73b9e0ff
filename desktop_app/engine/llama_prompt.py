"""Reading a prompt into llama.cpp: mtmd tokenizing, photo encoding, decoding into the KV cache.

Steps 3-5 of the embedded backend's pipeline (see ``llama_backend``), plus the glue that saves
a read prompt's KV state and puts back the longest prefix an earlier run read: the live context
as the last run left it, or a kept state (``prompt_cache``). ``llama_prompt_reading`` takes a run
through them.

Every path to the first token evaluates the same batches (docs/llamacpp.md, section 8): chunk by
chunk, each text chunk in ``N_BATCH`` slices from its start, and the prompt's last token alone.
A cold run, a restored whole prompt (which evaluates its last token again for the logits) and a
restored prefix therefore compute bit-identical K/V and logits, so the same request tells the
same story whatever was cached.
"""

from __future__ import annotations

import ctypes
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from desktop_app.engine import prompt_cache
from desktop_app.engine.api import ShouldStop
from desktop_app.engine.images import PreparedImage
from desktop_app.engine.llama_model import N_BATCH, Loaded
from desktop_app.engine.prompt import MEDIA_MARKER
from desktop_app.engine.prompt_prefix import ChunkMark, chunk_prefixes, shared
from desktop_app.errors import StorytellerError

logger = logging.getLogger(__name__)


class GenerationError(StorytellerError):
    """llama.cpp failed while reading the prompt or writing."""


class Abort:
    """An abort callback for ``llama_decode``: asks ``should_stop`` between graph nodes."""

    def __init__(self) -> None:
        import llama_cpp

        self.should_stop: ShouldStop = lambda: False
        self.fired = False

        def check(_data: ctypes.c_void_p) -> bool:
            if self.should_stop():
                self.fired = True
                return True
            return False

        self.callback = llama_cpp.ggml_abort_callback(check)  # keep a reference: C holds it


def text_tokens(llm: object, prompt_text: str) -> list[int]:
    """The prompt's text tokens without the photos: the n-gram drafter's context."""
    tokens: list[int] = []
    for part in prompt_text.split(MEDIA_MARKER):
        tokens.extend(llm.tokenize(part.encode("utf-8"), add_bos=False, special=True))
    return tokens


def tokenize(
    mtmd_ctx: int,
    prompt_text: str,
    photos: list[PreparedImage],
    keys: list[str],
    with_pixels: list[bool],
) -> int:
    """mtmd chunks for the prompt; photos not to be encoded go in as pixel-less placeholders."""
    from llama_cpp import mtmd_cpp

    bitmaps = []
    try:
        for photo, key, pixels_needed in zip(photos, keys, with_pixels, strict=True):
            width, height = photo.prepared_size
            if pixels_needed:
                pixels = bytearray(photo.rgb_bytes())
                data = (ctypes.c_uint8 * len(pixels)).from_buffer(pixels)
                bitmap = mtmd_cpp.mtmd_bitmap_init(width, height, data)
            else:
                bitmap = mtmd_cpp.mtmd_bitmap_init(width, height, None)
            if not bitmap:
                raise GenerationError(f"llama.cpp cannot take the pixels of {photo.path.name}")
            mtmd_cpp.mtmd_bitmap_set_id(bitmap, key.encode())
            bitmaps.append(bitmap)
        text = mtmd_cpp.mtmd_input_text()
        encoded = prompt_text.encode("utf-8")
        text.text = encoded
        text.text_len = len(encoded)
        text.add_special = True
        text.parse_special = True
        chunks = mtmd_cpp.mtmd_input_chunks_init()
        array = (mtmd_cpp.mtmd_bitmap_p_ctypes * len(bitmaps))(*bitmaps)
        result = mtmd_cpp.mtmd_tokenize(mtmd_ctx, chunks, ctypes.byref(text), array, len(bitmaps))
        if result != 0:
            mtmd_cpp.mtmd_input_chunks_free(chunks)
            raise GenerationError(f"llama.cpp could not tokenize the prompt (error {result})")
        return chunks
    finally:
        for bitmap in bitmaps:
            mtmd_cpp.mtmd_bitmap_free(bitmap)


def encode(
    mtmd_ctx: int, chunk: int, n_tokens: int, n_embd: int, photo: PreparedImage
) -> np.ndarray:
    from llama_cpp import mtmd_cpp

    result = mtmd_cpp.mtmd_encode_chunk(mtmd_ctx, chunk)
    if result != 0:
        raise GenerationError(
            f"the vision encoder failed on {photo.path.name} (error {result}): "
            "try a lower detail (less memory)"
        )
    pointer = mtmd_cpp.mtmd_get_output_embd(mtmd_ctx)
    flat = np.ctypeslib.as_array(pointer, shape=(n_tokens * n_embd,))
    return flat.reshape(n_tokens, n_embd).copy()


@dataclass
class Live:
    """What a loaded context's KV cache holds now: the leading chunks of the prompt last read
    into it (``last_token`` once all of it is in). Generated cells after them do not count."""

    loaded: Loaded
    marks: list[ChunkMark] = field(default_factory=list)
    last_token: int | None = None


class PromptReader:
    """Reads prompts into a loaded model's KV cache, and saves and restores read prompts.

    One per backend: it keeps the abort callback C holds, knows what the live context holds
    (``Live``), and counts the prompt cells it evaluated (``prompt_tokens_read``: a photo's
    cells, a text's tokens; a reused prompt adds one).
    """

    def __init__(
        self,
        prompts: prompt_cache.PromptCache,
        *,
        text_model_id: str,
        projector_id: str,
        n_gpu_layers: int,
        prefix_reuse: bool = True,
    ) -> None:
        self.prompts = prompts
        # Off: only the whole prompt is reused, as before prefixes (bench/prefix_reuse.py).
        self.prefix_reuse = prefix_reuse
        self.text_model_id = text_model_id
        self.projector_id = projector_id
        self.n_gpu_layers = n_gpu_layers
        self.prompt_tokens_read = 0  # prompt cells evaluated (a reused prompt adds one)
        self._abort = Abort()
        self._live: Live | None = None

    @property
    def live_cells(self) -> int:
        """KV cells of the prompt chunks now in the live context."""
        live = self._live
        return live.marks[-1].cells if live is not None and live.marks else 0

    def context_settings(self) -> str:
        """The model files and everything a state's layout depends on: restore only into a
        context made the same way. Not the context size (a state fits any that holds it)."""
        import llama_cpp

        return (
            f"text={self.text_model_id}|projector={self.projector_id}|n_batch={N_BATCH}|"
            f"gpu_layers={self.n_gpu_layers}|flash_attn={self.n_gpu_layers != 0}|kv=f16|"
            f"llama_cpp={llama_cpp.__version__}"
        )

    def prefixes(self, prompt_text: str, photo_keys: Sequence[str]) -> list[str]:
        """The chunk digests of this prompt (``prompt_prefix``); the last one is its cache key."""
        return chunk_prefixes(self.context_settings(), prompt_text, photo_keys)

    def reusable(self, loaded: Loaded | None, prefixes: Sequence[str], n_ctx: int) -> int:
        """Chunks a run of this prompt in a context of ``n_ctx`` would not read (live or kept),
        without touching llama.cpp or making any state recent."""
        found = self.prompts.longest(prefixes, max_cells=n_ctx)
        return self._usable(
            max(found[0] if found else 0, self._live_shared(loaded, prefixes)), prefixes
        )

    def _usable(self, count: int, prefixes: Sequence[str]) -> int:
        return count if self.prefix_reuse or count == len(prefixes) else 0

    def _live_shared(self, loaded: Loaded | None, prefixes: Sequence[str]) -> int:
        live = self._live
        if live is None or loaded is None or live.loaded is not loaded:
            return 0
        count = shared(live.marks, prefixes)
        return count if count < len(prefixes) or live.last_token is not None else count - 1

    def begin(self, loaded: Loaded, prefixes: Sequence[str]) -> tuple[int, float]:
        """Put the longest prefix of this prompt that is live or kept into ``loaded``'s KV cache
        (nothing else: the cells after it are dropped by position): (chunks in it, seconds)."""
        started = time.perf_counter()
        llm = loaded.llm
        count = self._usable(self._live_shared(loaded, prefixes), prefixes)
        live = self._live if count else None
        found = self.prompts.longest(prefixes, max_cells=loaded.n_ctx)
        if found is not None and found[0] > count and self._usable(found[0], prefixes):
            saved = self.prompts.get(found[1])
            if saved is not None and shared(saved.marks, prefixes) >= found[0]:
                self._live = None
                llm.reset()
                if prompt_cache.restore(llm.ctx, saved):
                    count = found[0]
                    live = Live(loaded, list(saved.marks), saved.last_token)
                else:
                    logger.warning("llama.cpp refused a saved prompt state; reading it instead")
                    self.prompts.discard(found[1])
                    count, live = 0, None
        marks = live.marks[:count] if live is not None else []
        n_pos = marks[-1].n_pos if marks else 0
        if not marks:
            llm._ctx.kv_cache_clear()
        prompt_cache.keep_to(llm.ctx, n_pos)
        llm.n_tokens = n_pos
        whole = count == len(prefixes)
        self._live = Live(loaded, marks, live.last_token if whole and live else None)
        return count, time.perf_counter() - started

    def finish_whole(self, loaded: Loaded) -> bool:
        """The whole prompt is in (``begin``): evaluate its last token again, alone as every run
        does, for the first token's logits (a state has none). False if llama.cpp failed."""
        live = self._live
        assert live is not None and live.last_token is not None
        llm = loaded.llm
        # eval first drops the cells from that position on, i.e. that token's old entry.
        llm.n_tokens = live.marks[-1].n_pos - 1
        try:
            llm.eval([live.last_token])
        except RuntimeError as err:
            logger.warning("a restored prompt state failed to continue (%s); reading it again", err)
            self.prompts.discard(live.marks[-1].prefix)
            self._live = None
            llm.reset()
            llm._ctx.kv_cache_clear()
            return False
        self.prompt_tokens_read += 1
        return True

    def save(self, loaded: Loaded) -> prompt_cache.SavedPrompt | None:
        """Keep the state of the prompt just read in full (``read``), for later runs."""
        live = self._live
        if live is None or live.loaded is not loaded or live.last_token is None:
            return None
        saved = prompt_cache.capture(loaded.llm.ctx, last_token=live.last_token, marks=live.marks)
        if saved is not None:
            self.prompts.put(saved.key, saved)
        return saved

    def read(
        self,
        loaded: Loaded,
        chunks: int,
        embeddings: dict[int, np.ndarray],
        prefixes: Sequence[str],
        should_stop: ShouldStop,
    ) -> int | None:
        """Decode the chunks after those ``begin`` put back; the cells then in the cache, or
        None when cancelled. ``embeddings`` maps a chunk's index to its photo's embedding."""
        import llama_cpp
        from llama_cpp import mtmd_cpp

        llm = loaded.llm
        live = self._live
        assert live is not None and live.loaded is loaded
        self._abort.should_stop = should_stop
        self._abort.fired = False
        llama_cpp.llama_set_abort_callback(llm.ctx, self._abort.callback, None)
        cells = live.marks[-1].cells if live.marks else 0
        total = mtmd_cpp.mtmd_input_chunks_size(chunks)
        try:
            for i in range(len(live.marks), total):
                chunk = mtmd_cpp.mtmd_input_chunks_get(chunks, i)
                if i in embeddings:
                    embedding = embeddings[i]
                    new_n_past = llama_cpp.llama_pos(0)
                    result = mtmd_cpp.mtmd_helper_decode_image_chunk(
                        loaded.mtmd_ctx,
                        llm.ctx,
                        chunk,
                        embedding.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
                        llama_cpp.llama_pos(llm.n_tokens),
                        llama_cpp.llama_seq_id(0),
                        N_BATCH,
                        ctypes.byref(new_n_past),
                        mtmd_cpp.mtmd_helper_post_decode_callback(),
                        None,
                    )
                    if result != 0:
                        raise RuntimeError(f"llama_decode returned {result}")
                    # M-RoPE: an image advances positions by max(rows, cols), fills rows*cols.
                    llm.n_tokens = new_n_past.value
                    read = embedding.shape[0]
                else:
                    count = ctypes.c_size_t()
                    pointer = mtmd_cpp.mtmd_input_chunk_get_tokens_text(chunk, ctypes.byref(count))
                    tokens = [pointer[j] for j in range(count.value)]
                    last = i == total - 1
                    if last:  # the last token alone, as a restored whole prompt evaluates it
                        llm.eval(tokens[:-1])  # positions continue from llm.n_tokens
                        llm.eval(tokens[-1:])
                        live.last_token = tokens[-1]
                    else:
                        llm.eval(tokens)
                    read = len(tokens)
                cells += read
                self.prompt_tokens_read += read
                live.marks.append(ChunkMark(prefixes[i], llm.n_tokens, cells))
        except RuntimeError as err:
            if self._abort.fired:
                return None
            self._live = None
            raise GenerationError(
                f"llama.cpp failed while reading the prompt ({err}): the context may be too "
                "small; lower the detail or --max-tokens"
            ) from err
        finally:
            llama_cpp.llama_set_abort_callback(llm.ctx, llama_cpp.ggml_abort_callback(), None)
        return cells
