"""The embedded backend: llama.cpp in this process through llama-cpp-python's low-level API.

Why not ``create_chat_completion``: its multimodal handlers re-encode every photo on every call,
resize photos themselves, count M-RoPE positions instead of KV cells, and cannot be interrupted
during prompt evaluation. Here the pipeline is explicit:

1. photos are prepared (``images.prepare_image``) before anything loads, so a bad photo costs
   nothing;
2. the context is sized from the real token cost and checked against the model and the machine;
3. mtmd tokenizes the prompt (our own aligned pixels, so mtmd does not resize);
4. each photo's embedding comes from the cache or from ``mtmd_encode_chunk`` (then cached);
5. text chunks and the embeddings are decoded into the KV cache (abortable);
6. tokens are sampled with llama.cpp's sampler chain (optionally grammar-constrained), checking
   ``should_stop`` between tokens; by default several per evaluation, drafted from forced text
   and n-grams and verified in one batch (``speculation``: the output is the same).

``Llama`` is not thread-safe: one ``generate`` at a time per backend.
"""

from __future__ import annotations

import codecs
import ctypes
import dataclasses
import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from desktop_app import paths
from desktop_app.engine import costs, device, grammar, prompt_cache, speeds
from desktop_app.engine.embedding_cache import EmbeddingCache, embedding_key
from desktop_app.engine.events import (
    Event,
    FinishReason,
    Phase,
    PhaseEvent,
    PhotoInfo,
    ResultEvent,
    RunResult,
    SamplingParams,
    ShouldStop,
    StoryRequest,
    Timings,
    TokenEvent,
)
from desktop_app.engine.gguf_info import (
    ModelFileError,
    check_pair,
    read_projector_info,
    read_text_model_info,
)
from desktop_app.engine.images import PreparedImage, prepare_photos
from desktop_app.engine.prompt import MEDIA_MARKER, build_prompt
from desktop_app.engine.speculation import (
    DecodeTimer,
    SpeculationStats,
    SpeculativeDecoder,
    llguidance_tokenizer,
    prompt_text_tokens,
)
from desktop_app.errors import StorytellerError

logger = logging.getLogger(__name__)

# top_k before top_p: transformers' sampling default (the model card's settings ran under it),
# and it keeps top_p from sorting the whole 152k vocabulary every token.
TOP_K = 50
N_BATCH = costs.BATCH_TOKENS
MIN_CONTEXT = 4096
# Where strict format switches from the analysis grammar to the story grammar.
THINK_END = "</think>\n"


class GenerationError(StorytellerError):
    """llama.cpp failed while reading the prompt or writing."""


@dataclass
class _Loaded:
    llm: object  # llama_cpp.Llama
    mtmd_ctx: int
    n_ctx: int
    forced_tokenizer: object | None = None  # llguidance's view of the vocabulary, made on demand
    decode_timer: DecodeTimer = field(default_factory=DecodeTimer)  # speculation's cost model


def _route_native_logs() -> None:
    """Send mtmd/clip logs through llama-cpp-python's logger (silent unless verbose)."""
    from llama_cpp import _logger, mtmd_cpp

    mtmd_cpp.mtmd_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))
    mtmd_cpp.mtmd_helper_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))


class _Abort:
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


class LlamaCppBackend:
    """Runs QwenStoryteller in this process: text GGUF + mmproj GGUF through llama.cpp."""

    def __init__(
        self,
        model_path: str | Path,
        mmproj_path: str | Path,
        *,
        n_gpu_layers: int = -1,
        n_threads: int | None = None,
        n_ctx: int | None = None,
        cache_dir: Path | None = None,
        prompt_cache_dir: Path | None = None,
        manifest: dict | None = None,
        use_mmap: bool | None = None,
        verbose: bool = False,
        speculation: bool = True,
    ) -> None:
        self.model_path = Path(model_path)
        self.mmproj_path = Path(mmproj_path)
        # Metadata first: a wrong or mismatched file is a clear error before llama.cpp sees it.
        self.text_info = read_text_model_info(self.model_path)
        self.projector_info = read_projector_info(self.mmproj_path)
        check_pair(self.text_info, self.projector_info)
        self.shape = costs.ModelShape(
            n_layers=self.text_info.n_layers,
            n_kv_heads=self.text_info.n_kv_heads,
            head_dim=self.text_info.head_dim,
            context_length=self.text_info.context_length,
            vision_heads=self.projector_info.vision_heads,
            weights_bytes=self.text_info.file_size + self.projector_info.file_size,
            n_heads=self.text_info.n_heads,
            ffn_length=self.text_info.feed_forward_length,
        )
        self.n_gpu_layers = n_gpu_layers if device.gpu_offload_supported() else 0
        self.n_threads = n_threads or device.physical_cores()
        # On a CPU, llama.cpp copies most quantized weights into a repacked (faster) layout and a
        # memory-mapped file stays resident beside the copy: 7.4 GiB instead of 4.4 GiB for the
        # 7B at Q4_K_M (bench/real_scale.py). Reading the file once into memory holds one copy.
        self.use_mmap = self.n_gpu_layers != 0 if use_mmap is None else use_mmap
        self.fixed_n_ctx = n_ctx
        self.verbose = verbose
        self.cache = EmbeddingCache(
            cache_dir if cache_dir is not None else paths.embeddings_cache_dir()
        )
        self.prompts = prompt_cache.PromptCache(
            prompt_cache_dir if prompt_cache_dir is not None else paths.prompt_cache_dir()
        )
        self.projector_id = self._projector_identity(manifest)
        self.text_model_id = self._file_identity(manifest, "text", self.model_path)
        self.photos_encoded = 0  # photos that went through the vision encoder (not cached)
        self.prompt_tokens_read = 0  # prompt tokens evaluated (a reused prompt adds one)
        self.grammar_resampled = 0  # strict format: tokens the grammar made us draw again
        # Draft and batch-verify tokens while writing (same output; off: one token per step).
        self.speculation = speculation
        self.speculation_stats = SpeculationStats()
        self._loaded: _Loaded | None = None
        self._id_tokens: _IdTokens | None = None  # strict format: built on first use
        self._abort = _Abort()

    # -- identity -------------------------------------------------------------------------------

    @staticmethod
    def _file_identity(manifest: dict | None, part: str, path: Path) -> str:
        """The converter's sha256 of a model file when its manifest is known, else path+size+mtime."""
        sha = ((manifest or {}).get("files", {}).get(part, {}) or {}).get("sha256")
        if isinstance(sha, str) and sha:
            return f"sha256:{sha}"
        stat = path.stat()
        raw = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        return f"stat:{hashlib.sha256(raw.encode()).hexdigest()}"

    def _projector_identity(self, manifest: dict | None) -> str:
        identity = self._file_identity(manifest, "mmproj", self.mmproj_path)
        return f"{identity}|{self.text_info.embedding_length}"

    @property
    def accelerator(self) -> str:
        return device.accelerator(self.n_gpu_layers)

    @property
    def description(self) -> str:
        return f"llama.cpp ({self.accelerator})"

    @property
    def model_name(self) -> str:
        return self.model_path.name

    # -- loading --------------------------------------------------------------------------------

    def _load(self, n_ctx: int) -> _Loaded:
        if self._loaded is not None and self._loaded.n_ctx >= n_ctx:
            return self._loaded
        self._unload()
        import llama_cpp
        from llama_cpp import mtmd_cpp

        _route_native_logs()
        gpu = self.n_gpu_layers != 0
        try:
            llm = llama_cpp.Llama(
                model_path=str(self.model_path),
                n_gpu_layers=self.n_gpu_layers,
                n_ctx=n_ctx,
                n_batch=N_BATCH,
                n_ubatch=N_BATCH,
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads,
                use_mmap=self.use_mmap,
                logits_all=False,
                flash_attn=gpu,
                verbose=self.verbose,
            )
        except (ValueError, RuntimeError) as err:
            raise ModelFileError(
                f"llama.cpp cannot load {self.model_path.name} ({err}): check the file with "
                "`storyteller doctor` or convert the model again"
            ) from err
        params = mtmd_cpp.mtmd_context_params_default()
        params.use_gpu = gpu
        params.n_threads = self.n_threads
        params.print_timings = self.verbose
        params.warmup = False  # allocate for the real photo sizes, not a 1288x1288 worst case
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO
        from llama_cpp._utils import suppress_stdout_stderr

        # clip prints load-time advice straight to stderr, past the log callback.
        with suppress_stdout_stderr(disable=self.verbose):
            mtmd_ctx = mtmd_cpp.mtmd_init_from_file(
                str(self.mmproj_path).encode(), llm.model, params
            )
        if not mtmd_ctx:
            llm.close()
            raise ModelFileError(
                f"llama.cpp cannot load the vision projector {self.mmproj_path.name}: "
                "use the mmproj converted with this model"
            )
        if not mtmd_cpp.mtmd_support_vision(mtmd_ctx):
            mtmd_cpp.mtmd_free(mtmd_ctx)
            llm.close()
            raise ModelFileError(f"{self.mmproj_path.name} has no vision encoder")
        self._loaded = _Loaded(llm, mtmd_ctx, n_ctx)
        return self._loaded

    def preload(self, n_ctx: int | None = None) -> None:
        """Load the model and projector now (otherwise the first ``generate`` does)."""
        self._load(n_ctx or self.fixed_n_ctx or min(MIN_CONTEXT, self.text_info.context_length))

    def _unload(self) -> None:
        if self._loaded is None:
            return
        from llama_cpp import mtmd_cpp

        mtmd_cpp.mtmd_free(self._loaded.mtmd_ctx)
        self._loaded.llm.close()
        self._loaded = None

    def close(self) -> None:
        """Free the model and contexts; the in-memory embedding and prompt caches go too."""
        self._unload()
        self.cache.clear_memory()
        self.prompts.clear_memory()

    # -- speeds ---------------------------------------------------------------------------------

    def speeds(self) -> speeds.Speeds:
        """This machine's rates for this model (an estimate from its size before its first run)."""
        return speeds.for_model(
            speeds.SpeedBook(paths.speeds_file()),
            self.model_path,
            self.mmproj_path,
            self.accelerator,
            self.n_threads,
        )

    def _record_speeds(self, result: RunResult) -> None:
        book = speeds.SpeedBook(paths.speeds_file())
        try:
            book.record(speeds.model_key(self.model_path, self.accelerator), result, self.speeds)
        except Exception:  # the estimate must never cost the story
            logger.warning("could not record this run's speeds", exc_info=True)

    # -- sizing ---------------------------------------------------------------------------------

    def plan_context(self, prompt_text: str, photos: list[PreparedImage], max_tokens: int) -> int:
        """The n_ctx this run needs; ``StorytellerError`` if the model or machine cannot hold it.

        Prompt text is counted by its UTF-8 bytes (no BPE token is shorter than one byte), so the
        estimate is an upper bound available before the model loads.
        """
        text_bytes = len(prompt_text.replace(MEDIA_MARKER, "").encode("utf-8"))
        needed = costs.context_tokens(text_bytes, [p.tokens for p in photos], max_tokens)
        if self.fixed_n_ctx is not None:
            if needed > self.fixed_n_ctx:
                raise StorytellerError(
                    f"this run needs up to {needed} tokens of context but n_ctx is set to "
                    f"{self.fixed_n_ctx}: raise n_ctx, lower the detail or --max-tokens"
                )
            n_ctx = self.fixed_n_ctx
        else:
            n_ctx = max(
                costs.round_context(needed), min(MIN_CONTEXT, self.text_info.context_length)
            )
        largest = max((p.tokens for p in photos), default=0)
        costs.check_fits(
            needed,
            n_ctx=n_ctx,
            context_length=self.text_info.context_length,
            memory_bytes=costs.run_memory_bytes(self.shape, n_ctx, largest, needed - max_tokens),
            physical_bytes=costs.physical_memory_bytes() if self.n_gpu_layers == 0 else None,
        )
        return n_ctx

    # -- the run --------------------------------------------------------------------------------

    def generate(self, request: StoryRequest, *, should_stop: ShouldStop) -> Iterator[Event]:
        """Yield phase and token events, then one ``ResultEvent`` (see ``StoryBackend``)."""
        try:
            for event in self._generate(request, should_stop):
                if isinstance(event, ResultEvent):
                    self._record_speeds(event.result)
                yield event
        finally:
            # New embeddings and prompt states reach the disk after the run, not before it.
            self.cache.flush()
            self.prompts.flush()

    def _generate(self, request: StoryRequest, should_stop: ShouldStop) -> Iterator[Event]:
        import llama_cpp
        from llama_cpp import mtmd_cpp

        started = time.perf_counter()
        total = len(request.photos)
        photos: list[PreparedImage] = []
        yield from prepare_photos(
            request.photos, request.detail.token_budget, photos, request.known
        )
        infos = tuple(PhotoInfo(p.path, p.original_size, p.prepared_size, p.tokens) for p in photos)
        strict = None
        if request.strict_format:
            strict = grammar.StrictFormat(
                [p.prepared_size for p in photos], request.sampling.max_tokens
            )

        prompt_text = build_prompt(
            request.instruction, total, chat_template=self.text_info.chat_template
        )
        n_ctx = self.plan_context(prompt_text, photos, request.sampling.max_tokens)

        yield PhaseEvent(Phase.LOADING_MODEL)
        load_started = time.perf_counter()
        was_loaded = self._loaded is not None and self._loaded.n_ctx >= n_ctx
        loaded = self._load(n_ctx)
        load_s = 0.0 if was_loaded else time.perf_counter() - load_started
        llm = loaded.llm
        n_embd = llama_cpp.llama_model_n_embd_inp(llm.model)

        keys = [embedding_key(p.content_hash, p.prepared_size, self.projector_id) for p in photos]
        key = self._prompt_key(loaded, prompt_text, keys)
        reused = self._reuse_prompt(loaded, key)
        if reused is not None:  # Generate again: no photo encoded, one prompt token read
            yield PhaseEvent(Phase.READING_PROMPT)
            timings = Timings(
                load_s=load_s,
                encode_s=(0.0,) * total,
                prompt_eval_s=reused[1],
                prompt_tokens=reused[0].cells,
                prompt_reused=True,
            )
            yield PhaseEvent(Phase.WRITING)
            speculative = None
            if self.speculation:
                speculative = self._speculative(loaded, strict, _text_tokens(llm, prompt_text))
            for event in self._write(
                llm, request.sampling, strict, should_stop, started, infos, timings, speculative
            ):
                if isinstance(event, ResultEvent):  # _write rebuilds the timings it was given
                    run = event.result
                    event = ResultEvent(
                        dataclasses.replace(
                            run, timings=dataclasses.replace(run.timings, prompt_reused=True)
                        )
                    )
                yield event
            return
        cached = [self.cache.get(k, (p.tokens, n_embd)) for k, p in zip(keys, photos, strict=True)]
        chunks = self._tokenize(loaded.mtmd_ctx, prompt_text, photos, keys, cached)
        try:
            image_chunks = [
                i
                for i in range(mtmd_cpp.mtmd_input_chunks_size(chunks))
                if mtmd_cpp.mtmd_input_chunk_get_type(mtmd_cpp.mtmd_input_chunks_get(chunks, i))
                == mtmd_cpp.MTMD_INPUT_CHUNK_TYPE_IMAGE
            ]
            if len(image_chunks) != total:
                raise GenerationError(
                    f"llama.cpp made {len(image_chunks)} image chunks for {total} photos"
                )
            encode_s: list[float] = []
            embeddings: list[np.ndarray] = []
            for index, (chunk_index, photo) in enumerate(
                zip(image_chunks, photos, strict=True), start=1
            ):
                yield PhaseEvent(Phase.ENCODING_PHOTO, index, total)
                chunk = mtmd_cpp.mtmd_input_chunks_get(chunks, chunk_index)
                n_tokens = mtmd_cpp.mtmd_input_chunk_get_n_tokens(chunk)
                if n_tokens != photo.tokens:
                    raise GenerationError(
                        f"llama.cpp resized {photo.path.name} ({n_tokens} tokens instead of "
                        f"{photo.tokens}); boxes would not map back"
                    )
                embedding = cached[index - 1]
                if embedding is None:
                    encode_started = time.perf_counter()
                    embedding = self._encode(loaded.mtmd_ctx, chunk, n_tokens, n_embd, photo)
                    self.cache.put(keys[index - 1], embedding)
                    self.photos_encoded += 1
                    encode_s.append(time.perf_counter() - encode_started)
                else:
                    encode_s.append(0.0)
                embeddings.append(embedding)
                if should_stop():
                    yield self._result(
                        "",
                        FinishReason.CANCELLED,
                        infos,
                        request.sampling,
                        Timings(load_s=load_s, encode_s=tuple(encode_s)),
                    )
                    return

            yield PhaseEvent(Phase.READING_PROMPT)
            prompt_started = time.perf_counter()
            prompt_tokens = self._read_prompt(loaded, chunks, embeddings, should_stop)
            prompt_eval_s = time.perf_counter() - prompt_started
            context = prompt_text_tokens(chunks) if self.speculation else []
            if prompt_tokens is not None:
                self._save_prompt(loaded, key, prompt_tokens)
        finally:
            mtmd_cpp.mtmd_input_chunks_free(chunks)
        timings = Timings(
            load_s=load_s,
            encode_s=tuple(encode_s),
            prompt_eval_s=prompt_eval_s,
            prompt_tokens=prompt_tokens or 0,
        )
        if prompt_tokens is None:
            yield self._result("", FinishReason.CANCELLED, infos, request.sampling, timings)
            return

        yield PhaseEvent(Phase.WRITING)
        speculative = self._speculative(loaded, strict, context) if self.speculation else None
        yield from self._write(
            llm, request.sampling, strict, should_stop, started, infos, timings, speculative
        )

    def _prompt_key(self, loaded: _Loaded, prompt_text: str, photo_keys: list[str]) -> str:
        import llama_cpp

        # Everything the state's layout depends on: restore only into a context made the same way.
        settings = (
            f"n_ctx={loaded.n_ctx}|n_batch={N_BATCH}|gpu_layers={self.n_gpu_layers}|"
            f"flash_attn={self.n_gpu_layers != 0}|kv=f16|llama_cpp={llama_cpp.__version__}"
        )
        return prompt_cache.prompt_key(
            text_model_id=self.text_model_id,
            projector_id=self.projector_id,
            prompt_text=prompt_text,
            photo_keys=photo_keys,
            context_settings=settings,
        )

    def _save_prompt(self, loaded: _Loaded, key: str, cells: int) -> None:
        llm = loaded.llm
        saved = prompt_cache.capture(
            llm.ctx,
            n_past=llm.n_tokens,
            cells=cells,
            last_token=int(llm.input_ids[llm.n_tokens - 1]),  # the prompt ends with text
        )
        if saved is not None:
            self.prompts.put(key, saved)

    def _reuse_prompt(
        self, loaded: _Loaded, key: str
    ) -> tuple[prompt_cache.SavedPrompt, float] | None:
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

    def _result(
        self,
        text: str,
        finish: FinishReason,
        infos: tuple[PhotoInfo, ...],
        sampling: SamplingParams,
        timings: Timings,
    ) -> ResultEvent:
        return ResultEvent(
            RunResult(
                raw_output=text,
                finish_reason=finish,
                photos=infos,
                sampling=sampling,
                backend=self.description,
                model=self.model_name,
                timings=timings,
            )
        )

    def _tokenize(
        self,
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
            result = mtmd_cpp.mtmd_tokenize(
                mtmd_ctx, chunks, ctypes.byref(text), array, len(bitmaps)
            )
            if result != 0:
                mtmd_cpp.mtmd_input_chunks_free(chunks)
                raise GenerationError(f"llama.cpp could not tokenize the prompt (error {result})")
            return chunks
        finally:
            for bitmap in bitmaps:
                mtmd_cpp.mtmd_bitmap_free(bitmap)

    @staticmethod
    def _encode(
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

    def _read_prompt(
        self,
        loaded: _Loaded,
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

    def _speculative(
        self, loaded: _Loaded, strict: grammar.StrictFormat | None, context: list[int]
    ) -> SpeculativeDecoder:
        """A speculative decoder to write after the prompt now in the KV cache."""
        import llama_cpp

        llm = loaded.llm
        if strict is not None and loaded.forced_tokenizer is None:
            loaded.forced_tokenizer = llguidance_tokenizer(
                llama_cpp.llama_model_get_vocab(llm.model)
            )
        return SpeculativeDecoder(
            llm.ctx,
            llm.n_tokens,
            context_tokens=context,
            tokenizer=loaded.forced_tokenizer if strict is not None else None,
            timer=loaded.decode_timer,
        )

    def _write(
        self,
        llm: object,
        sampling: SamplingParams,
        strict: grammar.StrictFormat | None,
        should_stop: ShouldStop,
        started: float,
        infos: tuple[PhotoInfo, ...],
        timings: Timings,
        speculative: SpeculativeDecoder | None = None,
    ) -> Iterator[Event]:
        import llama_cpp

        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        think_grammar = strict.think_grammar() if strict else None
        sampler = _Sampler(vocab, sampling, think_grammar)
        table_ids = None
        if strict is not None:
            if self._id_tokens is None:
                self._id_tokens = _IdTokens(vocab)
            table_ids = grammar.TableIds()
            sampler.before_draw = self._id_tokens.guard(table_ids)
        if speculative is not None:
            speculative.set_grammar(think_grammar)
            stream = speculative.tokens(sampler, sampling.max_tokens)
        else:
            stream = _plain_tokens(llm, sampler)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pieces: list[str] = []
        finish = FinishReason.LENGTH
        first_token_s = 0.0
        writing_started = time.perf_counter()
        generated = 0
        reported = 0  # tokens already carried by a TokenEvent
        in_story = False
        recent = ""  # the last characters written, to see the analysis end
        try:
            for _ in range(sampling.max_tokens):
                if should_stop():
                    finish = FinishReason.CANCELLED
                    break
                try:
                    token = next(stream)
                except RuntimeError as err:
                    raise GenerationError(
                        f"llama.cpp failed while writing ({err}): the context may be full"
                    ) from err
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    finish = FinishReason.STOP
                    break
                generated += 1
                text = decoder.decode(_token_bytes(vocab, token))
                if text:
                    if not pieces:
                        first_token_s = time.perf_counter() - started
                    pieces.append(text)
                    yield TokenEvent(text, generated - reported)
                    reported = generated
                recent = (recent + text)[-len(THINK_END) :]
                if table_ids is not None and not in_story:
                    table_ids.feed(text)
                if strict is not None and not in_story and recent == THINK_END:
                    in_story = True
                    story_grammar = strict.story_grammar(
                        "".join(pieces), sampling.max_tokens - generated
                    )
                    sampler.set_grammar(story_grammar)
                    if speculative is not None:
                        speculative.set_grammar(story_grammar)
            # A cancelled run keeps exactly what was streamed; a finished one flushes any
            # incomplete UTF-8 at the end.
            tail = "" if finish is FinishReason.CANCELLED else decoder.decode(b"", final=True)
            if tail:
                pieces.append(tail)
                yield TokenEvent(tail, generated - reported)
        finally:
            stream.close()
            if speculative is not None:
                speculative.close()
                llm.n_tokens = speculative.n_past  # llama-cpp-python's own position count
                self.speculation_stats.add(speculative.stats)
            self.grammar_resampled += sampler.resampled
            sampler.close()
        ended = time.perf_counter()
        timings = Timings(
            load_s=timings.load_s,
            encode_s=timings.encode_s,
            prompt_eval_s=timings.prompt_eval_s,
            first_token_s=first_token_s,
            generation_s=ended - writing_started,
            generated_tokens=generated,
            prompt_tokens=timings.prompt_tokens,
        )
        yield self._result("".join(pieces), finish, infos, sampling, timings)


def _plain_tokens(llm: object, sampler: _Sampler) -> Iterator[int]:
    """Token by token: draw from the last logits, evaluate the token, repeat."""
    while True:
        token = sampler.sample(llm.ctx)
        yield token
        llm.eval([token])  # only when the caller asks for the next token


def _text_tokens(llm: object, prompt_text: str) -> list[int]:
    """The prompt's text tokens without the photos: the drafter's context on a reused prompt."""
    tokens: list[int] = []
    for part in prompt_text.split(MEDIA_MARKER):
        tokens.extend(llm.tokenize(part.encode("utf-8"), add_bos=False, special=True))
    return tokens


def _token_bytes(vocab: int, token: int) -> bytes:
    """The bytes a token stands for (control tokens give nothing)."""
    import llama_cpp

    buffer = ctypes.create_string_buffer(64)
    size = llama_cpp.llama_token_to_piece(vocab, token, buffer, 64, 0, False)
    if size < 0:
        buffer = ctypes.create_string_buffer(-size)
        size = llama_cpp.llama_token_to_piece(vocab, token, buffer, -size, 0, False)
    return buffer.raw[: max(size, 0)]


class _IdTokens:
    """The tokens that can finish or extend an id, to keep ids unique within a table.

    Built once per model from its vocabulary. ``forbid_repeats`` sets the logits of the tokens
    ``grammar.TableIds`` forbids to -inf before a token is drawn, so the free draw and the
    grammar-constrained draw both skip them (and both grammar instances stay in step). With
    speculation a draw reads the logits of a batch position: the mask goes there, and a draft
    token it removes is simply not accepted.
    """

    def __init__(self, vocab: int) -> None:
        import llama_cpp

        self.n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
        finishers = []
        self.with_digits: list[tuple[int, str]] = []
        for token in range(self.n_vocab):
            data = _token_bytes(vocab, token)
            if not data:
                continue  # control tokens: the grammar decides about them
            if not data[:1].isdigit():
                finishers.append(token)
            if len(data) <= 16 and any(0x30 <= byte <= 0x39 for byte in data):
                self.with_digits.append((token, data.decode("utf-8", errors="replace")))
        # Pieces that do not start with a digit end an id whose digits are already written.
        self.finishers = np.array(finishers, dtype=np.int64)

    def guard(self, table_ids: grammar.TableIds) -> Callable[[int, int], None]:
        """The sampler's ``before_draw`` hook: mask repeats while an id is being written."""

        def before_draw(ctx: int, index: int) -> None:
            if table_ids.active:
                self.forbid_repeats(ctx, table_ids, index)

        return before_draw

    def forbid_repeats(self, ctx: int, table_ids: grammar.TableIds, index: int = -1) -> None:
        """Remove the tokens that would repeat an id of the current table from the draw that
        reads the logits of batch position ``index``."""
        import llama_cpp

        pointer = llama_cpp.llama_get_logits_ith(ctx, index)
        logits = np.ctypeslib.as_array(pointer, (self.n_vocab,))
        if table_ids.id_is_taken():
            logits[self.finishers] = -np.inf
        for token, piece in self.with_digits:
            if table_ids.forbids(piece):
                logits[token] = -np.inf


class _Sampler:
    """llama.cpp's sampler chain: top-k -> top-p -> temperature -> seeded draw, and a grammar.

    With a grammar, checking all 152k vocabulary entries against it every token is what makes
    constrained generation slow. So a token is first drawn without the grammar and checked alone
    (one candidate); only when the grammar rejects it is the token drawn again from a chain that
    starts with the grammar (as llama.cpp's own common sampler does). Both grammar instances see
    every accepted token, so they stay in step.
    """

    def __init__(self, vocab: int, sampling: SamplingParams, grammar_text: str | None) -> None:
        import llama_cpp

        self.vocab = vocab
        self.sampling = sampling
        self.free_chain = self._chain(None)
        self.grammar_chain = None
        self.grammar_check = None
        self._candidate = llama_cpp.llama_token_data()
        self._single = llama_cpp.llama_token_data_array(
            data=ctypes.pointer(self._candidate), size=1, selected=-1, sorted=False
        )
        self.resampled = 0  # tokens the grammar rejected (for the benchmark)
        # Called with (ctx, batch index) before each draw: strict format's unique-id guard.
        self.before_draw: Callable[[int, int], None] | None = None
        if grammar_text is not None:
            self.set_grammar(grammar_text)

    def _grammar(self, grammar_text: str) -> int:
        import llama_cpp

        constraint = llama_cpp.llama_sampler_init_grammar(
            self.vocab, grammar_text.encode("utf-8"), b"root"
        )
        if not constraint:
            raise GenerationError("the strict-format grammar was rejected by llama.cpp")
        return constraint

    def _chain(self, grammar_text: str | None) -> int:
        import llama_cpp

        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        if grammar_text is not None:
            try:
                llama_cpp.llama_sampler_chain_add(chain, self._grammar(grammar_text))
            except GenerationError:
                llama_cpp.llama_sampler_free(chain)
                raise
        sampling = self.sampling
        if sampling.temperature <= 0:
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_greedy())
            return chain
        seed = llama_cpp.LLAMA_DEFAULT_SEED if sampling.seed is None else sampling.seed
        for stage in (
            llama_cpp.llama_sampler_init_top_k(TOP_K),
            llama_cpp.llama_sampler_init_top_p(sampling.top_p, 1),
            llama_cpp.llama_sampler_init_temp(sampling.temperature),
            llama_cpp.llama_sampler_init_dist(seed & 0xFFFFFFFF),
        ):
            llama_cpp.llama_sampler_chain_add(chain, stage)
        return chain

    def set_grammar(self, grammar_text: str) -> None:
        """Constrain the tokens from now on by ``grammar_text`` (replacing any grammar)."""
        self._free_grammar()
        self.grammar_check = self._grammar(grammar_text)
        self.grammar_chain = self._chain(grammar_text)

    def _allowed(self, token: int) -> bool:
        import llama_cpp

        self._candidate.id = token
        self._candidate.logit = 0.0
        self._candidate.p = 0.0
        self._single.selected = -1
        llama_cpp.llama_sampler_apply(self.grammar_check, ctypes.byref(self._single))
        return self._candidate.logit != float("-inf")

    def sample(self, ctx: int, index: int = -1) -> int:
        """Draw from the logits of batch position ``index`` (-1: the last one evaluated)."""
        import llama_cpp

        if self.before_draw is not None:
            self.before_draw(ctx, index)
        token = llama_cpp.llama_sampler_sample(self.free_chain, ctx, index)
        if self.grammar_check is None:
            return token
        if self._allowed(token):
            llama_cpp.llama_sampler_accept(self.grammar_chain, token)
        else:
            self.resampled += 1
            token = llama_cpp.llama_sampler_sample(self.grammar_chain, ctx, index)
        llama_cpp.llama_sampler_accept(self.grammar_check, token)
        return token

    def _free_grammar(self) -> None:
        import llama_cpp

        for name in ("grammar_chain", "grammar_check"):
            sampler = getattr(self, name)
            if sampler is not None:
                llama_cpp.llama_sampler_free(sampler)
                setattr(self, name, None)

    def close(self) -> None:
        import llama_cpp

        self._free_grammar()
        if self.free_chain is not None:
            llama_cpp.llama_sampler_free(self.free_chain)
            self.free_chain = None
