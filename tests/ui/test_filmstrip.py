"""The filmstrip: the open album's photos in story order, reordering them by drag or keyboard,
sorting and removing them, clicking one, and the cost estimate beside them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication
from ui_helpers import album_with_photos


def test_dropped_photos_are_imported_and_drag_reorder_is_saved(
    qtbot: Any, make_window: Callable[..., Any], library: Any, sample_photos: list[Path]
) -> None:
    window = make_window()
    album = album_with_photos(qtbot, window, sample_photos)
    assert [p.path.name for p in library.photos(album.id)] == [p.name for p in sample_photos]
    assert "4 photos" in window.sidebar.album_view.currentIndex().data()
    assert "image tokens" in window.filmstrip.cost_label.text()

    # Drag the last photo onto the first one: it moves to the front, in the view and on disk.
    model = window.photo_model
    data = model.mimeData([model.index(3)])
    first = window.filmstrip.view.visualRect(model.index(0)).center()
    buttons, mods = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    viewport = window.filmstrip.view.viewport()
    QApplication.sendEvent(
        viewport, QDragEnterEvent(first, Qt.DropAction.MoveAction, data, buttons, mods)
    )
    QApplication.sendEvent(
        viewport, QDragMoveEvent(first, Qt.DropAction.MoveAction, data, buttons, mods)
    )
    QApplication.sendEvent(
        viewport, QDropEvent(QPointF(first), Qt.DropAction.MoveAction, data, buttons, mods)
    )
    expected = [sample_photos[3].name, *[p.name for p in sample_photos[:3]]]
    assert [p.path.name for p in model.photos()] == expected
    assert [p.path.name for p in library.photos(album.id)] == expected
    assert model.rowCount() == 4  # moved, not copied or removed


def dated_photo(path: Path, when: str) -> Path:
    """A small JPEG whose EXIF says it was taken at ``when`` ("YYYY:MM:DD HH:MM:SS")."""
    from PIL import Image

    image = Image.new("RGB", (280, 196), (80, 120, 200))
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = when
    image.save(path, exif=exif)
    return path


def test_sort_by_date_and_remove_photos_keep_the_files(
    qtbot: Any, make_window: Callable[..., Any], library: Any, tmp_path: Path
) -> None:
    late = dated_photo(tmp_path / "b-late.jpg", "2024:06:02 18:00:00")
    early = dated_photo(tmp_path / "a-early.jpg", "2024:06:01 09:00:00")
    window = make_window()
    album = album_with_photos(qtbot, window, [late, early])
    window.filmstrip.sort_by_date()
    assert [p.path.name for p in window.photo_model.photos()] == ["a-early.jpg", "b-late.jpg"]
    assert [p.path.name for p in library.photos(album.id)] == ["a-early.jpg", "b-late.jpg"]
    window.filmstrip.view.setCurrentIndex(window.photo_model.index(0))
    window.filmstrip.remove_selected_photos()
    assert [p.path.name for p in library.photos(album.id)] == ["b-late.jpg"]
    assert early.exists()  # only the album membership was removed


def test_photos_can_be_reordered_with_the_keyboard(
    qtbot: Any, make_window: Callable[..., Any], library: Any, sample_photos: list[Path]
) -> None:
    window = make_window()
    album = album_with_photos(qtbot, window, sample_photos)
    window.filmstrip.view.setFocus()
    window.filmstrip.view.setCurrentIndex(window.photo_model.index(0))
    qtbot.keyClick(window.filmstrip.view, Qt.Key.Key_Right, Qt.KeyboardModifier.AltModifier)
    qtbot.keyClick(window.filmstrip.view, Qt.Key.Key_Right, Qt.KeyboardModifier.AltModifier)
    names = [p.name for p in sample_photos]
    expected = [names[1], names[2], names[0], names[3]]
    assert [p.path.name for p in library.photos(album.id)] == expected
    window.filmstrip.move_selected_photos(-1)
    assert [p.path.name for p in library.photos(album.id)] == [names[1], names[0], *names[2:]]


def test_clicking_a_photo_in_the_strip_shows_it_with_its_boxes(
    qtbot: Any, story_window: Any, sample_photos: list[Path]
) -> None:
    window = story_window
    rect = window.filmstrip.view.visualRect(window.photo_model.index(1))
    qtbot.mouseClick(window.filmstrip.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    view = window.story_panel.photo_view
    assert view.photo_path is not None and view.photo_path.name == sample_photos[1].name
    assert {b.overlay.entity_id for b in view.box_items()} == {"char1", "char2", "obj1", "bg2"}


def test_the_cost_warns_when_the_story_would_not_fit_in_memory(
    qtbot: Any,
    make_window: Callable[..., Any],
    sample_photos: list[Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from desktop_app.engine import costs

    window = make_window()
    album_with_photos(qtbot, window, sample_photos)
    assert "⚠" not in window.filmstrip.cost_label.text()
    monkeypatch.setattr(costs, "physical_memory_bytes", lambda: 2 * 2**30)  # a 2 GiB machine
    window.story_toolbar.detail_combo.setCurrentIndex(2)  # high detail: the estimate is recomputed
    assert "⚠" in window.filmstrip.cost_label.text()
    assert "GiB of memory" in window.filmstrip.cost_label.toolTip()
    window.filmstrip.view.selectAll()
    window.filmstrip.remove_selected_photos()  # no photos left: no estimate to explain
    assert "⚠" not in window.filmstrip.cost_label.text()
    assert "GiB" not in window.filmstrip.cost_label.toolTip()


def test_a_long_cost_estimate_wraps_instead_of_widening_the_window(
    qtbot: Any, make_window: Callable[..., Any]
) -> None:
    window = make_window()
    label = window.filmstrip.cost_label
    label.setText("4 photos · ≈ 936 image tokens")
    QApplication.processEvents()  # the layouts take the new text
    narrowest = window.minimumSizeHint().width()
    label.setText(
        "12 photos · ≈ 2,808 image tokens · context 8,192 · ≈ 7.3 GiB · about 12 min "
        "(estimate) · 11 of 12 photos cached"
    )
    QApplication.processEvents()
    # On one line it is ~680 px, and it pushed the window's minimum width up by ~500 px; wrapped,
    # only its longest words count.
    assert window.minimumSizeHint().width() < narrowest + 100
    window.resize(narrowest, 700)
    qtbot.waitUntil(lambda: label.height() > label.fontMetrics().height() * 1.5)  # two lines
