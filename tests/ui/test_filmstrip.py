"""The filmstrip alone with a session: the open album's photos in story order, reordering them by
drag or keyboard, sorting and removing them, clicking one, and the cost estimate beside them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QWidget
from ui_helpers import drop_urls, session_album, show_told

from desktop_app.ui.actions import WindowActions
from desktop_app.ui.filmstrip import Filmstrip


def _strip(session: Any, host: Callable[[Any], Any]) -> Filmstrip:
    owner = QWidget()
    strip = Filmstrip(session, WindowActions(owner), owner)
    host(owner)
    strip.resize(1440, 260)
    return strip


def test_dropped_files_are_handed_on_and_a_drag_reorder_is_saved(
    qtbot: Any,
    session: Any,
    host: Callable[[Any], Any],
    library: Any,
    sample_photos: list[Path],
) -> None:
    strip = _strip(session, host)
    album = session_album(session, sample_photos)
    assert [p.path.name for p in library.photos(album.id)] == [p.name for p in sample_photos]
    assert "image tokens" in strip.cost_label.text()
    assert album.name in strip.album_title.text()
    dropped: list[tuple[list[Path], int]] = []
    session.photo_model.files_dropped.connect(lambda paths, row: dropped.append((paths, row)))
    drop_urls(strip.view.viewport(), sample_photos[:1])
    assert [[p.name for p in paths] for paths, _row in dropped] == [[sample_photos[0].name]]

    # Drag the last photo onto the first one: it moves to the front, in the view and on disk.
    model = session.photo_model
    data = model.mimeData([model.index(3)])
    first = strip.view.visualRect(model.index(0)).center()
    buttons, mods = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    viewport = strip.view.viewport()
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
    qtbot: Any, session: Any, host: Callable[[Any], Any], library: Any, tmp_path: Path
) -> None:
    late = dated_photo(tmp_path / "b-late.jpg", "2024:06:02 18:00:00")
    early = dated_photo(tmp_path / "a-early.jpg", "2024:06:01 09:00:00")
    strip = _strip(session, host)
    album = session_album(session, [late, early])
    strip.sort_by_date()
    assert [p.path.name for p in session.photo_model.photos()] == ["a-early.jpg", "b-late.jpg"]
    assert [p.path.name for p in library.photos(album.id)] == ["a-early.jpg", "b-late.jpg"]
    changed: list[int] = []
    session.album_changed.connect(changed.append)
    strip.view.setCurrentIndex(session.photo_model.index(0))
    strip.remove_selected_photos()
    assert set(changed) == {album.id}  # the album list's counts follow
    assert [p.path.name for p in library.photos(album.id)] == ["b-late.jpg"]
    assert early.exists()  # only the album membership was removed


def test_selected_photos_move_one_place_at_a_time(
    qtbot: Any, session: Any, host: Callable[[Any], Any], library: Any, sample_photos: list[Path]
) -> None:
    strip = _strip(session, host)
    album = session_album(session, sample_photos)
    strip.view.setCurrentIndex(session.photo_model.index(0))
    # What Alt+Right does (the shortcut is the actions table's: tests/ui/test_actions.py).
    strip.move_selected_photos(+1)
    strip.move_selected_photos(+1)
    names = [p.name for p in sample_photos]
    expected = [names[1], names[2], names[0], names[3]]
    assert [p.path.name for p in library.photos(album.id)] == expected
    strip.move_selected_photos(-1)
    assert [p.path.name for p in library.photos(album.id)] == [names[1], names[0], *names[2:]]


def test_clicking_a_photo_in_the_strip_asks_for_its_frame_with_its_boxes(
    qtbot: Any, told_session: Any, host: Callable[[Any], Any]
) -> None:
    strip = _strip(told_session, host)
    asked: list[tuple[int, tuple[str, ...]]] = []
    strip.frame_requested.connect(lambda frame, ids: asked.append((frame, ids)))
    rect = strip.view.visualRect(told_session.photo_model.index(1))
    previews: list[tuple[Path, str]] = []
    strip.photo_requested.connect(lambda path, caption: previews.append((path, caption)))
    qtbot.mouseClick(strip.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert asked == []  # no story on screen yet: the photo alone, large
    ((path, caption),) = previews
    assert path == told_session.photo_model.photos()[1].path
    assert caption.startswith("Photo 2 of 4 · ")
    show_told(told_session)
    qtbot.mouseClick(strip.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    ((frame, ids),) = asked
    assert frame == 2 and set(ids) == {"char1", "char2", "obj1", "bg2"}
    opened: list[Path] = []
    strip.full_size_requested.connect(opened.append)
    qtbot.mouseDClick(strip.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert opened and opened[-1] == told_session.photo_model.photos()[1].path


def test_the_cost_warns_when_the_story_would_not_fit_in_memory(
    qtbot: Any,
    session: Any,
    host: Callable[[Any], Any],
    sample_photos: list[Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dataclasses

    from desktop_app.engine import costs
    from desktop_app.engine.api import Detail

    strip = _strip(session, host)
    session_album(session, sample_photos)
    assert "⚠" not in strip.cost_label.text()
    monkeypatch.setattr(costs, "physical_memory_bytes", lambda: 2 * 2**30)  # a 2 GiB machine
    # High detail: the estimate is recomputed.
    session.set_choices(dataclasses.replace(session.choices, detail=list(Detail)[2]))
    assert "⚠" in strip.cost_label.text()
    assert "GiB of memory" in strip.cost_label.toolTip()
    strip.view.selectAll()
    strip.remove_selected_photos()  # no photos left: no estimate to explain
    assert "⚠" not in strip.cost_label.text()
    assert "GiB" not in strip.cost_label.toolTip()


def test_a_long_cost_estimate_wraps_instead_of_widening_the_window(
    qtbot: Any, session: Any, host: Callable[[Any], Any]
) -> None:
    actions_owner = host(QWidget())
    strip = host(Filmstrip(session, WindowActions(actions_owner)))
    window = strip
    label = strip.cost_label
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


def test_the_selection_follows_the_frame_the_story_shows_but_not_a_hover(
    qtbot: Any, told_session: Any, host: Callable[[Any], Any]
) -> None:
    from desktop_app.ui.story_tabs import StoryTabs

    owner = QWidget()
    strip = Filmstrip(told_session, WindowActions(owner), owner)
    tabs = StoryTabs(told_session, owner)
    tabs.frame_shown.connect(strip.select_frame)  # as the window wires them
    host(owner)
    show_told(told_session)
    strip.view.setCurrentIndex(told_session.photo_model.index(2))  # photo 3 selected

    def selected() -> list[int]:
        return sorted(i.row() for i in strip.view.selectionModel().selectedIndexes())

    tabs.analysis_panel.entity_activated.emit(4, "char3")  # "Grandpa Joe in frame 4"
    assert tabs.story_panel.photo_caption.text().startswith("Frame 4")
    assert selected() == [3]  # the strip shows which photo that is
    panel = tabs.story_panel
    href = next(h for h, s in panel.spans.items() if s.frame == 1)
    panel.browser.highlighted.emit(href)  # hovering a word of frame 1 previews it…
    assert panel.photo_caption.text().startswith("Frame 1")
    assert selected() == [3]  # …without moving the selection (Delete acts on it)
    panel.browser.anchorClicked.emit(QUrl(href))  # clicking that word chooses it
    assert selected() == [0]


def test_a_selected_photo_is_highlighted_around_its_thumbnail_not_below_it(
    qtbot: Any, session: Any, host: Callable[[Any], Any], sample_photos: list[Path]
) -> None:
    from PySide6.QtWidgets import QStyleOptionViewItem

    strip = _strip(session, host)
    session_album(session, sample_photos)
    view = strip.view
    index = session.photo_model.index(1)
    option = QStyleOptionViewItem()
    option.initFrom(view)
    option.rect = view.visualRect(index)
    delegate = view.itemDelegate()
    highlight = delegate.highlight_rect(option, index)
    shown = view.iconSize().height() + 2 * view.fontMetrics().height()  # thumbnail, two lines
    assert highlight.height() <= shown + 16  # no tall block under the caption
    assert highlight.height() < view.viewport().height() - 20
    image = view.grab().toImage()
    view.setCurrentIndex(index)
    QApplication.processEvents()
    after = view.grab().toImage()
    changed_rows = {
        y
        for y in range(0, after.height(), 2)
        for x in range(option.rect.left(), option.rect.right(), 4)
        if image.pixel(x, y) != after.pixel(x, y)
    }
    assert max(changed_rows) <= highlight.bottom() + 2  # the selection paints nothing lower


def test_a_thumbnail_cache_on_a_full_disk_still_shows_every_photo_and_logs_why(
    qtbot: Any,
    session: Any,
    host: Callable[[Any], Any],
    library: Any,
    sample_photos: list[Path],
    small_disk: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Thumbnails are a cache: when their disk is full the strip decodes the photos themselves,
    and the log says that the cache could not be written."""
    library.thumbnails_dir = small_disk.path / "thumbnails"
    small_disk.fill()
    strip = _strip(session, host)
    with caplog.at_level("WARNING", logger="desktop_app.ui.filmstrip"):
        session_album(session, sample_photos)
        model = session.photo_model
        qtbot.waitUntil(
            lambda: all(model.has_thumbnail(p.id) for p in model.photos()), timeout=30_000
        )
    assert strip.view.model() is model
    assert not any((small_disk.path / "thumbnails").rglob("*.jpg"))
    assert any("is full" in record.getMessage() for record in caplog.records)
