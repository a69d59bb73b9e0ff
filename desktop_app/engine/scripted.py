"""A backend that replays a fixed model output: deterministic GUI tests, demos and screenshots.

It goes through the same phases and events as the real backends, so a view that works with it
works with llama.cpp; it never loads a model.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

from PIL import Image

from desktop_app.engine.events import (
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
from desktop_app.engine.images import tokens_for_size
from desktop_app.imaging import upright_size

# Roughly token-sized pieces: a word with its leading space, or a run of punctuation/markup.
_PIECE = re.compile(r"\s*[\w']+|\s*[^\w\s]|\s+")


def split_into_tokens(text: str) -> list[str]:
    """Split ``text`` into token-like pieces whose concatenation is ``text``."""
    return _PIECE.findall(text)


class ScriptedBackend:
    """Replays ``output`` token by token, optionally with a delay between tokens."""

    def __init__(
        self,
        output: str,
        *,
        token_delay_s: float = 0.0,
        prepared_size: tuple[int, int] | None = None,
    ) -> None:
        self._output = output
        self._token_delay_s = token_delay_s
        self._prepared_size = prepared_size
        self.runs = 0
        self.requests: list[StoryRequest] = []  # what it was asked, in order (for tests)

    @property
    def description(self) -> str:
        return "scripted (no model)"

    def _photo_info(self, path: Path) -> PhotoInfo:
        with Image.open(path) as image:
            original = upright_size(image)  # what the real backends report and boxes map onto
        prepared = self._prepared_size or original
        return PhotoInfo(path, original, prepared, tokens_for_size(prepared))

    def generate(self, request: StoryRequest, *, should_stop: ShouldStop) -> Iterator[Event]:
        self.runs += 1
        self.requests.append(request)
        started = time.perf_counter()
        yield PhaseEvent(Phase.LOADING_MODEL)
        total = len(request.photos)
        photos = []
        for index, path in enumerate(request.photos, start=1):
            yield PhaseEvent(Phase.PREPARING_PHOTO, index, total)
            photos.append(self._photo_info(path))
        for index in range(1, total + 1):
            yield PhaseEvent(Phase.ENCODING_PHOTO, index, total)
        yield PhaseEvent(Phase.READING_PROMPT)
        yield PhaseEvent(Phase.WRITING)
        written: list[str] = []
        finish = FinishReason.STOP
        writing_started = time.perf_counter()
        pieces = split_into_tokens(self._output)[: request.sampling.max_tokens]
        if len(pieces) == request.sampling.max_tokens:
            finish = FinishReason.LENGTH
        for piece in pieces:
            if should_stop():
                finish = FinishReason.CANCELLED
                break
            if self._token_delay_s:
                time.sleep(self._token_delay_s)
            written.append(piece)
            yield TokenEvent(piece)
        ended = time.perf_counter()
        yield ResultEvent(
            RunResult(
                raw_output="".join(written),
                finish_reason=finish,
                photos=tuple(photos),
                sampling=request.sampling,
                backend=self.description,
                model="scripted",
                timings=Timings(
                    encode_s=tuple(0.0 for _ in photos),
                    first_token_s=writing_started - started,
                    generation_s=ended - writing_started,
                    generated_tokens=len(written),
                ),
            )
        )

    def cached(self, request: StoryRequest) -> CachedParts:
        """Nothing: it computes nothing to cache."""
        return NOTHING_CACHED

    def close(self) -> None:
        pass
