"""A backend that replays a fixed model output: deterministic GUI tests, demos and screenshots.

It never loads a model, but it behaves as the embedded llama.cpp backend does, so that a view or
a policy that works with it works with llama.cpp (``tests/engine/test_engine_replay_contract.py``
runs both on the same requests and compares their events):

- the same phases in the same order: every photo is prepared (by the engine's own
  ``prepare_photos``, so an unusable photo raises the same ``UnusablePhotosError`` after every
  photo was tried), then the model "loads", then each photo is encoded, the prompt is read, and
  the output is written;
- Stop is honoured where llama.cpp honours it: after each photo's encode (a run stopped before
  writing ends with a cancelled result and no text), while a photo is in the vision encoder,
  while it reads the prompt, and between tokens;
- what it has "encoded" is cached as llama.cpp caches it: a photo's embedding by its content and
  the size its detail prepares it to, the prompt's state by its chunks (text, photo, text, ...:
  ``prompt_prefix``). ``cached`` answers from that, a second identical run encodes no photo and
  reads no prompt (``Timings.prompt_reused``), like Generate again on the real backend, and a
  run that shares leading photos with an earlier one encodes none of them. A photo still in the
  encoder when its run stopped is filed by the next run that uses the encoder (one whose whole
  prompt is restored does not), which says so first (``Phase.FINISHING_PHOTO`` when it needs the
  photo, else ``FINISHING_OLD_PHOTO``/``FINISHING_OTHER_PHOTO``) and may be stopped meanwhile.

What it does not model: the context and memory checks (``plan_context``), and the prepared size
it reports, which is the photo's own size unless ``prepared_size`` says otherwise (the scripted
output's boxes are written in those pixels).

For tests that need time to pass: ``token_delay_s`` slows the writing, and an ``EncodingGate``
holds every photo that needs encoding until the test opens it, so a test can press Stop "while a
photo encodes" without sleeping.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Sequence

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
    ShouldStop,
    StoryRequest,
    Timings,
    TokenEvent,
)
from desktop_app.engine.embedding_cache import embedding_key
from desktop_app.engine.images import (
    PhotoError,
    PreparedImage,
    photo_identity,
    prepare_photos,
    tokens_for_size,
)
from desktop_app.engine.photo_encoder import POLL_S
from desktop_app.engine.prompt import build_prompt
from desktop_app.engine.prompt_prefix import chunk_prefixes, photos_in

# Roughly token-sized pieces: a word with its leading space, or a run of punctuation/markup.
_PIECE = re.compile(r"\s*[\w']+|\s*[^\w\s]|\s+")
# The identity its "model" and "projector" have in its cache keys.
_MODEL_ID = "scripted"


def split_into_tokens(text: str) -> list[str]:
    """Split ``text`` into token-like pieces whose concatenation is ``text``."""
    return _PIECE.findall(text)


class EncodingGate:
    """Holds a replayed run in its vision encoder until ``open``: deterministic "Stop while a
    photo encodes" in tests. ``reached`` is set once a run waits at the gate; a gate left shut
    for ``timeout_s`` fails the run (a test that forgot to open it fails, it does not hang)."""

    def __init__(self, timeout_s: float = 30.0) -> None:
        self.reached = threading.Event()
        self._opened = threading.Event()
        self._timeout_s = timeout_s

    def open(self) -> None:
        """Let every held encode finish, now and from now on."""
        self._opened.set()

    def is_open(self) -> bool:
        """Whether ``open`` was called."""
        return self._opened.is_set()

    def wait(self, should_stop: ShouldStop) -> bool:
        """Wait until the gate opens (True) or ``should_stop()`` turns true first (False),
        asking it as often as llama.cpp's backend asks while a photo encodes."""
        self.reached.set()
        deadline = time.monotonic() + self._timeout_s
        while not self._opened.wait(POLL_S):
            if should_stop():
                return False
            if time.monotonic() > deadline:
                raise TimeoutError(f"the encoding gate stayed shut for {self._timeout_s} s")
        return True


class ReplayBackend:
    """Replays ``output`` token by token, optionally with a delay between tokens.

    ``prepared_size``: the prepared size its results report for every photo (default: the
    photo's own size). ``encoding_gate``: holds each photo's encode until the test opens it.
    """

    def __init__(
        self,
        output: str,
        *,
        token_delay_s: float = 0.0,
        prepared_size: tuple[int, int] | None = None,
        encoding_gate: EncodingGate | None = None,
    ) -> None:
        self._output = output
        self._token_delay_s = token_delay_s
        self._prepared_size = prepared_size
        self.encoding_gate = encoding_gate
        self.runs = 0
        self.requests: list[StoryRequest] = []  # what it was asked, in order (for tests)
        self.photos_encoded = 0  # photos that went through its "vision encoder" (not cached)
        self._embeddings: set[str] = set()  # embedding keys it has "encoded"
        self._prompts: set[str] = set()  # chunk digests of the prompts whose "KV state" it kept
        # A stopped run's photo, still being encoded: its embedding key and content hash.
        self._in_encoder: tuple[str, str] | None = None

    @property
    def description(self) -> str:
        return "scripted (no model)"

    # -- what a run would find cached -----------------------------------------------------------

    def _keys(
        self, request: StoryRequest, identities: Sequence[tuple[str, tuple[int, int]]]
    ) -> tuple[list[str], list[str]]:
        """Each photo's embedding key (content hash, prepared size) and the prompt's chunk
        digests (the last one names the whole prompt), as llama.cpp's backend computes them."""
        keys = [embedding_key(sha, size, _MODEL_ID) for sha, size in identities]
        text = build_prompt(request.instruction, len(request.photos))
        return keys, chunk_prefixes(_MODEL_ID, text, keys)

    def _shared(self, prefixes: Sequence[str]) -> int:
        """Leading chunks of this prompt an earlier run read (all kept: nothing is evicted)."""
        return next((n for n in range(len(prefixes), 0, -1) if prefixes[n - 1] in self._prompts), 0)

    def cached(self, request: StoryRequest) -> CachedParts:
        """Which of ``request``'s photos, how many leading photos already read, and whether its
        prompt, an earlier run left cached (what llama.cpp's backend answers: see the module
        docstring); nothing when a photo cannot be read. Not while ``generate`` runs."""
        identities = []
        for index, path in enumerate(request.photos):
            known = request.known[index] if index < len(request.known) else None
            try:
                identities.append(photo_identity(path, request.detail.token_budget, known))
            except PhotoError:
                return NOTHING_CACHED  # the run refuses the album before it looks anything up
        keys, prefixes = self._keys(request, identities)
        shared = self._shared(prefixes)
        whole = shared == len(prefixes)
        read = 0 if whole else photos_in(shared)
        return CachedParts(tuple(k in self._embeddings for k in keys), whole, photos_read=read)

    # -- the run --------------------------------------------------------------------------------

    def _photo_info(self, photo: PreparedImage) -> PhotoInfo:
        prepared = self._prepared_size or photo.original_size
        return PhotoInfo(photo.path, photo.original_size, prepared, tokens_for_size(prepared))

    def _encode(self, key: str, content_hash: str, should_stop: ShouldStop) -> bool:
        """Encode one photo (held at the gate, if any): False when ``should_stop`` turned true
        first, the photo then staying in the encoder for the next run to file."""
        gate = self.encoding_gate
        if gate is not None and not gate.wait(should_stop):
            self._in_encoder = (key, content_hash)
            return False
        self._embeddings.add(key)
        self.photos_encoded += 1
        return True

    def _finishing(
        self, photos: list[PreparedImage], keys: list[str], first: int
    ) -> PhaseEvent | None:
        """The phase of a run that waits for the photo a stopped run left in the encoder (as
        ``PhotoEncoder.finishing`` says it; no time bound: the gate decides)."""
        gate = self.encoding_gate
        if self._in_encoder is None or gate is None or gate.is_open():
            return None  # done already: filed at once
        key, content_hash = self._in_encoder
        if key in keys[first:]:
            return PhaseEvent(Phase.FINISHING_PHOTO, keys.index(key, first) + 1)
        same_file = any(p.content_hash == content_hash for p in photos)
        return PhaseEvent(Phase.FINISHING_OLD_PHOTO if same_file else Phase.FINISHING_OTHER_PHOTO)

    def _settle(self, should_stop: ShouldStop) -> bool:
        """Let the photo a stopped run left in the encoder finish, and file it; False if
        ``should_stop`` turned true first (it is still in the encoder)."""
        if self._in_encoder is None:
            return True
        key, _content_hash = self._in_encoder
        gate = self.encoding_gate
        if gate is not None and not gate.wait(should_stop):
            return False
        self._in_encoder = None
        self._embeddings.add(key)
        self.photos_encoded += 1
        return True

    def generate(self, request: StoryRequest, *, should_stop: ShouldStop) -> Iterator[Event]:
        """Yield phase and token events, then one ``ResultEvent`` (see ``StoryBackend``)."""
        self.runs += 1
        self.requests.append(request)
        started = time.perf_counter()
        photos: list[PreparedImage] = []
        yield from prepare_photos(
            request.photos, request.detail.token_budget, photos, request.known
        )
        infos = tuple(self._photo_info(photo) for photo in photos)
        total = len(photos)

        def cancelled(timings: Timings) -> ResultEvent:
            return self._result("", FinishReason.CANCELLED, infos, request, timings)

        yield PhaseEvent(Phase.LOADING_MODEL)
        keys, prefixes = self._keys(request, [(p.content_hash, p.prepared_size) for p in photos])
        shared = self._shared(prefixes)
        if shared < len(prefixes):  # the run uses the encoder: a photo left in it comes first
            finishing = self._finishing(photos, keys, photos_in(shared))
            if finishing is not None:
                yield finishing
            if not self._settle(should_stop):
                yield cancelled(Timings())
                return
        if shared == len(prefixes):  # Generate again: no photo encoded, one prompt token read
            yield PhaseEvent(Phase.READING_PROMPT)
            yield PhaseEvent(Phase.WRITING)
            timings = Timings(encode_s=(0.0,) * total, prompt_reused=True)
            yield from self._write(request, should_stop, started, infos, timings)
            return

        # Looked up once, before encoding; the photos of the prefix already read need nothing.
        was_cached = [
            index < photos_in(shared) or k in self._embeddings for index, k in enumerate(keys)
        ]
        encode_s: list[float] = []
        for index, (photo_key, cached) in enumerate(zip(keys, was_cached, strict=True), start=1):
            yield PhaseEvent(Phase.ENCODING_PHOTO, index, total)
            encode_started = time.perf_counter()
            held = photos[index - 1].content_hash
            if not cached and not self._encode(photo_key, held, should_stop):
                yield cancelled(Timings(encode_s=tuple(encode_s)))
                return
            encode_s.append(0.0 if cached else time.perf_counter() - encode_started)
            if should_stop():
                yield cancelled(Timings(encode_s=tuple(encode_s)))
                return

        yield PhaseEvent(Phase.READING_PROMPT)
        if should_stop():  # llama.cpp's prompt reading is aborted, and its state not kept
            yield cancelled(Timings(encode_s=tuple(encode_s)))
            return
        self._prompts.update(prefixes)
        yield PhaseEvent(Phase.WRITING)
        yield from self._write(
            request, should_stop, started, infos, Timings(encode_s=tuple(encode_s))
        )

    def _write(
        self,
        request: StoryRequest,
        should_stop: ShouldStop,
        started: float,
        infos: tuple[PhotoInfo, ...],
        timings: Timings,
    ) -> Iterator[Event]:
        """The output, piece by piece, asking ``should_stop`` before each; then the result."""
        pieces = split_into_tokens(self._output)
        written: list[str] = []
        finish = FinishReason.LENGTH  # unless the answer ends within max_tokens
        first_token_s = 0.0
        writing_started = time.perf_counter()
        # As llama.cpp's backend: Stop is asked before each token, the end of the answer is one
        # more token (so max_tokens may cut it off), and the end of the answer is not text.
        for index in range(request.sampling.max_tokens):
            if should_stop():
                finish = FinishReason.CANCELLED
                break
            if index == len(pieces):
                finish = FinishReason.STOP
                break
            if self._token_delay_s:
                time.sleep(self._token_delay_s)
            if not written:
                first_token_s = time.perf_counter() - started
            written.append(pieces[index])
            yield TokenEvent(pieces[index])
        ended = time.perf_counter()
        timings = Timings(
            encode_s=timings.encode_s,
            first_token_s=first_token_s,
            generation_s=ended - writing_started,
            generated_tokens=len(written),
            prompt_reused=timings.prompt_reused,
        )
        yield self._result("".join(written), finish, infos, request, timings)

    def _result(
        self,
        text: str,
        finish: FinishReason,
        infos: tuple[PhotoInfo, ...],
        request: StoryRequest,
        timings: Timings,
    ) -> ResultEvent:
        return ResultEvent(
            RunResult(
                raw_output=text,
                finish_reason=finish,
                photos=infos,
                sampling=request.sampling,
                backend=self.description,
                model="scripted",
                timings=timings,
            )
        )

    def close(self) -> None:
        """Unload the pretend model: a photo still in the encoder is dropped; what was cached stays
        (llama.cpp's backend has it on disk by then)."""
        self._in_encoder = None
        self._n_ctx = 0
