"""How a run gets its prompt into the KV cache: the saved state of the same prompt, or a read.

Steps 3-5 of the embedded backend's pipeline (see ``llama_backend``) as one run takes them, with
their phase events and timings. The same prompt in the same kind of context as an earlier run
(Generate again) comes back from the prompt cache: no photo encoded, one prompt token read.
Otherwise mtmd tokenizes the prompt, each photo's embedding comes from the embedding cache or the
vision encoder (``photo_encoder``), and the chunks are read into the KV cache, whose state is then
saved for the next time. The llama.cpp calls themselves are in ``llama_prompt``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Generator
from dataclasses import dataclass

import numpy as np

from desktop_app.engine.api import Phase, PhaseEvent, ShouldStop, Timings
from desktop_app.engine.embedding_cache import EmbeddingCache
from desktop_app.engine.images import PreparedImage
from desktop_app.engine.llama_model import Loaded
from desktop_app.engine.llama_prompt import GenerationError, PromptReader, tokenize
from desktop_app.engine.photo_encoder import PhotoEncoder


@dataclass(frozen=True)
class PromptRead:
    """The run's timings once its prompt is in the KV cache, or as far as they got when
    ``should_stop`` ended the reading first (``cancelled``)."""

    timings: Timings
    cancelled: bool = False


def read_prompt(
    loaded: Loaded,
    prompt_text: str,
    photos: list[PreparedImage],
    photo_keys: list[str],
    prompt_key: str,
    *,
    reader: PromptReader,
    embeddings: EmbeddingCache,
    encoder: PhotoEncoder,
    timings: Timings,
    should_stop: ShouldStop,
) -> Generator[PhaseEvent, None, PromptRead]:
    """Put the prompt into ``loaded``'s KV cache, yielding a phase event per photo and one for
    the reading; ``timings`` (the run's so far) come back with this step's added.

    ``photo_keys`` are the photos' embedding cache keys and ``prompt_key`` the prompt cache key
    of the whole prompt in ``loaded``'s context.
    """
    import llama_cpp
    from llama_cpp import mtmd_cpp

    restored = _restored(reader, loaded, prompt_key, len(photos), timings)
    if restored is not None:  # Generate again: no photo encoded, one prompt token read
        yield PhaseEvent(Phase.READING_PROMPT)
        return restored

    total = len(photos)
    n_embd = llama_cpp.llama_model_n_embd_inp(loaded.llm.model)
    cached = [
        embeddings.get(k, (p.tokens, n_embd)) for k, p in zip(photo_keys, photos, strict=True)
    ]
    chunks = tokenize(loaded.mtmd_ctx, prompt_text, photos, photo_keys, cached)
    try:
        encode_s: list[float] = []
        ready: list[np.ndarray] = []
        for index, (chunk, photo, key, embedding) in enumerate(
            zip(_image_chunks(chunks, total), photos, photo_keys, cached, strict=True), start=1
        ):
            yield PhaseEvent(Phase.ENCODING_PHOTO, index, total)
            n_tokens = mtmd_cpp.mtmd_input_chunk_get_n_tokens(chunk)
            if n_tokens != photo.tokens:
                raise GenerationError(
                    f"llama.cpp resized {photo.path.name} ({n_tokens} tokens instead of "
                    f"{photo.tokens}); boxes would not map back"
                )
            if embedding is None:
                encode_started = time.perf_counter()
                embedding = encoder.encode(loaded.mtmd_ctx, chunk, n_embd, photo, key, should_stop)
                if embedding is not None:  # not a stopped photo's partial time
                    encode_s.append(time.perf_counter() - encode_started)
            else:
                encode_s.append(0.0)
            if embedding is not None:
                ready.append(embedding)
            if embedding is None or should_stop():
                return PromptRead(
                    dataclasses.replace(timings, encode_s=tuple(encode_s)), cancelled=True
                )

        yield PhaseEvent(Phase.READING_PROMPT)
        prompt_started = time.perf_counter()
        cells = reader.read(loaded, chunks, ready, should_stop)
        prompt_eval_s = time.perf_counter() - prompt_started
        if cells is not None:
            reader.save(loaded, prompt_key, cells)
    finally:
        mtmd_cpp.mtmd_input_chunks_free(chunks)
    read = dataclasses.replace(
        timings, encode_s=tuple(encode_s), prompt_eval_s=prompt_eval_s, prompt_tokens=cells or 0
    )
    return PromptRead(read, cancelled=cells is None)


def _restored(
    reader: PromptReader, loaded: Loaded, prompt_key: str, n_photos: int, timings: Timings
) -> PromptRead | None:
    """The run's timings once the saved KV state of this prompt is restored, or None when
    there is none (or llama.cpp refused it)."""
    reused = reader.reuse(loaded, prompt_key)
    if reused is None:
        return None
    saved, restore_s = reused
    return PromptRead(
        dataclasses.replace(
            timings,
            encode_s=(0.0,) * n_photos,
            prompt_eval_s=restore_s,
            prompt_tokens=saved.cells,
            prompt_reused=True,
        )
    )


def _image_chunks(chunks: int, total: int) -> list[int]:
    """The image chunks of mtmd's chunk list, in order; ``GenerationError`` unless one a photo."""
    from llama_cpp import mtmd_cpp

    image_chunks = [
        chunk
        for chunk in (
            mtmd_cpp.mtmd_input_chunks_get(chunks, i)
            for i in range(mtmd_cpp.mtmd_input_chunks_size(chunks))
        )
        if mtmd_cpp.mtmd_input_chunk_get_type(chunk) == mtmd_cpp.MTMD_INPUT_CHUNK_TYPE_IMAGE
    ]
    if len(image_chunks) != total:
        raise GenerationError(f"llama.cpp made {len(image_chunks)} image chunks for {total} photos")
    return image_chunks
