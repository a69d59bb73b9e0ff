"""Reading a prompt into llama.cpp: mtmd tokenizing, photo encoding, decoding into the KV cache.

Steps 3-5 of the embedded backend's pipeline (see ``llama_backend``), plus the glue that saves
a read prompt's KV state and restores it when the same prompt comes again (``prompt_cache``).
``llama_prompt_reading`` takes a run through them.
"""

from __future__ import annotations

import ctypes
import logging
import time
from collections.abc import Sequence

import numpy as np

from desktop_app.engine import prompt_cache
from desktop_app.engine.api import ShouldStop
from desktop_app.engine.images import PreparedImage
from desktop_app.engine.llama_model import N_BATCH, Loaded
from desktop_app.engine.prompt import MEDIA_MARKER
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
    cached: list[np.ndarray | None],
) -> int:
    """mtmd chunks for the prompt; cached photos go in as pixel-less placeholders."""
    from llama_cpp import mtmd_cpp

    bitmaps = []
    try:
        for photo, key, embedding in zip(photos, keys, cached, strict=True):
            width, height = photo.prepared_size
            if embedding is None:
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


class PromptReader:
    """Reads prompts into a loaded model's KV cache, and saves and restores read prompts.

    One per backend: it keeps the abort callback C holds, and counts the prompt tokens it
    evaluated (a reused prompt adds one).
    """

    def __init__(
        self,
        prompts: prompt_cache.PromptCache,
        *,
        text_model_id: str,
        projector_id: str,
        n_gpu_layers: int,
    ) -> None:
        self.prompts = prompts
        self.text_model_id = text_model_id
        self.projector_id = projector_id
        self.n_gpu_layers = n_gpu_layers
        self.prompt_tokens_read = 0  # prompt tokens evaluated (a reused prompt adds one)
        self._abort = Abort()

    def key(self, n_ctx: int, prompt_text: str, photo_keys: Sequence[str]) -> str:
        """The prompt cache key of ``prompt_text`` with these photos in a context of ``n_ctx``
        (the one the run loads, which a loaded model's larger context replaces)."""
        import llama_cpp

        # Everything the state's layout depends on: restore only into a context made the same way.
        settings = (
            f"n_ctx={n_ctx}|n_batch={N_BATCH}|gpu_layers={self.n_gpu_layers}|"
            f"flash_attn={self.n_gpu_layers != 0}|kv=f16|llama_cpp={llama_cpp.__version__}"
        )
        return prompt_cache.prompt_key(
            text_model_id=self.text_model_id,
            projector_id=self.projector_id,
            prompt_text=prompt_text,
            photo_keys=photo_keys,
            context_settings=settings,
        )

    def save(self, loaded: Loaded, key: str, cells: int) -> None:
        llm = loaded.llm
        saved = prompt_cache.capture(
            llm.ctx,
            n_past=llm.n_tokens,
            cells=cells,
            last_token=int(llm.input_ids[llm.n_tokens - 1]),  # the prompt ends with text
        )
        if saved is not None:
            self.prompts.put(key, saved)

    def reuse(self, loaded: Loaded, key: str) -> tuple[prompt_cache.SavedPrompt, float] | None:
        """Restore the saved KV state of this prompt, if any: (it, seconds taken), else None."""
        saved = self.prompts.get(key)
        if saved is None:
            return None
        started = time.perf_counter()
        llm = loaded.llm
        llm.reset()
        if not prompt_cache.restore(llm.ctx, saved):
            logger.warning("llama.cpp refused a saved prompt state; reading the prompt instead")
            self.prompts.discard(key)
            return None
        # The state has no logits: read the last prompt token again at its own position
        # (eval first drops the cells from that position on, i.e. that token's old entry).
        llm.n_tokens = saved.n_past - 1
        try:
            llm.eval([saved.last_token])
        except RuntimeError as err:
            llm.reset()
            llm._ctx.kv_cache_clear()
            self.prompts.discard(key)
            logger.warning("a restored prompt state failed to continue (%s); reading it again", err)
            return None
        self.prompt_tokens_read += 1
        return saved, time.perf_counter() - started

    def read(
        self,
        loaded: Loaded,
        chunks: int,
        embeddings: list[np.ndarray],
        should_stop: ShouldStop,
    ) -> int | None:
        """Decode every chunk into a fresh KV cache; KV cells used, or None when cancelled."""
        import llama_cpp
        from llama_cpp import mtmd_cpp

        llm = loaded.llm
        llm.reset()
        llm._ctx.kv_cache_clear()
        self._abort.should_stop = should_stop
        self._abort.fired = False
        llama_cpp.llama_set_abort_callback(llm.ctx, self._abort.callback, None)
        cells = 0
        image_index = 0
        try:
            for i in range(mtmd_cpp.mtmd_input_chunks_size(chunks)):
                chunk = mtmd_cpp.mtmd_input_chunks_get(chunks, i)
                kind = mtmd_cpp.mtmd_input_chunk_get_type(chunk)
                if kind == mtmd_cpp.MTMD_INPUT_CHUNK_TYPE_TEXT:
                    count = ctypes.c_size_t()
                    pointer = mtmd_cpp.mtmd_input_chunk_get_tokens_text(chunk, ctypes.byref(count))
                    tokens = [pointer[j] for j in range(count.value)]
                    if tokens:
                        llm.eval(tokens)  # positions continue from llm.n_tokens
                        cells += len(tokens)
                        self.prompt_tokens_read += len(tokens)
                    continue
                embedding = embeddings[image_index]
                image_index += 1
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
                # M-RoPE: an image advances positions by max(rows, cols) but fills rows*cols cells.
                llm.n_tokens = new_n_past.value
                cells += embedding.shape[0]
        except RuntimeError as err:
            if self._abort.fired:
                return None
            raise GenerationError(
                f"llama.cpp failed while reading the prompt ({err}): the context may be too "
                "small; lower the detail or --max-tokens"
            ) from err
        finally:
            llama_cpp.llama_set_abort_callback(llm.ctx, llama_cpp.ggml_abort_callback(), None)
        return cells
