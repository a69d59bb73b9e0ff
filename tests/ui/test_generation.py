"""Telling a story, the generation controller alone with a session (scripted backend): the run
being written, Stop keeps a partial version, failures, missing photos, switching albums, and the
real token count."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ui_helpers import close_error_dialogs, session_album, tell_and_wait
from ui_sample import scripted_backend

from desktop_app.engine.api import Phase, PhaseEvent, TokenEvent
from desktop_app.errors import StorytellerError
from desktop_app.library.records import RunStatus
from desktop_app.ui.generation import GenerationController
from desktop_app.ui.session import EndedRun, LiveRun, OpenVersion


def _controller(make_session: Callable[..., Any], **kwargs: Any) -> tuple[Any, Any]:
    session = make_session(**kwargs)
    return session, GenerationController(session)


@pytest.mark.slow
def test_the_run_being_written_is_shown_then_kept_as_a_version(
    qtbot: Any,
    make_session: Callable[..., Any],
    library: Any,
    sample_photos: list[Path],
    story_output: str,
) -> None:
    session, generation = _controller(
        make_session, backend=scripted_backend(story_output, token_delay_s=0.002)
    )
    album = session_album(session, sample_photos)
    started: list[LiveRun] = []
    ended: list[EndedRun] = []
    session.run_started.connect(started.append)
    session.run_ended.connect(ended.append)
    generation.generate()
    # While writing: the session shows the live run, its story parsed as it grows.
    qtbot.waitUntil(lambda: bool(started) and session.showing_live(started[0]), timeout=10_000)
    qtbot.waitUntil(lambda: len(started[0].story.frames) >= 2, timeout=10_000)
    assert "Analysing frame" in started[0].phase_text or "Writing" in started[0].phase_text
    qtbot.waitUntil(lambda: not generation.is_generating(), timeout=20_000)

    (end,) = ended
    assert end.run is not None and end.run.status is RunStatus.COMPLETE
    assert end.run.raw_output == story_output
    assert isinstance(session.shown, OpenVersion) is False  # no versions controller here
    assert [r.status for r in library.runs(album.id)] == [RunStatus.COMPLETE]
    assert end.phase_text.startswith("Finished:") and "tokens/s" in end.phase_text
    assert session.live is None


def test_stop_after_the_first_token_keeps_the_partial_story_as_a_stopped_version(
    qtbot: Any,
    make_session: Callable[..., Any],
    library: Any,
    sample_photos: list[Path],
    story_output: str,
) -> None:
    session, generation = _controller(
        make_session, backend=scripted_backend(story_output, token_delay_s=0.01)
    )
    album = session_album(session, sample_photos)
    ended: list[EndedRun] = []
    session.run_ended.connect(ended.append)
    generation.generate()
    qtbot.waitUntil(lambda: session.live is not None and session.live.tokens >= 1, timeout=10_000)
    generation.stop()
    assert generation.is_generating() and generation.is_stopping()
    assert session.live.phase_text == "Stopping…"
    qtbot.waitUntil(lambda: not generation.is_generating(), timeout=10_000)
    assert not generation.is_stopping()
    runs = library.runs(album.id)
    assert [r.status for r in runs] == [RunStatus.STOPPED]
    partial = runs[0].raw_output
    assert partial and story_output.startswith(partial) and len(partial) < len(story_output)
    (end,) = ended
    assert end.run.id == runs[0].id and end.phase_text.startswith("Stopped:")


def test_an_album_with_a_missing_photo_is_refused_with_a_way_on(
    qtbot: Any,
    make_session: Callable[..., Any],
    library: Any,
    tmp_path: Path,
    sample_photos: list[Path],
) -> None:
    from desktop_app.ui.missing_photos import FIND, REMOVE, offer_missing_photos

    copies = []
    for photo in sample_photos[:2]:
        copy = tmp_path / photo.name
        copy.write_bytes(photo.read_bytes())
        copies.append(copy)
    session, generation = _controller(make_session)
    album = session_album(session, copies)
    copies[1].unlink()  # moved away behind the app's back
    session.reload_photos()
    offered: list[tuple[int, list[Any], str]] = []
    generation.photos_missing.connect(lambda *args: offered.append(args))
    # As in `storyteller album tell`: no story of fewer photos than the album shows; the
    # message names the photo and says how to go on, and the user can act on it from there.
    generation.generate()
    assert not generation.is_generating()
    ((album_id, missing, message),) = offered
    assert album_id == album.id and [p.path for p in missing] == [copies[1]]
    assert copies[1].name in message and "relink" in message and "remove them" in message
    assert library.runs(album.id) == []
    asked: list[str] = []
    box = offer_missing_photos(session, album_id, missing, message, lambda: asked.append("find"))
    buttons = {button.text(): button for button in box.buttons()}
    assert {FIND, REMOVE} <= set(buttons) and box.defaultButton() is buttons[FIND]
    buttons[FIND].click()
    assert asked == ["find"]  # the relink dialog (Album > Relink missing photos)
    box = offer_missing_photos(session, album_id, missing, message, lambda: None)
    next(b for b in box.buttons() if b.text() == REMOVE).click()
    assert [p.path for p in library.photos(album.id)] == [copies[0]]  # the file is untouched
    assert session.photo_model.rowCount() == 1
    tell_and_wait(qtbot, generation)  # and now the story can be told
    assert len(library.runs(album.id)) == 1


class FailingBackend:
    """Writes a few tokens, then fails the way a backend reports a problem the user can fix."""

    description = "failing test backend"

    def generate(self, request: Any, *, should_stop: Any) -> Any:
        yield PhaseEvent(Phase.WRITING)
        yield TokenEvent("<think>\n## Image 1\n")
        raise StorytellerError("the server at http://127.0.0.1:9 went away: check that it runs")

    def close(self) -> None:
        pass


def test_a_failing_backend_shows_its_message_and_keeps_a_failed_version(
    qtbot: Any, make_session: Callable[..., Any], library: Any, sample_photos: list[Path]
) -> None:
    session, generation = _controller(make_session, backend=FailingBackend())
    album = session_album(session, sample_photos[:1])
    ended: list[EndedRun] = []
    session.run_ended.connect(ended.append)
    tell_and_wait(qtbot, generation)
    (message,) = close_error_dialogs()
    assert "went away: check that it runs" in message
    (run,) = library.runs(album.id)
    assert run.status is RunStatus.FAILED and "went away" in run.error
    assert run.raw_output.startswith("<think>")
    (end,) = ended
    assert end.failed and end.run is not None and end.phase_text == "Failed"


@pytest.mark.slow
def test_switching_albums_while_writing_keeps_each_album_its_own_story(
    qtbot: Any,
    make_session: Callable[..., Any],
    library: Any,
    sample_photos: list[Path],
    story_output: str,
) -> None:
    session, generation = _controller(
        make_session, backend=scripted_backend(story_output, token_delay_s=0.001)
    )
    first = session_album(session, sample_photos, name="Kite day")
    generation.generate()
    qtbot.waitUntil(lambda: session.live is not None and session.live.tokens > 20, timeout=10_000)
    live = session.live
    other = session.create_album("Empty")
    assert session.album_id == other.id
    qtbot.waitUntil(lambda: not generation.is_generating(), timeout=30_000)
    assert session.shown is live  # nothing else opened it: another album is open
    assert [r.status for r in library.runs(first.id)] == [RunStatus.COMPLETE]
    assert library.runs(other.id) == []


def test_generating_without_a_model_says_what_to_do_and_keeps_no_empty_version(
    qtbot: Any, make_session: Callable[..., Any], library: Any, sample_photos: list[Path]
) -> None:
    from desktop_app.app.settings import Settings
    from desktop_app.ui.startup import gui_backend

    # No model files, no server, none installed in this test home.
    session, generation = _controller(
        make_session, settings=Settings(), backend_factory=gui_backend
    )
    album = session_album(session, sample_photos[:1])
    ended: list[EndedRun] = []
    session.run_ended.connect(ended.append)
    tell_and_wait(qtbot, generation)
    (text,) = close_error_dialogs()
    assert "No model is set up yet" in text and "First-run guide" in text
    assert library.runs(album.id) == []
    (end,) = ended
    assert end.live is None and end.run is None and end.phase_text == "Failed"


class MultiByteBackend:
    """Writes a story whose tokens are fewer than its text pieces (several characters, and
    multi-byte ones, per token), as a real tokenizer does."""

    description = "multi-byte test backend"

    def __init__(self, output: str) -> None:
        self._output = output

    def generate(self, request: Any, *, should_stop: Any) -> Any:
        from desktop_app.engine.api import (
            FinishReason,
            PhotoInfo,
            ResultEvent,
            RunResult,
            Timings,
        )

        yield PhaseEvent(Phase.WRITING)
        pieces = [self._output[i : i + 5] for i in range(0, len(self._output), 5)]
        for piece in pieces:
            yield TokenEvent(piece, tokens=3)
        photos = tuple(PhotoInfo(path, (336, 252), (336, 252), 108) for path in request.photos)
        yield ResultEvent(
            RunResult(
                raw_output=self._output,
                finish_reason=FinishReason.STOP,
                photos=photos,
                backend=self.description,
                model="test",
                sampling=request.sampling,
                timings=Timings(generated_tokens=3 * len(pieces)),
            )
        )

    def close(self) -> None:
        pass


def test_the_live_run_counts_the_engines_tokens_not_text_pieces(
    qtbot: Any, make_session: Callable[..., Any], sample_photos: list[Path]
) -> None:
    text = "<think>\n## Image 1\n" + "Ünïcødé ✓ café — naïve façade. " * 20
    session, generation = _controller(make_session, backend=MultiByteBackend(text))
    session_album(session, sample_photos[:1])
    counts: list[int] = []
    session.run_ended.connect(lambda end: counts.append(end.live.tokens))
    tell_and_wait(qtbot, generation)
    pieces = len(range(0, len(text), 5))
    assert counts == [3 * pieces]


def test_the_gui_and_the_cli_show_the_same_speed_and_time_left_on_multi_byte_text(
    tmp_path: Path,
) -> None:
    from desktop_app.app.estimates import RunProgress
    from desktop_app.cli.options import Progress
    from desktop_app.engine.api import SamplingParams, StoryRequest
    from desktop_app.engine.speeds import RunClock, Speeds

    text = "<think>\n## Image 1\n" + "Ünïcødé ✓ café — naïve façade. " * 20
    request = StoryRequest(photos=(tmp_path / "a.png",), sampling=SamplingParams(max_tokens=900))
    events = list(MultiByteBackend(text).generate(request, should_stop=lambda: False))
    rates = Speeds(encode_s_per_token=0.01, prefill_tokens_per_s=50.0, decode_tokens_per_s=10.0)
    now = [100.0]

    def follow(progress: RunProgress) -> RunProgress:
        progress.clock = RunClock(rates, [24], 128, 900, clock=lambda: now[0])
        progress._now = lambda: now[0]
        return progress

    cli = Progress(False, 900)  # the CLI's bars (not drawn here), fed as `storyteller tell` does
    follow(cli.run)
    live = LiveRun(1, 1, {})  # the GUI's run being written, fed as the worker's signals do
    follow(live.progress)
    for event in events:
        now[0] += 0.05
        cli.event(event)
        if isinstance(event, (PhaseEvent, TokenEvent)):
            live.on_event(event)
    pieces = len([e for e in events if isinstance(e, TokenEvent)])
    assert live.tokens == cli.run.tokens == 3 * pieces > pieces
    assert live.tokens_per_s() == cli.run.tokens_per_s() > 0
    assert live.remaining() == f" · {cli.run.remaining()}" and cli.run.remaining()


def test_the_phase_names_a_frame_only_once_the_model_writes_one(tmp_path: Path) -> None:
    from desktop_app.app.stored_story import FrameGeometry
    from desktop_app.story.parser import StoryStreamParser
    from desktop_app.ui.generation import live_phase

    live = LiveRun(1, 1, {i: FrameGeometry(i, tmp_path / f"{i}.jpg") for i in range(1, 6)})
    parser = StoryStreamParser()
    parser.feed("<think>no tables here</think>\nwindow cries window development")
    story = parser.snapshot()
    assert story.segments and all(s.image is None for s in story.segments)
    assert live_phase(story, live).startswith("Writing the story")  # not "frame 1/5"
    parser.feed("\n<gdi image2>Maya ran.")
    assert live_phase(parser.snapshot(), live).startswith("Writing frame 2/5")
