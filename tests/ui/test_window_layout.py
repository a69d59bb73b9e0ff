"""The whole window's layout at the sizes people use (1024x700, 1440x900, 2560x1440), from a
fresh start (no saved layout) and after a restart: the run's phase and progress in view, no
toolbar overflow menu, a story column people can read, analysis tables that fit their text."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import QTableWidget, QToolButton, QWidget
from ui_helpers import album_with_photos, column_fit, generate_and_wait, story_text_columns

from desktop_app import paths
from desktop_app.ui.session import EndedRun, LiveRun

SIZES = [(1024, 700), (1440, 900), (2560, 1440)]
LONG_PHASE = "Writing frame 10/10 · 1347.7 tokens/s · 12,345 tokens · about 59 min left"


def _inside(widget: QWidget, window: QWidget) -> bool:
    """True when ``widget`` is shown whole inside ``window``."""
    top_left = widget.mapTo(window, widget.rect().topLeft())
    return (
        widget.isVisible()
        and top_left.x() >= 0
        and top_left.x() + widget.width() <= window.width()
        and top_left.y() + widget.height() <= window.height()
    )


def _check_layout(qtbot: Any, window: Any, size: tuple[int, int]) -> None:
    assert (window.width(), window.height()) == size  # the window can be this small
    overflow = window.story_toolbar.findChild(QToolButton, "qt_toolbar_ext_button")
    assert overflow is None or not overflow.isVisible()  # no "»" menu

    # A story being written: its phase line and progress bar are in view, whole.
    session = window.session
    session.run_requested.emit()
    live = LiveRun(session.album_id, 0, {})
    live.phase_text, live.bar = LONG_PHASE, (3, 8)
    session.run_progressed.emit(live)
    qtbot.wait(20)
    label, bar = window.status_bar.phase_label, window.status_bar.progress_bar
    assert label.text() == LONG_PHASE
    assert label.fontMetrics().horizontalAdvance(LONG_PHASE) <= label.contentsRect().width()
    assert _inside(label, window) and _inside(bar, window) and bar.width() >= 100
    session.run_ended.emit(EndedRun(live, None, None, False, "Finished: 12 tokens, 3.0 tokens/s"))

    # The story: every frame's text column at least 50 average characters of its font.
    window.tabs.setCurrentWidget(window.story_panel)
    qtbot.wait(20)
    browser = window.story_panel.browser
    font = QFont(browser.font())
    font.setPointSizeF(11)  # the story's size (story_html)
    columns = story_text_columns(browser)
    assert len(columns) == 4  # every frame beside its photo, once
    assert min(columns) >= 50 * QFontMetrics(font).averageCharWidth(), columns

    # The analysis: no column cuts its text while another wastes width.
    panel = window.analysis_panel
    window.tabs.setCurrentWidget(panel)
    panel.tabs.setCurrentWidget(panel.narrative_table)
    qtbot.wait(20)
    tables = [panel.narrative_table]
    checks = [column_fit(panel.narrative_table)]
    panel.tabs.setCurrentIndex(0)
    for index in range(panel.frame_tabs.count()):
        panel.frame_tabs.setCurrentIndex(index)
        qtbot.wait(20)
        found = panel.frame_tabs.currentWidget().widget().findChildren(QTableWidget)
        tables += found
        checks += [column_fit(table) for table in found]
    for table, (cut, wasted) in zip(tables, checks, strict=True):
        assert not (cut and wasted), (table.objectName(), cut, wasted, size)
    window.tabs.setCurrentWidget(window.story_panel)


@pytest.mark.end_to_end
@pytest.mark.slow
def test_the_window_reads_well_at_three_sizes_fresh_and_after_a_restart(
    qtbot: Any, make_window: Callable[..., Any], sample_photos: list[Path]
) -> None:
    saved_layout = paths.config_dir() / "window.ini"
    first = True
    for size in SIZES:
        saved_layout.unlink(missing_ok=True)  # a fresh start: no saved splitter sizes
        for _start in ("fresh", "restart"):
            window = make_window()
            window.resize(*size)
            if first:
                album_with_photos(qtbot, window, sample_photos)
                generate_and_wait(qtbot, window)
                first = False
            qtbot.waitUntil(lambda w=window: w.current_run is not None, timeout=10_000)
            qtbot.wait(50)
            _check_layout(qtbot, window, size)
            window.close()  # saves the layout the next start restores
            assert saved_layout.exists()
