"""The zero-token rule (app.telling): a run stopped or failed before its first token is not kept.

These run the real llama.cpp backend on the tiny model: when it stops and how it fails is the
engine's behaviour, which a replay backend would only imitate.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from app_helpers import STORY
from PIL import Image

from desktop_app.app.telling import (
    FAILED_BEFORE_WRITING,
    STOPPED_BEFORE_WRITING,
    PhotosTold,
    RunDiscarded,
    RunEnded,
    TellOptions,
    discard_reason,
    tell,
    tell_photos,
)
from desktop_app.engine.api import SamplingParams, TokenEvent
from desktop_app.engine.images import UnusablePhotosError
from desktop_app.engine.llama_backend import LlamaCppBackend
from desktop_app.engine.replay_backend import ReplayBackend
from desktop_app.library import Library, RunStatus

if TYPE_CHECKING:
    from tests.conftest import TinyModel

pytestmark = pytest.mark.slow

OPTIONS = TellOptions(sampling=SamplingParams(max_tokens=8, seed=1))


@pytest.fixture(scope="module")
def backend(
    tiny_model: TinyModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LlamaCppBackend]:
    engine = LlamaCppBackend(
        tiny_model.text_gguf,
        tiny_model.mmproj_gguf,
        cache_dir=tmp_path_factory.mktemp("embeddings"),
        manifest=tiny_model.manifest,
    )
    yield engine
    engine.close()


@pytest.fixture
def library(tmp_path: Path) -> Iterator[Library]:
    lib = Library.open(tmp_path / "library")
    yield lib
    lib.close()


@pytest.fixture
def album(library: Library, tmp_path: Path) -> str:
    photo = tmp_path / "photos" / "rain.png"
    photo.parent.mkdir()
    Image.new("RGB", (56, 56), (200, 30, 30)).save(photo)
    library.create_album("Rain")
    library.add_photos("Rain", [photo])
    return "Rain"


def test_the_rule_keeps_every_run_with_a_token_and_every_complete_run() -> None:
    assert discard_reason(RunStatus.STOPPED, 0) == STOPPED_BEFORE_WRITING
    assert discard_reason(RunStatus.FAILED, 0, "boom") == f"{FAILED_BEFORE_WRITING}: boom"
    assert discard_reason(RunStatus.STOPPED, 1) == discard_reason(RunStatus.FAILED, 1) == ""
    assert discard_reason(RunStatus.COMPLETE, 0) == ""


def test_a_run_stopped_before_its_first_token_is_not_kept(
    backend: LlamaCppBackend, library: Library, album: str
) -> None:
    events = list(tell(library, album, backend, OPTIONS, should_stop=lambda: True))
    assert not any(isinstance(event, (TokenEvent, RunEnded)) for event in events)
    discarded = events[-1]
    assert isinstance(discarded, RunDiscarded)
    assert discarded.status is RunStatus.STOPPED and discarded.reason == STOPPED_BEFORE_WRITING
    assert library.runs(album) == []  # no empty "stopped" version


def test_a_run_stopped_after_a_token_is_kept_with_its_text(
    backend: LlamaCppBackend, library: Library, album: str
) -> None:
    seen: list[TokenEvent] = []
    events = tell(library, album, backend, OPTIONS, should_stop=lambda: bool(seen))
    for event in events:
        if isinstance(event, TokenEvent):
            seen.append(event)
    ended = event
    assert isinstance(ended, RunEnded) and ended.run.status is RunStatus.STOPPED
    (run,) = library.runs(album)
    assert run.raw_output.startswith(seen[0].text)


def test_a_run_that_fails_before_its_first_token_is_not_kept_and_says_why(
    backend: LlamaCppBackend, library: Library, album: str
) -> None:
    (photo,) = library.photos(album)
    photo.path.write_bytes(b"\x89PNG\r\n\x1a\n not a png any more")  # changed after import
    events = tell(library, album, backend, OPTIONS)
    seen: list[object] = []
    with pytest.raises(UnusablePhotosError, match=r"rain\.png"):
        for event in events:
            seen.append(event)
    discarded = seen[-1]
    assert isinstance(discarded, RunDiscarded) and discarded.status is RunStatus.FAILED
    assert discarded.reason.startswith(FAILED_BEFORE_WRITING) and "rain.png" in discarded.reason
    assert library.runs(album) == []


def test_closing_the_events_before_a_token_forgets_the_run(library: Library, album: str) -> None:
    events = tell(library, album, ReplayBackend(STORY), OPTIONS)
    started = next(events)
    next(events)  # a phase: nothing written yet
    events.close()  # e.g. the window closed while the model loaded
    assert library.runs(album) == [] and started.run_id > 0


def test_tell_photos_counts_real_tokens_and_applies_the_rule(
    backend: LlamaCppBackend, tmp_path: Path
) -> None:
    photo = tmp_path / "p.png"
    Image.new("RGB", (56, 56), (20, 90, 200)).save(photo)
    events = list(tell_photos(backend, OPTIONS, [photo]))
    told = events[-1]
    assert isinstance(told, PhotosTold) and not told.discarded
    assert told.tokens == told.result.timings.generated_tokens > 0
    assert told.tokens >= sum(e.tokens for e in events if isinstance(e, TokenEvent))
    stopped = list(tell_photos(backend, OPTIONS, [photo], should_stop=lambda: True))[-1]
    assert isinstance(stopped, PhotosTold) and stopped.discarded == STOPPED_BEFORE_WRITING
