"""The embedded backend: llama.cpp in this process through llama-cpp-python's low-level API.

Why not ``create_chat_completion``: its multimodal handlers re-encode every photo on every call,
resize photos themselves, count M-RoPE positions instead of KV cells, and cannot be interrupted
during prompt evaluation. Here the pipeline is explicit:

1. photos are prepared (``images.prepare_image``) before anything loads, so a bad photo costs
   nothing;
2. the context is sized from the real token cost and checked against the model and the machine;
3. mtmd tokenizes the prompt (our own aligned pixels, so mtmd does not resize);
4. each photo's embedding comes from the cache or from ``mtmd_encode_chunk`` (then cached), on
   a thread of its own so that Stop need not wait for it (``photo_encoder``);
5. text chunks and the embeddings are decoded into the KV cache (abortable);
6. tokens are sampled with llama.cpp's sampler chain (optionally grammar-constrained), checking
   ``should_stop`` between tokens; by default several per evaluation, drafted from forced text
   and n-grams and verified in one batch (``speculation``: the same distribution as token by
   token; the bytes can differ at near-ties).

Loading lives in ``llama_model``; steps 3-5 as a run takes them (the saved state of the same
prompt, or a read) in ``llama_prompt_reading``, over ``llama_prompt``'s llama.cpp calls; step 6
in ``llama_writing``, over ``llama_sampling``'s sampler chain and ``speculation``. This module
sizes the run and orchestrates them.

``Llama`` is not thread-safe: one ``generate`` at a time per backend.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from desktop_app import paths
from desktop_app.engine import (
    costs,
    device,
    grammar,
    photo_encoder,
    prompt_cache,
    prompt_prefix,
    speeds,
)
from desktop_app.engine.api import (
    NOTHING_CACHED,
    CachedParts,
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
)
from desktop_app.engine.embedding_cache import EmbeddingCache, embedding_key
from desktop_app.engine.gguf_info import (
    check_pair,
    read_projector_info,
    read_text_model_info,
)
from desktop_app.engine.images import (
    PhotoError,
    PreparedImage,
    photo_identity,
    prepare_photos,
    tokens_for_size,
)
from desktop_app.engine.llama_model import Loaded, load
from desktop_app.engine.llama_prompt import PromptReader
from desktop_app.engine.llama_prompt_reading import read_prompt
from desktop_app.engine.llama_writing import Writer
from desktop_app.engine.prompt import MEDIA_MARKER, build_prompt
from desktop_app.engine.speculation import CostModel, SpeculationStats, repeatable_cost
from desktop_app.errors import StorytellerError

logger = logging.getLogger(__name__)

MIN_CONTEXT = 4096


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
        prefix_reuse: bool = True,
    ) -> None:
        self.model_path = Path(model_path)
        self.mmproj_path = Path(mmproj_path)
        # Metadata first: a wrong or mismatched file is a clear error before llama.cpp sees it.
        self.text_info = read_text_model_info(self.model_path)
        self.projector_info = read_projector_info(self.mmproj_path)
        check_pair(self.text_info, self.projector_info)
        self.shape = costs.shape_of(self.text_info, self.projector_info)
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
        self._encoder = photo_encoder.PhotoEncoder(self._encoded, self._encode_estimate)
        # Draft and batch-verify tokens while writing (the same distribution; off: one token
        # per step).
        self.speculation = speculation
        self._writer = Writer()
        self._loaded: Loaded | None = None
        self._reader = PromptReader(
            self.prompts,
            text_model_id=self.text_model_id,
            projector_id=self.projector_id,
            n_gpu_layers=self.n_gpu_layers,
            prefix_reuse=prefix_reuse,
        )

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
    def prompt_tokens_read(self) -> int:
        """Prompt tokens evaluated so far (a reused prompt adds one)."""
        return self._reader.prompt_tokens_read

    @property
    def speculation_stats(self) -> SpeculationStats:
        """What speculation did over this backend's runs."""
        return self._writer.speculation_stats

    @property
    def grammar_resampled(self) -> int:
        """Strict format: tokens the grammar made a run draw again, over this backend's runs."""
        return self._writer.grammar_resampled

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

    def _kept(self, n_ctx: int) -> Loaded | None:
        """The loaded model if a run needing ``n_ctx`` uses it as it is (a larger context is
        kept, never reloaded smaller), else None."""
        loaded = self._loaded
        return loaded if loaded is not None and loaded.n_ctx >= n_ctx else None

    def _load(self, n_ctx: int) -> Loaded:
        kept = self._kept(n_ctx)
        if kept is not None:
            return kept
        self._unload()
        self._loaded = load(
            self.model_path,
            self.mmproj_path,
            n_ctx,
            n_gpu_layers=self.n_gpu_layers,
            n_threads=self.n_threads,
            use_mmap=self.use_mmap,
            verbose=self.verbose,
        )
        return self._loaded

    def preload(self, n_ctx: int | None = None) -> None:
        """Load the model and projector now (otherwise the first ``generate`` does)."""
        self._load(n_ctx or self.fixed_n_ctx or min(MIN_CONTEXT, self.text_info.context_length))

    def _unload(self) -> None:
        if self._loaded is None:
            return
        from llama_cpp import mtmd_cpp

        loaded, self._loaded = self._loaded, None
        # A stopped run's photo may still be in the vision encoder: it frees the projector then.
        self._encoder.release(lambda: mtmd_cpp.mtmd_free(loaded.mtmd_ctx))
        loaded.llm.close()  # the vision encoder does not use the text model

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

    def plan_context(self, prompt_text: str, image_tokens: Sequence[int], max_tokens: int) -> int:
        """The n_ctx this run needs; ``StorytellerError`` if the model or machine cannot hold it.

        Prompt text is counted by its UTF-8 bytes (no BPE token is shorter than one byte), so the
        estimate is an upper bound available before the model loads.
        """
        text_bytes = len(prompt_text.replace(MEDIA_MARKER, "").encode("utf-8"))
        needed = costs.context_tokens(text_bytes, list(image_tokens), max_tokens)
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
        largest = max(image_tokens, default=0)
        costs.check_fits(
            needed,
            n_ctx=n_ctx,
            context_length=self.text_info.context_length,
            memory_bytes=costs.run_memory_bytes(self.shape, n_ctx, largest, needed - max_tokens),
            physical_bytes=costs.physical_memory_bytes() if self.n_gpu_layers == 0 else None,
        )
        return n_ctx

    # -- what a run would find cached -----------------------------------------------------------

    def _prompt_text(self, request: StoryRequest) -> str:
        return build_prompt(
            request.instruction, len(request.photos), chat_template=self.text_info.chat_template
        )

    def _photo_keys(self, photos: Sequence[tuple[str, tuple[int, int]]]) -> list[str]:
        """The embedding cache key of each photo (content hash, prepared size): what a run looks
        up, and how its prompt's chunks name the photos."""
        return [embedding_key(sha, size, self.projector_id) for sha, size in photos]

    def cached(self, request: StoryRequest) -> CachedParts:
        """Which of ``request``'s photo embeddings a run would find cached, how many leading
        photos it would not read again (a kept or live prompt state shares them), and whether
        the whole prompt is kept, without loading the model or running llama.cpp: the keys the
        run computes, from the library's facts in ``request.known`` when given, else from the
        files. Not while ``generate`` runs (the caches are not thread-safe).
        """
        identities = []
        for index, path in enumerate(request.photos):
            known = request.known[index] if index < len(request.known) else None
            try:
                identities.append(photo_identity(path, request.detail.token_budget, known))
            except PhotoError:
                return NOTHING_CACHED  # the run refuses the album before it looks anything up
        prompt_text = self._prompt_text(request)
        tokens = [tokens_for_size(size) for _, size in identities]
        try:
            n_ctx = self.plan_context(prompt_text, tokens, request.sampling.max_tokens)
        except StorytellerError:
            return NOTHING_CACHED  # (the same)
        kept = self._kept(n_ctx)
        keys = self._photo_keys(identities)
        prefixes = self._reader.prefixes(prompt_text, keys)
        shared = self._reader.reusable(kept, prefixes, kept.n_ctx if kept else n_ctx)
        whole = shared == len(prefixes)
        read = 0 if whole else prompt_prefix.photos_in(shared)
        return CachedParts(tuple(self.cache.has(k) for k in keys), whole, photos_read=read)

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
        started = time.perf_counter()
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

        prompt_text = self._prompt_text(request)
        n_ctx = self.plan_context(
            prompt_text, [p.tokens for p in photos], request.sampling.max_tokens
        )

        keys = self._photo_keys([(p.content_hash, p.prepared_size) for p in photos])
        was_loaded = self._kept(n_ctx) is not None
        # A photo left in the encoder is waited for where the run uses the projector (reading
        # the prompt), or here if the run loads a new one (``photo_encoder``).
        if not was_loaded:
            finishing = self._encoder.finishing(photos, keys)
            if finishing is not None:
                yield finishing
            if not self._encoder.settle(should_stop):
                yield self._result("", FinishReason.CANCELLED, infos, request.sampling, Timings())
                return
        yield PhaseEvent(Phase.LOADING_MODEL)
        load_started = time.perf_counter()
        loaded = self._load(n_ctx)
        load_s = 0.0 if was_loaded else time.perf_counter() - load_started

        read = yield from read_prompt(
            loaded,
            prompt_text,
            photos,
            keys,
            reader=self._reader,
            embeddings=self.cache,
            encoder=self._encoder,
            timings=Timings(load_s=load_s),
            should_stop=should_stop,
        )
        if read.cancelled:
            yield self._result("", FinishReason.CANCELLED, infos, request.sampling, read.timings)
            return

        written = yield from self._writer.write(
            loaded,
            prompt_text,
            request.sampling,
            strict,
            should_stop,
            speculate=self._speculates(request.sampling),
            draft_cost=self._draft_cost(request.sampling),
            started=started,
            timings=read.timings,
        )
        yield self._result(written.text, written.finish, infos, request.sampling, written.timings)

    def prepare(self, request: StoryRequest, *, should_stop: ShouldStop) -> Iterator[PhaseEvent]:
        """Get a run of ``request`` ready before Generate: load the model, encode the photos and
        read the whole prompt, on one llama.cpp thread, yielding a phase event per photo.
        ``should_stop`` ends it between batches (a photo in the vision encoder finishes there, as
        for a stopped run; what was read stays for the run). The next ``generate`` of the same
        photos, detail and instruction evaluates only the prompt's last token again, as Generate
        again does, and draws from the logits a cold run draws from."""
        import llama_cpp

        try:
            photos: list[PreparedImage] = []
            yield from prepare_photos(
                request.photos, request.detail.token_budget, photos, request.known
            )
            prompt_text = self._prompt_text(request)
            tokens = [p.tokens for p in photos]
            n_ctx = self.plan_context(prompt_text, tokens, request.sampling.max_tokens)
            if not photos or not self._encoder.settle(should_stop) or should_stop():
                return
            loaded = self._load(n_ctx)
            keys = self._photo_keys([(p.content_hash, p.prepared_size) for p in photos])
            # One thread: the user is arranging photos meanwhile (the encoder keeps its own).
            llama_cpp.llama_set_n_threads(loaded.llm.ctx, 1, 1)
            try:
                yield from read_prompt(
                    loaded,
                    prompt_text,
                    photos,
                    keys,
                    reader=self._reader,
                    embeddings=self.cache,
                    encoder=self._encoder,
                    timings=Timings(),
                    should_stop=should_stop,
                    preparing=True,
                )
            finally:
                llama_cpp.llama_set_n_threads(loaded.llm.ctx, self.n_threads, self.n_threads)
        finally:
            self.cache.flush()

    @property
    def is_loaded(self) -> bool:
        """Whether the model is loaded now (preparing then costs no new memory)."""
        return self._loaded is not None

    def release(self) -> None:
        """Free the model and its contexts (an idle app gives its memory back); the caches
        stay, so the next run restores its prompt instead of reading it."""
        self._unload()

    def _encode_estimate(self, tokens: int) -> float:
        """Seconds one photo of ``tokens`` vision tokens should take in the encoder here."""
        return speeds.encode_seconds(self.speeds(), [tokens], NOTHING_CACHED)[0]

    def _encoded(self, key: str, embedding: np.ndarray) -> None:
        self.cache.put(key, embedding)
        self.photos_encoded += 1

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

    def _speculates(self, sampling: SamplingParams) -> bool:
        """Whether this run drafts and batch-verifies tokens.

        Not for a sampled run with a fixed seed: batched logits round slightly differently from
        single ones, so its draws could differ from the same seed's run without speculation
        (the default before this setting existed). A greedy run drafts, on a fixed schedule
        (``_draft_cost``); a random seed promises nothing to repeat.
        """
        return self.speculation and (sampling.temperature <= 0 or sampling.seed is None)

    def _draft_cost(self, sampling: SamplingParams) -> CostModel | None:
        """The fixed cost drafts follow in a run that promises to repeat (temperature 0 or a
        fixed seed): a schedule no timing changes, so the same request gives the same batches
        and the same story. None: drafts follow measured timings (a random seed)."""
        if sampling.temperature <= 0 or sampling.seed is not None:
            return repeatable_cost(self.n_gpu_layers != 0)
        return None
