"""The status bar alone with a session: passing messages, the engine of the settings, and the
speed and model of the run that ended."""

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
