"""How a run gets its prompt into the KV cache: the longest prefix already read, then the rest.

Steps 3-5 of the embedded backend's pipeline (see ``llama_backend``) as one run takes them, with
their phase events and timings. The prompt is a chain of chunks (``prompt_prefix``): the leading
chunks it shares with the live context or a kept state come back without reading (Generate
again: everything but the last token; a photo appended: all but that photo and the text after
it). mtmd tokenizes the prompt, each photo after the shared prefix gets its embedding from the
embedding cache or the vision encoder (``photo_encoder``), the chunks after the prefix are read
into the KV cache, and the state of the whole prompt is kept for the next time. The llama.cpp
calls themselves are in ``llama_prompt``.
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
from desktop_app.engine.prompt_prefix import photos_in


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
    *,
    reader: PromptReader,
    embeddings: EmbeddingCache,
    encoder: PhotoEncoder,
    timings: Timings,
    should_stop: ShouldStop,
    preparing: bool = False,
) -> Generator[PhaseEvent, None, PromptRead]:
    """Put the prompt into ``loaded``'s KV cache, yielding a phase event per photo and one for
    the reading; ``timings`` (the run's so far) come back with this step's added.

    ``photo_keys`` are the photos' embedding cache keys. ``timings.prompt_reused`` says that
    the whole prompt came back (one token read); ``prompt_tokens`` counts every cell.
    ``preparing``: background preparation. Everything is read into the live context, the last
    token alone as every run reads it, so that Generate then evaluates that token again, as for
    Generate again; no state is kept (the next run takes the live context without a copy, and a
    change of photos would otherwise write a state per change).
    """
    import llama_cpp
    from llama_cpp import mtmd_cpp

    prefixes = reader.prefixes(prompt_text, photo_keys)
    started = time.perf_counter()
    shared, _ = reader.begin(loaded, prefixes)
    if shared == len(prefixes) and preparing:
        return PromptRead(timings)  # already all in
    if shared == len(prefixes) and reader.finish_whole(loaded):
        yield PhaseEvent(Phase.READING_PROMPT)  # Generate again: one prompt token read
        cells = reader.live_cells
        return PromptRead(
            dataclasses.replace(
                timings,
                encode_s=(0.0,) * len(photos),
                prompt_eval_s=time.perf_counter() - started,
                prompt_tokens=cells,
                prompt_cells_reused=cells,
                prompt_reused=True,
            )
        )
    if shared == len(prefixes):  # llama.cpp failed on the restored state: read it all
        shared, _ = reader.begin(loaded, prefixes)
    reused_cells = reader.live_cells
    restore_s = time.perf_counter() - started
    total = len(photos)
    read_photos = photos_in(shared)  # the first ones, already in the KV cache
    finishing = encoder.finishing(photos, photo_keys, read_photos)
    if finishing is not None:
        yield finishing
    if not encoder.settle(should_stop):  # mtmd (tokenizing included) is not thread-safe
        return PromptRead(timings, cancelled=True)
    n_embd = llama_cpp.llama_model_n_embd_inp(loaded.llm.model)
    cached = [
        None if index < read_photos else embeddings.get(k, (p.tokens, n_embd))
        for index, (k, p) in enumerate(zip(photo_keys, photos, strict=True))
    ]
    needs_pixels = [
        index >= read_photos and embedding is None for index, embedding in enumerate(cached)
    ]
    chunks = tokenize(loaded.mtmd_ctx, prompt_text, photos, photo_keys, needs_pixels)
    try:
        if mtmd_cpp.mtmd_input_chunks_size(chunks) != len(prefixes):
            raise GenerationError(
                f"llama.cpp split the prompt into {mtmd_cpp.mtmd_input_chunks_size(chunks)} "
                f"parts instead of {len(prefixes)}"
            )
        encode_s: list[float] = []
        ready: dict[int, np.ndarray] = {}
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
            if index <= read_photos:
                encode_s.append(0.0)
                continue
            if embedding is None:
                encode_started = time.perf_counter()
                embedding = encoder.encode(loaded.mtmd_ctx, chunk, n_embd, photo, key, should_stop)
                if embedding is not None:  # not a stopped photo's partial time
                    encode_s.append(time.perf_counter() - encode_started)
            else:
                encode_s.append(0.0)
            if embedding is not None:
                ready[2 * index - 1] = embedding  # chunks alternate text, photo, text, ...
            if embedding is None or should_stop():
                return PromptRead(
                    dataclasses.replace(timings, encode_s=tuple(encode_s)), cancelled=True
                )

        yield PhaseEvent(Phase.READING_PROMPT)
        read_started = time.perf_counter()
        cells = reader.read(loaded, chunks, ready, prefixes, should_stop)
        prompt_eval_s = restore_s + time.perf_counter() - read_started
        if cells is not None and not preparing:
            reader.save(loaded)
    finally:
        mtmd_cpp.mtmd_input_chunks_free(chunks)
    read = dataclasses.replace(
        timings,
        encode_s=tuple(encode_s),
        prompt_eval_s=prompt_eval_s,
        prompt_tokens=cells or 0,
        prompt_cells_reused=reused_cells,
    )
    return PromptRead(read, cancelled=cells is None)


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
