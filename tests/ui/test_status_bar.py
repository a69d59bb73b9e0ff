"""The status bar alone with a session: passing messages, the run being written (its phase
and progress), the engine of the settings, and the speed and model of the run that ended."""

from __future__ import annotations

from typing import Any

from desktop_app.app.settings import Settings
from desktop_app.app.stored_story import FrameGeometry
from desktop_app.ui.session import EndedRun, LiveRun
from desktop_app.ui.status_bar import StatusBar


def test_the_status_bar_shows_messages_the_engine_and_the_last_speed(
    make_session: Any, host: Any, tmp_path: Any
) -> None:
    session = make_session()
    bar = host(StatusBar(session))
    session.show_status("New photo order saved.")
    assert bar.currentMessage() == "New photo order saved."
    session.apply_settings(Settings(server_url="http://127.0.0.1:9"))
    assert "127.0.0.1:9" in bar.backend_label.text()
    live = LiveRun(1, 1, {1: FrameGeometry(1, tmp_path / "a.jpg")})
    session.run_ended.emit(EndedRun(live, None, None, True, "Failed"))
    assert bar.speed_label.text() == ""  # a failed run has no speed to show
    session.run_ended.emit(
        EndedRun(live, None, None, False, "Finished", 7.25, "llama.cpp (CPU)", "tiny.gguf")
    )
    assert bar.speed_label.text() == "last run 7.2 tokens/s"
    assert bar.backend_label.text() == "llama.cpp (CPU)"
    assert bar.model_label.text() == "model: tiny.gguf"


def test_the_phase_and_progress_follow_the_run(make_session: Any, host: Any, tmp_path: Any) -> None:
    session = make_session()
    bar = host(StatusBar(session))
    session.run_requested.emit()
    assert bar.phase_label.text() == "Starting…" and bar.progress_bar.isVisible()
    live = LiveRun(1, 1, {1: FrameGeometry(1, tmp_path / "a.jpg")})
    session.run_started.emit(live)
    live.phase_text, live.bar = "Writing frame 1/1 · 12 tokens", (1, 2)
    session.run_progressed.emit(live)
    assert bar.phase_label.text() == "Writing frame 1/1 · 12 tokens"
    assert (bar.progress_bar.value(), bar.progress_bar.maximum()) == (1, 2)
    session.run_ended.emit(EndedRun(live, None, None, False, "Finished: 12 tokens, 3.0 tokens/s"))
    assert bar.phase_label.text() == "Finished: 12 tokens, 3.0 tokens/s"
    assert not bar.progress_bar.isVisible()


def test_the_progress_bar_stays_put_as_the_phase_line_changes(
    qtbot: Any, make_session: Any, host: Any, tmp_path: Any
) -> None:
    session = make_session()
    bar = host(StatusBar(session))
    session.run_requested.emit()
    live = LiveRun(1, 1, {1: FrameGeometry(1, tmp_path / "a.jpg")})
    session.run_started.emit(live)
    places = set()
    for text in (
        "Analysing frame 1/4 · 2 tokens · under a minute left",
        "Writing frame 1/4 · 1347.7 tokens/s · 2 tokens · under a minute left",
        "Writing frame 1/4 · 65.0 tokens/s · 1359 tokens",
        "Analysing",
        "Writing frame 2/4 · 9.1 tokens/s · 1400 tokens · about 2 min left",
    ):
        live.phase_text, live.bar = text, (1, 8)
        session.run_progressed.emit(live)
        qtbot.wait(1)  # laid out
        progress = bar.progress_bar
        places.add((progress.mapTo(bar, progress.rect().topLeft()).x(), progress.width()))
    (place,) = places  # one place and one width through the whole run
    assert place[1] > 0


def test_how_the_last_run_ended_is_cleared_when_another_album_opens(
    make_session: Any, host: Any, tmp_path: Any
) -> None:
    session = make_session()
    bar = host(StatusBar(session))
    first = session.create_album("Kite day")
    live = LiveRun(first.id, 1, {1: FrameGeometry(1, tmp_path / "a.jpg")})
    session.run_requested.emit()
    session.run_started.emit(live)
    session.run_ended.emit(EndedRun(live, None, None, False, "Finished: 12 tokens, 3.0 tokens/s"))
    session.rename_open_album(first)  # the same album, renamed: the line stays
    assert bar.phase_label.text() == "Finished: 12 tokens, 3.0 tokens/s"
    session.create_album("Beach weekend")  # opens it
    assert bar.phase_label.text() == ""
    session.run_requested.emit()  # a run in progress keeps its line whichever album is open
    session.open_album(first)
    assert bar.phase_label.text() == "Starting…"
