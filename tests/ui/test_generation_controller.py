"""Telling a story (scripted backend): the live structured view while writing, Stop keeps a
partial version, closing while writing, failures, missing photos and switching albums."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ui_helpers import album_with_photos, close_error_dialogs, generate_and_wait
from ui_sample import scripted_backend

from desktop_app.library.records import RunStatus


@pytest.mark.slow
def test_generate_shows_a_live_structured_story_and_keeps_it_as_a_version(
    qtbot: Any,
    make_window: Callable[..., Any],
    library: Any,
    sample_photos: list[Path],
    story_output: str,
) -> None:
    window = make_window(scripted_backend(story_output, token_delay_s=0.002))
    album_with_photos(qtbot, window, sample_photos)
    window.generation.generate()
    # While writing: the phase line and a structured (not raw) view of the analysis so far.
    qtbot.waitUntil(
        lambda: "Analysing frame" in window.story_toolbar.phase_label.text(), timeout=10_000
    )
    assert "tokens" in window.story_toolbar.phase_label.text()
    live_text = window.story_panel.browser.toPlainText()
    assert "|" not in live_text and "<think>" not in live_text
    qtbot.waitUntil(
        lambda: "Writing frame" in window.story_toolbar.phase_label.text(), timeout=20_000
    )
    qtbot.waitUntil(lambda: not window.generation.is_generating(), timeout=20_000)

    run = window.current_run
    assert run.status is RunStatus.COMPLETE
    assert run.raw_output == story_output
    text = window.story_panel.browser.toPlainText()
    assert "Frame 4" in text and "Grandpa Joe" in text and "<gdo" not in text
    assert "no problems found" in window.story_panel.issues_label.text()
    assert "tokens/s" in window.status_bar.speed_label.text()
    assert window.run_model.rowCount() == 1


def test_stop_after_the_first_token_keeps_the_partial_story_as_a_stopped_version(
    qtbot: Any,
    make_window: Callable[..., Any],
    library: Any,
    sample_photos: list[Path],
    story_output: str,
) -> None:
    window = make_window(scripted_backend(story_output, token_delay_s=0.01))
    album = album_with_photos(qtbot, window, sample_photos)
    window.generation.generate()
    qtbot.waitUntil(
        lambda: window.generation.live is not None and window.generation.live.tokens >= 1,
        timeout=10_000,
    )
    window.generation.stop()
    assert window.generation.is_generating() and not window.acts["stop"].isEnabled()  # pressed once
    qtbot.waitUntil(lambda: not window.generation.is_generating(), timeout=10_000)
    assert window.acts["generate"].isEnabled() and not window.acts["stop"].isEnabled()
    runs = library.runs(album.id)
    assert [r.status for r in runs] == [RunStatus.STOPPED]
    partial = runs[0].raw_output
    assert partial and story_output.startswith(partial) and len(partial) < len(story_output)
    assert window.current_run.id == runs[0].id
    assert "stopped" in window.sidebar.run_view.currentIndex().data()


def test_closing_while_generating_asks_then_stops_cleanly(
    qtbot: Any,
    make_window: Callable[..., Any],
    library: Any,
    sample_photos: list[Path],
    story_output: str,
) -> None:
    asked: list[str] = []

    def confirm(_parent: Any, title: str, _text: str) -> bool:
        asked.append(title)
        return True

    window = make_window(scripted_backend(story_output, token_delay_s=0.01), confirm=confirm)
    album = album_with_photos(qtbot, window, sample_photos)
    window.generation.generate()
    qtbot.waitUntil(
        lambda: window.generation.live is not None and window.generation.live.tokens >= 3,
        timeout=10_000,
    )
    window.close()
    assert asked == ["Stop writing?"]
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=10_000)
    assert [r.status for r in library.runs(album.id)] == [RunStatus.STOPPED]


def test_missing_photos_get_a_badge_and_the_story_waits_until_they_are_found(
    qtbot: Any,
    make_window: Callable[..., Any],
    library: Any,
    tmp_path: Path,
    sample_photos: list[Path],
) -> None:
    copies = []
    for photo in sample_photos[:2]:
        copy = tmp_path / photo.name
        copy.write_bytes(photo.read_bytes())
        copies.append(copy)
    window = make_window()
    album = album_with_photos(qtbot, window, copies)
    copies[1].unlink()  # moved away behind the app's back
    window.sidebar.reload_albums(select_id=album.id)
    assert "⚠ 1 missing" in window.sidebar.album_view.currentIndex().data()
    assert "missing" in window.photo_model.index(1).data()
    # As in `storyteller album tell`: no story of fewer photos than the album shows; the
    # message names the photo and says how to go on.
    window.generation.generate()
    assert not window.generation.is_generating()
    (text,) = close_error_dialogs()
    assert copies[1].name in text and "relink" in text and "remove them" in text
    assert library.runs(album.id) == []


class FailingBackend:
    """Writes a few tokens, then fails the way a backend reports a problem the user can fix."""

    description = "failing test backend"

    def generate(self, request: Any, *, should_stop: Any) -> Any:
        from desktop_app.engine.events import Phase, PhaseEvent, TokenEvent
        from desktop_app.errors import StorytellerError

        yield PhaseEvent(Phase.WRITING)
        yield TokenEvent("<think>\n## Image 1\n")
        raise StorytellerError("the server at http://127.0.0.1:9 went away: check that it runs")

    def close(self) -> None:
        pass


def test_a_failing_backend_shows_its_message_and_keeps_a_failed_version(
    qtbot: Any, make_window: Callable[..., Any], library: Any, sample_photos: list[Path]
) -> None:
    window = make_window(FailingBackend())
    album = album_with_photos(qtbot, window, sample_photos[:1])
    generate_and_wait(qtbot, window)
    (message,) = close_error_dialogs()
    assert "went away: check that it runs" in message
    (run,) = library.runs(album.id)
    assert run.status is RunStatus.FAILED and "went away" in run.error
    assert run.raw_output.startswith("<think>")
    assert window.acts["generate"].isEnabled()  # the user can try again


@pytest.mark.slow
def test_switching_albums_while_writing_keeps_each_album_its_own_story(
    qtbot: Any,
    make_window: Callable[..., Any],
    library: Any,
    sample_photos: list[Path],
    story_output: str,
) -> None:
    window = make_window(scripted_backend(story_output, token_delay_s=0.001))
    first = album_with_photos(qtbot, window, sample_photos, name="Kite day")
    window.generation.generate()
    qtbot.waitUntil(
        lambda: window.generation.live is not None and window.generation.live.tokens > 20,
        timeout=10_000,
    )
    other = window.sidebar.new_album("Empty", edit=False)
    assert window.current_album_id == other.id
    qtbot.waitUntil(lambda: not window.generation.is_generating(), timeout=30_000)
    assert "No story yet" in window.story_panel.browser.toPlainText()
    assert window.run_model.rowCount() == 0
    window.sidebar.album_view.setCurrentIndex(
        window.album_model.index(window.album_model.row_of(first.id))
    )
    assert "Grandpa Joe" in window.story_panel.browser.toPlainText()
    assert [r.status for r in library.runs(first.id)] == [RunStatus.COMPLETE]


def test_generating_without_a_model_says_what_to_do_and_keeps_no_empty_version(
    qtbot: Any, make_window: Callable[..., Any], library: Any, sample_photos: list[Path]
) -> None:
    from desktop_app.app.settings import Settings
    from desktop_app.ui.app import gui_backend

    settings = Settings()  # no model files, no server, none installed in this test home
    window = make_window(settings=settings, backend_factory=lambda: gui_backend(settings))
    album = album_with_photos(qtbot, window, sample_photos[:1])
    generate_and_wait(qtbot, window)
    (text,) = close_error_dialogs()
    assert "No model is set up yet" in text and "First-run guide" in text
    assert library.runs(album.id) == []
    assert window.run_model.rowCount() == 0
