"""The story toolbar alone with a session: it publishes the run's choices and shows the run
being written as the session reports it."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QWidget

from desktop_app.app.settings import Settings
from desktop_app.app.stored_story import FrameGeometry
from desktop_app.engine.api import Detail, Preset
from desktop_app.ui.session import EndedRun, LiveRun
from desktop_app.ui.story_toolbar import StoryToolbar


def _toolbar(session: Any, host: Any) -> StoryToolbar:
    owner = QWidget()
    toolbar = StoryToolbar(session, QAction("Generate", owner), QAction("Stop", owner), owner)
    host(owner)
    return toolbar


def test_the_toolbar_starts_from_the_settings_and_publishes_each_choice(
    make_session: Any, host: Any
) -> None:
    session = make_session(settings=Settings(preset=Preset.FAITHFUL, detail=Detail.HIGH, seed=7))
    toolbar = _toolbar(session, host)
    assert (session.choices.preset, session.choices.detail, session.choices.seed) == (
        Preset.FAITHFUL,
        Detail.HIGH,
        7,
    )
    changes: list[None] = []
    session.choices_changed.connect(lambda: changes.append(None))
    toolbar.preset_combo.setCurrentIndex(1)
    toolbar.detail_combo.setCurrentIndex(0)
    toolbar.seed_spin.setValue(-1)
    assert len(changes) == 3
    assert session.choices.preset is Preset.CREATIVE
    assert session.choices.detail is Detail.AS_TRAINED
    assert session.choices.seed is None
    assert session.tell_options().sampling.seed is None


def test_the_default_preset_is_the_settings_default_not_a_second_one(
    make_session: Any, host: Any
) -> None:
    toolbar = _toolbar(make_session(), host)
    assert toolbar.preset() is Settings().preset


def test_the_phase_and_progress_follow_the_run(make_session: Any, host: Any, tmp_path: Any) -> None:
    session = make_session()
    toolbar = _toolbar(session, host)
    session.run_requested.emit()
    assert toolbar.phase_label.text() == "Starting…" and toolbar.progress_action.isVisible()
    live = LiveRun(1, 1, {1: FrameGeometry(1, tmp_path / "a.jpg")})
    session.run_started.emit(live)
    live.phase_text, live.bar = "Writing frame 1/1 · 12 tokens", (1, 2)
    session.run_progressed.emit(live)
    assert toolbar.phase_label.text() == "Writing frame 1/1 · 12 tokens"
    assert (toolbar.progress_bar.value(), toolbar.progress_bar.maximum()) == (1, 2)
    session.run_ended.emit(EndedRun(live, None, None, False, "Finished: 12 tokens, 3.0 tokens/s"))
    assert toolbar.phase_label.text() == "Finished: 12 tokens, 3.0 tokens/s"
    assert not toolbar.progress_action.isVisible()
