"""The story toolbar alone with a session: it publishes the run's choices, offers the trained
instructions readably, and fits a small screen without an overflow menu."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QWidget

from desktop_app.app.settings import Settings
from desktop_app.engine.api import DEFAULT_INSTRUCTION, TRAINED_INSTRUCTIONS, Detail, Preset
from desktop_app.ui.session import LiveRun
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


def _in_main_window(session: Any, width: int) -> tuple[Any, StoryToolbar]:
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QMainWindow

    window = QMainWindow()
    toolbar = StoryToolbar(session, QAction("Generate", window), QAction("Stop", window), window)
    window.addToolBar(Qt.ToolBarArea.TopToolBarArea, toolbar)
    window.setCentralWidget(QWidget())
    window.resize(width, 700)
    return window, toolbar


@pytest.mark.parametrize("width", [1024, 1440])
def test_the_toolbar_fits_a_small_screen_and_shows_the_instruction_whole(
    qtbot: Any, make_session: Any, width: int
) -> None:
    from PySide6.QtWidgets import QToolButton

    session = make_session()
    window, toolbar = _in_main_window(session, width)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    session.run_requested.emit()  # a story being written: its progress must not crowd it out
    live = LiveRun(1, 1, {})
    live.phase_text = "Writing frame 3/5 · 34.2 tokens/s · 508 tokens · under a minute left"
    live.bar = (6, 10)
    session.run_progressed.emit(live)
    qtbot.wait(10)
    overflow = toolbar.findChild(QToolButton, "qt_toolbar_ext_button")
    assert overflow is None or not overflow.isVisible()  # no "»" menu hiding a control
    combo = toolbar.instruction_combo
    field = combo.lineEdit()
    frame = field.style().pixelMetric(field.style().PixelMetric.PM_DefaultFrameWidth)
    shown = field.width() - 2 * frame
    metrics = field.fontMetrics()
    assert metrics.horizontalAdvance(DEFAULT_INSTRUCTION) <= shown  # never cut mid-sentence
    if width >= 1440:  # a laptop screen or larger: every trained sentence fits
        assert all(metrics.horizontalAdvance(text) <= shown for text in TRAINED_INSTRUCTIONS)


def test_the_instruction_list_is_as_wide_as_its_longest_sentence(
    qtbot: Any, make_session: Any
) -> None:
    window, toolbar = _in_main_window(make_session(), 1024)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    combo = toolbar.instruction_combo
    combo.showPopup()
    view = combo.view()
    qtbot.waitUntil(view.isVisible)
    metrics = view.fontMetrics()
    for row, text in enumerate(TRAINED_INSTRUCTIONS):
        if not text:
            continue
        rect = view.visualRect(combo.model().index(row, 0))
        assert metrics.horizontalAdvance(text) <= rect.width() - 8, text
        assert rect.right() <= view.viewport().width()  # inside the visible list
    combo.hidePopup()
