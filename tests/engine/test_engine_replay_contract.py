"""The replay backend (``engine/replay_backend.py``) answers as llama.cpp does, on the tiny model.

Almost every GUI, app and library test runs on the replay backend, so what they prove holds for
the app only as far as the replay behaves like the real thing. Each case here runs the same
requests through both and compares what a front end sees: the phases in order with their
index/total, whether tokens came, how the run ended (stopped or not, text or not, prompt reused
or not), the error an unusable photo raises and what ``cached`` says. Never the text: the tiny
model writes noise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from engine_helpers import Gate, backend_in, join_vision_threads
from PIL import Image

from desktop_app.engine.api import (
    CachedParts,
    Event,
    Phase,
    PhaseEvent,
    ResultEvent,
    SamplingParams,
    StoryBackend,
    StoryRequest,
    TokenEvent,
)
from desktop_app.engine.images import UnusablePhotosError
from desktop_app.engine.llama_backend import LlamaCppBackend
from desktop_app.engine.replay_backend import EncodingGate, ReplayBackend
from desktop_app.errors import StorytellerError

if TYPE_CHECKING:
    from tests.conftest import TinyModel

pytestmark = pytest.mark.slow

# What the replay "writes": more pieces than the requests' max_tokens, like the tiny model.
SCRIPT = "<think>\n## Image 1\n| Character | Description | Box |\n" * 4

PREPARED_1 = ("phase", Phase.PREPARING_PHOTO, 1, 2)
PREPARED_2 = ("phase", Phase.PREPARING_PHOTO, 2, 2)
LOADING = ("phase", Phase.LOADING_MODEL, 0, 0)
ENCODING_1 = ("phase", Phase.ENCODING_PHOTO, 1, 2)
ENCODING_2 = ("phase", Phase.ENCODING_PHOTO, 2, 2)
READING = ("phase", Phase.READING_PROMPT, 0, 0)
WRITING = ("phase", Phase.WRITING, 0, 0)
TOKENS = ("tokens",)


def ended(*, stopped: bool, text: bool, prompt_reused: bool = False) -> tuple[object, ...]:
    return ("result", stopped, text, prompt_reused)


Shape = tuple[object, ...]
StopWhen = Callable[[Event], bool]


def shape(events: list[Event]) -> list[Shape]:
    """What a front end sees of a run: phases with index/total, a stretch of tokens as one
    entry, and how the result ended (stopped, with text, prompt reused)."""
    seen: list[Shape] = []
    for event in events:
        if isinstance(event, PhaseEvent):
            seen.append(("phase", event.phase, event.index, event.total))
        elif isinstance(event, TokenEvent):
            if seen[-1:] != [TOKENS]:
                seen.append(TOKENS)
        else:
            result = event.result
            seen.append(
                ended(
                    stopped=result.cancelled,
                    text=bool(result.raw_output),
                    prompt_reused=result.timings.prompt_reused,
                )
            )
    return seen


def never(_event: Event) -> bool:
    return False


def phase(kind: Phase, index: int = 0) -> StopWhen:
    return lambda e: isinstance(e, PhaseEvent) and e.phase is kind and e.index == index


def first_token(event: Event) -> bool:
    return isinstance(event, TokenEvent)


def run(backend: StoryBackend, request: StoryRequest, stop_when: StopWhen = never) -> list[Event]:
    """Every event of a run; Stop is pressed when ``stop_when`` first says so."""
    stop = {"pressed": False}
    events = []
    for event in backend.generate(request, should_stop=lambda: stop["pressed"]):
        events.append(event)
        stop["pressed"] = stop["pressed"] or stop_when(event)
    return events


def result_of(events: list[Event]) -> Any:
    (result,) = [e.result for e in events if isinstance(e, ResultEvent)]
    return result


def both(
    real: LlamaCppBackend,
    replay: ReplayBackend,
    request: StoryRequest,
    stop_when: StopWhen = never,
) -> tuple[list[Event], list[Event]]:
    """The same run on both backends (real first): their events."""
    return run(real, request, stop_when), run(replay, request, stop_when)


@pytest.fixture
def album(tiny_image: Path, tmp_path: Path) -> list[Path]:
    second = tmp_path / "second.png"
    Image.new("RGB", (112, 84), (30, 140, 200)).save(second)
    return [tiny_image, second]


@pytest.fixture
def request_(album: list[Path]) -> StoryRequest:
    return StoryRequest(photos=tuple(album), sampling=SamplingParams(max_tokens=12, seed=5))


@pytest.fixture
def real(tiny_model: TinyModel, tmp_path: Path) -> Iterator[LlamaCppBackend]:
    """llama.cpp on the tiny model, with caches of its own (nothing cached yet)."""
    engine = backend_in(tiny_model, tmp_path / "real")
    yield engine
    engine.close()
    join_vision_threads()  # a stopped run's encode frees the projector when it is done


@pytest.fixture
def replay() -> ReplayBackend:
    return ReplayBackend(SCRIPT)


@pytest.fixture
def gates(
    real: LlamaCppBackend, replay: ReplayBackend, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Gate, EncodingGate]]:
    """Both vision encoders held until the test opens them (opened at the end in any case)."""
    held, replayed = Gate(monkeypatch), EncodingGate()
    replay.encoding_gate = replayed
    yield held, replayed
    held.open()
    replayed.open()
    join_vision_threads()


def test_a_run_goes_through_the_same_phases_in_the_same_order(
    real: LlamaCppBackend, replay: ReplayBackend, request_: StoryRequest
) -> None:
    events, replayed = both(real, replay, request_)
    # Both prepare every photo before the model loads: a bad photo costs nothing.
    expected = [PREPARED_1, PREPARED_2, LOADING, ENCODING_1, ENCODING_2, READING, WRITING]
    assert shape(events) == [*expected, TOKENS, ended(stopped=False, text=True)]
    assert shape(replayed) == shape(events)
    assert len(result_of(replayed).timings.encode_s) == len(result_of(events).timings.encode_s)
    seen = [info.original_size for info in result_of(replayed).photos]
    assert seen == [info.original_size for info in result_of(events).photos]


@pytest.mark.parametrize(
    "stop_when",
    [phase(Phase.PREPARING_PHOTO, 1), phase(Phase.READING_PROMPT)],
    ids=["while-preparing", "while-reading-the-prompt"],
)
def test_stop_before_writing_ends_the_run_with_no_text(
    real: LlamaCppBackend, replay: ReplayBackend, request_: StoryRequest, stop_when: StopWhen
) -> None:
    events, replayed = both(real, replay, request_, stop_when)
    assert shape(events)[-1] == ended(stopped=True, text=False)
    assert WRITING not in shape(events)
    assert shape(replayed) == shape(events)
    # The prompt was not read to its end: a second run reads it again. (Which photos are
    # cached differs here: llama.cpp's encode of photo 1 may outlast the stopped run.)
    assert replay.cached(request_).prompt is real.cached(request_).prompt is False


def test_stop_while_a_photo_encodes_ends_at_once_and_the_next_run_files_that_photo(
    real: LlamaCppBackend,
    replay: ReplayBackend,
    request_: StoryRequest,
    gates: tuple[Gate, EncodingGate],
) -> None:
    events, replayed = both(real, replay, request_, phase(Phase.ENCODING_PHOTO, 1))
    stopped = [PREPARED_1, PREPARED_2, LOADING, ENCODING_1, ended(stopped=True, text=False)]
    assert shape(events) == stopped
    assert shape(replayed) == shape(events)
    assert result_of(replayed).timings.encode_s == result_of(events).timings.encode_s == ()
    # The held photo is still in the encoder: not cached yet.
    assert replay.cached(request_) == real.cached(request_) == CachedParts((False, False))

    # The next run says it waits for that photo before it uses the encoder, and can be stopped
    # meanwhile.
    events, replayed = both(real, replay, request_, phase(Phase.LOADING_MODEL))
    finishing_1 = ("phase", Phase.FINISHING_PHOTO, 1, 0)
    assert shape(events) == [
        PREPARED_1,
        PREPARED_2,
        LOADING,
        finishing_1,
        ended(stopped=True, text=False),
    ]
    assert shape(replayed) == shape(events)

    for gate in gates:
        gate.open()
    join_vision_threads()  # the held encode is done: the next run has nothing to wait for
    events, replayed = both(real, replay, request_)
    assert shape(replayed) == shape(events)
    assert shape(events)[3:5] == [ENCODING_1, ENCODING_2]
    # Photo 1 was filed by the stopped run's encode: only photo 2 went through the encoder.
    encoded = [seconds > 0 for seconds in result_of(events).timings.encode_s]
    assert [seconds > 0 for seconds in result_of(replayed).timings.encode_s] == encoded
    assert encoded == [False, True]
    assert replay.cached(request_) == real.cached(request_) == CachedParts((True, True), True)


def test_stop_after_the_first_token_keeps_that_token(
    real: LlamaCppBackend, replay: ReplayBackend, request_: StoryRequest
) -> None:
    events, replayed = both(real, replay, request_, first_token)
    assert shape(events)[-3:] == [WRITING, TOKENS, ended(stopped=True, text=True)]
    assert shape(replayed) == shape(events)
    tokens = [sum(isinstance(e, TokenEvent) for e in run) for run in (events, replayed)]
    assert tokens == [1, 1]
    # The prompt was read: a second run would reuse it.
    assert replay.cached(request_) == real.cached(request_) == CachedParts((True, True), True)


def test_unusable_photos_raise_the_same_error_once_every_photo_was_tried(
    real: LlamaCppBackend, replay: ReplayBackend, album: list[Path], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a photo at all")
    request = StoryRequest(photos=(broken, album[0], tmp_path / "gone.png"))
    raised: list[StorytellerError] = []
    seen: list[list[Shape]] = []
    for backend in (real, replay):
        events: list[Event] = []
        with pytest.raises(StorytellerError) as caught:
            for event in backend.generate(request, should_stop=lambda: False):
                events.append(event)
        raised.append(caught.value)
        seen.append(shape(events))
    preparing = [("phase", Phase.PREPARING_PHOTO, index, 3) for index in (1, 2, 3)]
    assert seen[0] == preparing and seen[1] == seen[0]
    assert type(raised[1]) is type(raised[0]) is UnusablePhotosError
    assert str(raised[1]) == str(raised[0])
    assert "broken.jpg" in str(raised[0]) and "gone.png" in str(raised[0])
    assert replay.cached(request) == real.cached(request) == CachedParts()


def test_no_photos_are_refused_the_same_way(real: LlamaCppBackend, replay: ReplayBackend) -> None:
    refused = []
    for backend in (real, replay):
        events: list[Event] = []
        with pytest.raises(StorytellerError) as caught:
            for event in backend.generate(StoryRequest(photos=()), should_stop=lambda: False):
                events.append(event)
        refused.append((shape(events), type(caught.value), str(caught.value)))
    assert refused[0][0] == []  # before anything loads
    assert refused[1] == refused[0]


def test_a_second_identical_run_finds_photos_and_prompt_cached(
    real: LlamaCppBackend, replay: ReplayBackend, request_: StoryRequest
) -> None:
    assert replay.cached(request_) == real.cached(request_) == CachedParts((False, False))
    both(real, replay, request_)
    assert replay.cached(request_) == real.cached(request_) == CachedParts((True, True), True)

    # Generate again: no photo encoded, the prompt's state restored.
    events, replayed = both(real, replay, request_)
    expected = [PREPARED_1, PREPARED_2, LOADING, READING, WRITING, TOKENS]
    assert shape(events) == [*expected, ended(stopped=False, text=True, prompt_reused=True)]
    assert shape(replayed) == shape(events)
    assert result_of(replayed).timings.encode_s == result_of(events).timings.encode_s

    # Another seed is applied after the prompt; another instruction is another prompt.
    reseeded = StoryRequest(request_.photos, sampling=SamplingParams(max_tokens=12, seed=6))
    assert replay.cached(reseeded) == real.cached(reseeded) == CachedParts((True, True), True)
    reworded = StoryRequest(
        request_.photos, sampling=request_.sampling, instruction="Tell it as a poem."
    )
    assert replay.cached(reworded) == real.cached(reworded) == CachedParts((True, True), False)
    events, replayed = both(real, replay, reworded)
    assert shape(replayed) == shape(events)
    assert ENCODING_1 in shape(events)
    assert result_of(replayed).timings.encode_s == result_of(events).timings.encode_s == (0, 0)
