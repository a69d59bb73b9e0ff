"""The OpenAI-compatible server backend: the same story from llama.cpp's server,
llama-cpp-python's server or vLLM on another machine.

Photos are prepared here exactly as for the embedded backend (upright, RGB, 28-aligned within the
token budget) and sent as PNG data URIs, so the server has nothing to resize and boxes map back
the same way. Streaming goes through the ``openai`` client; closing the stream on cancel drops
the connection, which llama.cpp-family servers take as the signal to stop generating.
"""

from __future__ import annotations

import base64
import logging
import queue
import threading
import time
from collections.abc import Iterator

from desktop_app.engine import grammar
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
from desktop_app.engine.images import PreparedImage, prepare_photos
from desktop_app.engine.prompt import chat_messages
from desktop_app.errors import StorytellerError

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 600.0
CONNECT_TIMEOUT_S = 10.0


class ServerError(StorytellerError):
    """The server could not be reached or refused the request."""


def normalize_base_url(url: str) -> str:
    """``http://host:8000`` and ``http://host:8000/v1/`` both become ``http://host:8000/v1``."""
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        url = "http://" + url
    return url if url.endswith("/v1") else url + "/v1"


def image_part(photo: PreparedImage) -> dict[str, object]:
    """An OpenAI ``image_url`` content part holding the prepared photo as a PNG data URI."""
    data = base64.b64encode(photo.encoded("PNG")).decode("ascii")
    return {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}}


def build_request(
    request: StoryRequest, photos: list[PreparedImage], model: str
) -> dict[str, object]:
    """The keyword arguments of ``chat.completions.create`` for a story request."""
    sampling = request.sampling
    body: dict[str, object] = {
        "model": model,
        "messages": chat_messages(request.instruction, [image_part(p) for p in photos]),
        "stream": True,
        # The final chunk then carries the token counts (llama.cpp's server only sends them when
        # asked; servers that do not know the option ignore it).
        "stream_options": {"include_usage": True},
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "max_tokens": sampling.max_tokens,
    }
    if sampling.seed is not None:
        body["seed"] = sampling.seed
    if request.strict_format:
        strict = grammar.StrictFormat([p.prepared_size for p in photos], sampling.max_tokens)
        # llama.cpp's and llama-cpp-python's servers take a GBNF "grammar" field.
        body["extra_body"] = {"grammar": strict.combined_grammar()}
    return body


_END = object()
_STOPPED = object()
# How often a cancel is noticed while the server is still reading the prompt.
POLL_S = 0.1


class _Stream:
    """The request and its chunks on a helper thread, so a cancel is noticed even while the
    server is still reading the prompt (nothing arrives then); closing drops the connection."""

    def __init__(self, client: object, body: dict[str, object]) -> None:
        self._queue: queue.Queue[object] = queue.Queue()
        self._response: object = None
        self._closed = threading.Event()
        self._thread = threading.Thread(
            target=self._pump, args=(client, body), name="storyteller-server-stream", daemon=True
        )
        self._thread.start()

    def _pump(self, client: object, body: dict[str, object]) -> None:
        try:
            self._response = client.chat.completions.create(**body)  # type: ignore[attr-defined]
            if self._closed.is_set():
                self._response.close()  # type: ignore[attr-defined]
                return
            for chunk in self._response:  # type: ignore[attr-defined]
                self._queue.put(chunk)
            self._queue.put(_END)
        except BaseException as err:  # delivered to the consumer's thread
            self._queue.put(err if not self._closed.is_set() else _END)

    def next(self, should_stop: ShouldStop) -> object:
        """The next chunk, ``_END``, an exception, or ``_STOPPED`` once ``should_stop()``."""
        while True:
            try:
                return self._queue.get(timeout=POLL_S)
            except queue.Empty:
                if should_stop():
                    return _STOPPED

    def close(self) -> None:
        self._closed.set()
        response = self._response
        if response is not None:
            response.close()  # type: ignore[attr-defined]


class OpenAIServerBackend:
    """Streams stories from an OpenAI-compatible ``/v1/chat/completions`` endpoint."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        model: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        import openai

        self.base_url = normalize_base_url(base_url)
        self._model = model
        self._client = openai.OpenAI(
            base_url=self.base_url,
            api_key=api_key or "not-needed",
            timeout=openai.Timeout(timeout_s, connect=CONNECT_TIMEOUT_S),
            max_retries=0,
        )

    @property
    def description(self) -> str:
        return f"server {self.base_url}"

    def _translate(self, err: Exception) -> StorytellerError:
        import openai

        where = f"the server at {self.base_url}"
        if isinstance(err, openai.APITimeoutError):
            return ServerError(f"{where} did not answer in time: is it overloaded?")
        if isinstance(err, openai.APIConnectionError):
            return ServerError(
                f"cannot reach {where}: is it running? (e.g. python -m llama_cpp.server "
                "--model TEXT.gguf --clip_model_path MMPROJ.gguf --chat_format mtmd "
                "--logits_all false)"
            )
        if isinstance(err, (openai.AuthenticationError, openai.PermissionDeniedError)):
            return ServerError(f"{where} refused the API key: pass the right one with --api-key")
        if isinstance(err, openai.NotFoundError):
            return ServerError(
                f"{where} has no model {self._model!r} or no /v1/chat/completions: check the "
                "URL and the model name"
            )
        if isinstance(err, openai.APIStatusError):
            return ServerError(f"{where} rejected the request ({err.status_code}): {err.message}")
        return ServerError(f"{where} failed: {err}")

    def model_name(self) -> str:
        """The model to ask for: the configured one, else the server's first listed model."""
        if self._model:
            return self._model
        import openai

        try:
            models = list(self._client.models.list())
        except openai.NotFoundError:
            models = []
        except openai.OpenAIError as err:
            raise self._translate(err) from err
        self._model = models[0].id if models else "default"
        return self._model

    def generate(self, request: StoryRequest, *, should_stop: ShouldStop) -> Iterator[Event]:
        """Yield phase and token events, then one ``ResultEvent`` (see ``StoryBackend``)."""
        import openai

        started = time.perf_counter()
        photos: list[PreparedImage] = []
        yield from prepare_photos(
            request.photos, request.detail.token_budget, photos, request.known
        )
        infos = tuple(PhotoInfo(p.path, p.original_size, p.prepared_size, p.tokens) for p in photos)
        yield PhaseEvent(Phase.LOADING_MODEL)
        connect_started = time.perf_counter()
        model = self.model_name()
        body = build_request(request, photos, model)
        load_s = time.perf_counter() - connect_started
        total = len(photos)
        for index in range(1, total + 1):
            yield PhaseEvent(Phase.ENCODING_PHOTO, index, total)
        yield PhaseEvent(Phase.READING_PROMPT)
        prompt_started = time.perf_counter()
        pieces: list[str] = []
        finish = FinishReason.LENGTH
        first_token_s = prompt_eval_s = 0.0
        writing_started = None
        chunks = 0
        prompt_tokens = completion_tokens = 0
        stream = _Stream(self._client, body)
        try:
            while True:
                item = stream.next(should_stop)
                if item is _STOPPED:
                    finish = FinishReason.CANCELLED
                    break
                if item is _END:
                    break
                if isinstance(item, openai.OpenAIError):
                    raise self._translate(item) from item
                if isinstance(item, BaseException):
                    raise item
                chunk = item
                if getattr(chunk, "usage", None) is not None:
                    prompt_tokens = chunk.usage.prompt_tokens or prompt_tokens
                    completion_tokens = chunk.usage.completion_tokens or completion_tokens
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                text = choice.delta.content if choice.delta else None
                if text:
                    if writing_started is None:
                        writing_started = time.perf_counter()
                        prompt_eval_s = writing_started - prompt_started
                        first_token_s = writing_started - started
                        yield PhaseEvent(Phase.WRITING)
                    chunks += 1
                    pieces.append(text)
                    yield TokenEvent(text)
                if choice.finish_reason:
                    finish = (
                        FinishReason.STOP if choice.finish_reason == "stop" else FinishReason.LENGTH
                    )
                if should_stop():
                    finish = FinishReason.CANCELLED
                    break
        finally:
            stream.close()
        ended = time.perf_counter()
        timings = Timings(
            load_s=load_s,
            encode_s=tuple(0.0 for _ in photos),
            prompt_eval_s=prompt_eval_s,
            first_token_s=first_token_s,
            generation_s=ended - writing_started if writing_started else 0.0,
            # The server's own count when it sends one; else one per streamed piece.
            generated_tokens=completion_tokens or chunks,
            prompt_tokens=prompt_tokens,
        )
        yield ResultEvent(
            RunResult(
                raw_output="".join(pieces),
                finish_reason=finish,
                photos=infos,
                sampling=request.sampling,
                backend=self.description,
                model=model,
                timings=timings,
            )
        )

    def cached(self, request: StoryRequest) -> CachedParts:
        """Nothing is known: what the server caches is its own business."""
        return NOTHING_CACHED

    def close(self) -> None:
        self._client.close()
