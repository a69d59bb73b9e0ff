"""The OpenAI-compatible server backend: the same story from llama.cpp's server,
llama-cpp-python's server or vLLM on another machine.

Photos are prepared here exactly as for the embedded backend (upright, RGB, 28-aligned within the
token budget) and sent as PNG data URIs, so the server has nothing to resize and boxes map back
the same way. Streaming goes through the ``openai`` client; closing the stream on cancel drops
the connection, which llama.cpp-family servers take as the signal to stop generating.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

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


class ServerKind(Enum):
    """Which server answers: it decides the field strict format's grammar goes in."""

    LLAMA_CPP = "llama.cpp's llama-server"
    LLAMA_CPP_PYTHON = "llama-cpp-python's server"
    VLLM = "vLLM"
    OTHER = "an OpenAI-compatible server"

    @property
    def takes_grammar(self) -> bool:
        return self is not ServerKind.OTHER


STRICT_UNSUPPORTED = (
    "strict format is not supported by this server: turn it off or use llama.cpp or vLLM"
)


def grammar_fields(kind: ServerKind, gbnf: str) -> dict[str, object]:
    """The request fields that carry the GBNF ``gbnf`` to a ``kind`` server.

    llama.cpp's and llama-cpp-python's servers take a top-level ``grammar``; vLLM (0.12 and
    later) takes ``structured_outputs: {"grammar": ...}`` (its "Structured Outputs" page; the
    older ``guided_grammar`` was removed), compiled by xgrammar, which reads GBNF. Any other
    server would ignore an unknown field and write unconstrained text: refused instead.
    """
    if kind in (ServerKind.LLAMA_CPP, ServerKind.LLAMA_CPP_PYTHON):
        return {"grammar": gbnf}
    if kind is ServerKind.VLLM:
        return {"structured_outputs": {"grammar": gbnf}}
    raise ServerError(STRICT_UNSUPPORTED)


@dataclass(frozen=True)
class ServerInfo:
    """What the server is, the model it serves (the one asked for), and its grammar support."""

    kind: ServerKind
    model: str

    def describe(self) -> str:
        grammar = (
            "takes a grammar (strict format works)"
            if self.kind.takes_grammar
            else "takes no grammar (strict format unavailable)"
        )
        return f"{self.kind.value}, model {self.model}; {grammar}"


def kind_from_owner(owned_by: str | None) -> ServerKind:
    """The server by ``/v1/models``' ``owned_by``: vLLM says "vllm", llama-cpp-python "me"."""
    owner = (owned_by or "").strip().lower()
    if owner == "vllm":
        return ServerKind.VLLM
    if owner == "llamacpp":
        return ServerKind.LLAMA_CPP
    if owner == "me":
        return ServerKind.LLAMA_CPP_PYTHON
    return ServerKind.OTHER


def build_request(
    request: StoryRequest,
    photos: list[PreparedImage],
    model: str,
    kind: ServerKind = ServerKind.LLAMA_CPP,
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
        body["extra_body"] = grammar_fields(kind, strict.combined_grammar())
    return body


@dataclass(frozen=True)
class ServerTimings:
    """What llama.cpp's server measured of one request (its final chunk's ``timings``).

    Its writing time runs from the first generated token, visible or not: the client's clock
    starts at the first visible text, which a model writing markup or byte pieces may send late
    or never, so the server's figures replace the client's where it sends them.
    """

    prompt_s: float
    generation_s: float
    generated_tokens: int

    def applied_to(self, timings: Timings) -> Timings:
        return dataclasses.replace(
            timings,
            prompt_eval_s=self.prompt_s,
            generation_s=self.generation_s,
            generated_tokens=self.generated_tokens or timings.generated_tokens,
        )


def server_timings(chunk: object) -> ServerTimings | None:
    """llama.cpp's ``timings`` in a streamed chunk, if it carries them (others never do)."""
    extra = getattr(chunk, "model_extra", None) or {}
    found = extra.get("timings") if isinstance(extra, dict) else None
    if not isinstance(found, dict):
        return None
    try:
        return ServerTimings(
            prompt_s=float(found.get("prompt_ms") or 0.0) / 1000,
            generation_s=float(found.get("predicted_ms") or 0.0) / 1000,
            generated_tokens=int(found.get("predicted_n") or 0),
        )
    except (TypeError, ValueError):
        return None


_END = object()
_STOPPED = object()
# How often a cancel is noticed while the server is still reading the prompt.
POLL_S = 0.1
# A busy server is asked again after these pauses (then its error is the story's).
RETRIED_STATUSES = (429, 503)
RETRY_PAUSES_S = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
MAX_PAUSE_S = 30.0


def _broke_off(item: object) -> bool:
    """An error of the connection itself, raised by the HTTP client under ``openai`` while the
    stream is read (the server died or closed it): the client library's, or the socket's."""
    if not isinstance(item, Exception):
        return False
    package = type(item).__module__.split(".")[0]
    return isinstance(item, OSError) or package.startswith(("httpx", "httpcore", "h11"))


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
            self._response = self._create(client, body)
            if self._response is None or self._closed.is_set():
                if self._response is not None:
                    self._response.close()  # type: ignore[attr-defined]
                self._queue.put(_END)
                return
            for chunk in self._response:  # type: ignore[attr-defined]
                self._queue.put(chunk)
            self._queue.put(_END)
        except BaseException as err:  # delivered to the consumer's thread
            self._queue.put(err if not self._closed.is_set() else _END)

    def _create(self, client: object, body: dict[str, object]) -> object:
        """The streaming response; a busy server (429, 503: all its slots taken, or loading) is
        asked again after a growing pause (or its Retry-After). None once closed meanwhile."""
        import openai

        for pause in (*RETRY_PAUSES_S, None):
            try:
                return client.chat.completions.create(**body)  # type: ignore[attr-defined]
            except openai.APIStatusError as err:
                if pause is None or err.status_code not in RETRIED_STATUSES:
                    raise
                try:
                    asked = float(err.response.headers.get("retry-after") or 0)
                except ValueError:
                    asked = 0.0
                logger.info("server busy (%s): asking again in %.1f s", err.status_code, pause)
                if self._closed.wait(min(max(pause, asked), MAX_PAUSE_S)):
                    return None
        return None

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
        self._api_key = api_key or "not-needed"
        self._info: ServerInfo | None = None
        self._client = openai.OpenAI(
            base_url=self.base_url,
            api_key=self._api_key,
            timeout=openai.Timeout(timeout_s, connect=CONNECT_TIMEOUT_S),
            max_retries=0,
        )

    @property
    def description(self) -> str:
        return f"server {self.base_url}"

    def _translate(self, err: Exception) -> StorytellerError:
        import openai

        where = f"the server at {self.base_url}"
        if not isinstance(err, openai.OpenAIError):  # the HTTP client's own: the stream broke off
            return ServerError(
                f"{where} stopped answering mid-story: is it still running? "
                f"({type(err).__name__}: {err})"
            )
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
        return self.identify().model

    def identify(self) -> ServerInfo:
        """What the server is (``/v1/models``' ``owned_by``, else llama.cpp's ``/props``) and
        the model to ask for; asked once per backend."""
        if self._info is not None:
            return self._info
        import openai

        try:
            models = list(self._client.models.list())
        except openai.NotFoundError:
            models = []
        except openai.OpenAIError as err:
            raise self._translate(err) from err
        chosen = next((m for m in models if m.id == self._model), models[0] if models else None)
        kind = kind_from_owner(getattr(chosen, "owned_by", None))
        if kind is ServerKind.OTHER and self._has_llama_cpp_props():
            kind = ServerKind.LLAMA_CPP
        model = self._model or (chosen.id if chosen is not None else "default")
        self._info = ServerInfo(kind, model)
        return self._info

    def _has_llama_cpp_props(self) -> bool:
        """True when ``GET /props`` answers as llama.cpp's server does (its generation settings)."""
        import json
        import urllib.error
        import urllib.request

        root = self.base_url.removesuffix("/v1")
        asked = urllib.request.Request(
            f"{root}/props", headers={"Authorization": f"Bearer {self._api_key}"}
        )
        try:
            with urllib.request.urlopen(asked, timeout=CONNECT_TIMEOUT_S) as response:
                props = json.loads(response.read())
        except (OSError, ValueError):  # URLError and HTTPError are OSErrors
            return False
        return isinstance(props, dict) and "default_generation_settings" in props

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
        info = self.identify()
        model = info.model
        # Refused here, before the server is asked anything (grammar_fields raises).
        body = build_request(request, photos, model, info.kind)
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
        measured: ServerTimings | None = None
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
                if isinstance(item, openai.OpenAIError) or _broke_off(item):
                    raise self._translate(item) from item
                if isinstance(item, BaseException):
                    raise item
                chunk = item
                if getattr(chunk, "usage", None) is not None:
                    prompt_tokens = chunk.usage.prompt_tokens or prompt_tokens
                    completion_tokens = chunk.usage.completion_tokens or completion_tokens
                measured = server_timings(chunk) or measured
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
        if measured is not None:
            timings = measured.applied_to(timings)
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
