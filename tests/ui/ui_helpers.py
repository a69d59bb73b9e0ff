"""Driving the main window the way a user does: dropping files, waiting for a story."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QWidget


def drop_urls(target: QWidget, paths: Sequence[Path], pos: QPoint | None = None) -> None:
    """Drop ``paths`` on ``target`` as a file manager would (drag enter, move, drop)."""
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    point = QPointF(pos if pos is not None else QPoint(target.width() - 5, target.height() // 2))
    buttons = Qt.MouseButton.LeftButton
    mods = Qt.KeyboardModifier.NoModifier
    action = Qt.DropAction.CopyAction
    enter = QDragEnterEvent(point.toPoint(), action, data, buttons, mods)
    QApplication.sendEvent(target, enter)
    assert enter.isAccepted(), "the drop target refused the files"
    move = QDragMoveEvent(point.toPoint(), action, data, buttons, mods)
    QApplication.sendEvent(target, move)
    drop = QDropEvent(point, action, data, buttons, mods)
    QApplication.sendEvent(target, drop)


def album_with_photos(
    qtbot: Any, window: Any, photos: Sequence[Path], name: str = "Kite day"
) -> Any:
    album = window.sidebar.new_album(name, edit=False)
    drop_urls(window.filmstrip.view.viewport(), photos)
    qtbot.waitUntil(lambda: window.photo_model.rowCount() == len(photos), timeout=10_000)
    return album


def generate_and_wait(qtbot: Any, window: Any) -> Any:
    window.generation.generate()
    assert window.generation.is_generating()
    qtbot.waitUntil(lambda: not window.generation.is_generating(), timeout=20_000)
    return window.current_run


def close_error_dialogs() -> list[str]:
    """Close every open error dialog; return their texts (what the user was told)."""
    from desktop_app.ui import error_dialog as ui_errors

    texts = []
    for box in ui_errors.open_error_dialogs():
        texts.append(box.text())
        box.close()
    QApplication.processEvents()
    return texts


def session_album(session: Any, photos: Sequence[Path], name: str = "Kite day") -> Any:
    """A new album holding ``photos``, open in ``session`` (added through the library, as an
    import would)."""
    album = session.create_album(name)
    assert album is not None
    session.library.add_photos(album.id, list(photos))
    session.photos_changed.emit(album.id)
    assert session.photo_model.rowCount() == len(photos)
    return album


def tell_and_wait(qtbot: Any, generation: Any) -> None:
    """Press Generate on ``generation`` (a GenerationController) and wait for the run's end."""
    generation.generate()
    assert generation.is_generating()
    qtbot.waitUntil(lambda: not generation.is_generating(), timeout=20_000)


def show_told(session: Any) -> Any:
    """Open the newest version of the session's album (as the versions list does); returns it."""
    from desktop_app.app.stored_story import StoredStory
    from desktop_app.ui.session import OpenVersion

    run = session.library.runs(session.album_id)[0]
    shown = OpenVersion(run, StoredStory.of_run(run, session.library.display_names(run.id)))
    session.show(shown)
    return shown


def column_fit(table: Any) -> tuple[list[int], list[int]]:
    """The columns of ``table`` that cut their text (elided, or a word wider than the column),
    and those wider than twice what their content needs on one line, as the user sees them."""
    from PySide6.QtCore import QRect, Qt
    from PySide6.QtWidgets import QStyle

    metrics = table.fontMetrics()
    margin = table.style().pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, table) + 1
    header_metrics = table.horizontalHeader().fontMetrics()
    cut, wasted = [], []
    for c in range(table.columnCount()):
        width = table.columnWidth(c) - 2 * margin
        texts = [
            table.item(r, c).text() if table.item(r, c) else "" for r in range(table.rowCount())
        ]
        header = table.horizontalHeaderItem(c).text() if table.horizontalHeaderItem(c) else ""
        needs = max(
            [metrics.horizontalAdvance(t) for t in texts]
            + [header_metrics.horizontalAdvance(header)]
        )
        if table.columnWidth(c) > 2 * (needs + 2 * margin):
            wasted.append(c)
        for r, text in enumerate(texts):
            wrapped = metrics.boundingRect(
                QRect(0, 0, width, 100_000), Qt.TextFlag.TextWordWrap, text
            )
            too_long_word = any(metrics.horizontalAdvance(w) > width for w in text.split())
            if too_long_word or wrapped.height() > table.rowHeight(r):
                cut.append(c)
                break
        if header_metrics.horizontalAdvance(header) > width:
            cut.append(c)
    return sorted(set(cut)), wasted


def story_text_columns(browser: Any) -> list[float]:
    """The laid-out width of each frame's text column in the story view (pixels)."""
    from PySide6.QtGui import QTextTable

    document = browser.document()
    layout = document.documentLayout()
    widths = []
    for frame in document.rootFrame().childFrames():
        if isinstance(frame, QTextTable) and frame.columns() >= 2:
            block = frame.cellAt(0, 1).firstCursorPosition().block()
            widths.append(layout.blockBoundingRect(block).width())
    return widths
