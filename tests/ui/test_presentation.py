"""Presentation mode, built with a session alone: what each frame shows (the photo item's file
and rectangle, the text and its colours, each box against the displayed photo), the keys a
presentation clicker sends, boxes on demand (B) and one by one (Tab), timed advance, the hidden
pointer, and a stopped version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import ui_sample
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt
from PySide6.QtGui import QGuiApplication, QMouseEvent, QTextDocument
from PySide6.QtWidgets import QApplication
from ui_helpers import show_told

from desktop_app.app.stored_story import box_on_photo
from desktop_app.ui.presentation import PresentationController, PresentationWindow

SIZES = ((1920, 1080), (1280, 720))
TOLERANCE_PX = 2.0


def _plain(html: str) -> str:
    document = QTextDocument()
    document.setHtml(html)
    return " ".join(document.toPlainText().split())


def _view_rect(view: Any, rect: QRectF) -> QRectF:
    """``rect`` (scene units: the upright photo's pixels) where the view draws it."""
    return view.viewportTransform().mapRect(rect)


def _displayed_photo(window: PresentationWindow) -> QRectF:
    item = window.photo.photo_item
    assert item is not None
    return _view_rect(window.photo, item.sceneBoundingRect())


def _expected(story: Any, frame: int, entity_id: str, photo: QRectF) -> QRectF:
    """Where the story's box should be drawn: mapped onto the upright photo, then scaled
    as the photo is displayed (``photo``, view pixels)."""
    box = story.boxes_for(entity_id)[frame]
    x1, y1, x2, y2 = box_on_photo(box, ui_sample.PREPARED_SIZE, ui_sample.PHOTO_SIZE)
    sx = photo.width() / ui_sample.PHOTO_SIZE[0]
    sy = photo.height() / ui_sample.PHOTO_SIZE[1]
    return QRectF(photo.x() + x1 * sx, photo.y() + y1 * sy, (x2 - x1) * sx, (y2 - y1) * sy)


def _drawn(window: PresentationWindow) -> dict[str, QRectF]:
    """Entity -> the rectangle its box item covers on the screen (view pixels)."""
    return {
        item.overlay.entity_id: _view_rect(window.photo, item.rect())
        for item in window.photo.box_items()
    }


def _close_to(window: PresentationWindow, got: QRectF, want: QRectF) -> bool:
    return all(
        abs(a - b) <= TOLERANCE_PX
        for a, b in zip(
            (got.left(), got.top(), got.right(), got.bottom()),
            (want.left(), want.top(), want.right(), want.bottom()),
            strict=True,
        )
    )


@pytest.fixture
def presenting(qtbot: Any, told_session: Any) -> tuple[PresentationController, Any]:
    """The sample album's told version open in the session, and presentation mode for it."""
    shown = show_told(told_session)
    controller = PresentationController(told_session)
    return controller, shown


def test_present_shows_the_open_version_frame_by_frame_and_the_keys_move_it(
    qtbot: Any, presenting: tuple[PresentationController, Any], told_session: Any
) -> None:
    controller, shown = presenting
    window = controller.present(QGuiApplication.primaryScreen())
    assert window is not None
    qtbot.addWidget(window)
    qtbot.waitExposed(window)
    assert window.isFullScreen() and window.screen() is QGuiApplication.primaryScreen()
    display = shown.stored.display()
    assert len(window.slides) == len(display.frames) + 2
    assert window.slide.kind == "title" and "Kite day" in _plain(window.card.text())

    def press(key: Qt.Key, modifier: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
        qtbot.keyClick(window, key, modifier)

    press(Qt.Key.Key_Right)
    for frame in display.frames:
        assert window.slide.frame == frame
        geometry = shown.stored.frame(frame.index)
        assert window.photo.photo_path == geometry.path  # the photo item shows this frame's file
        assert window.photo.original_size == ui_sample.PHOTO_SIZE
        # As large as the photo's area allows, proportions kept, centred.
        photo = _displayed_photo(window)
        area = QRectF(window.photo.viewport().rect())
        assert photo.width() / photo.height() == pytest.approx(
            ui_sample.PHOTO_SIZE[0] / ui_sample.PHOTO_SIZE[1], rel=0.01
        )
        # (QGraphicsView.fitInView keeps 2 px clear on each side.)
        fills_width = abs(photo.width() + 4 - area.width()) <= TOLERANCE_PX
        fills_height = abs(photo.height() + 4 - area.height()) <= TOLERANCE_PX
        assert fills_width or fills_height, (photo, area)
        assert abs(photo.center().x() - area.center().x()) <= TOLERANCE_PX
        # The text is the frame's, every tagged word in its entity's colour.
        assert _plain(window.text.text()) == frame.plain()
        for span in frame.spans:
            if span.grounded:
                assert f"color:{span.colour}" in window.text.text()
        assert window.photo.box_items() == []  # no boxes until asked
        press(Qt.Key.Key_Space)
    assert window.slide.kind == "end"
    press(Qt.Key.Key_PageDown)
    assert window.slide.kind == "end"  # the end stays the end
    press(Qt.Key.Key_Left)
    assert window.slide.frame == display.frames[-1]
    press(Qt.Key.Key_PageUp)
    assert window.slide.frame == display.frames[-2]
    press(Qt.Key.Key_Home)
    assert window.at == 0
    press(Qt.Key.Key_End)
    assert window.slide.kind == "end"
    press(Qt.Key.Key_Right)  # a clicker's "next" at the end does nothing
    window.go_to(1)
    point = QPointF(window.width() / 2, window.height() / 2)
    window.mousePressEvent(
        QMouseEvent(
            QMouseEvent.Type.MouseButtonPress,
            point,
            point,
            Qt.MouseButton.LeftButton,
            Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier,
        )
    )
    assert window.at == 2
    press(Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: controller.presentation is None)


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_boxes_on_demand_and_one_by_one_land_on_the_displayed_photo(
    qtbot: Any,
    presenting: tuple[PresentationController, Any],
    size: tuple[int, int],
    tmp_path: Path,
) -> None:
    _controller, shown = presenting
    window = PresentationWindow(shown.stored, "Kite day", "12–14 May 2024")
    qtbot.addWidget(window)
    window.resize(*size)
    window.show()
    qtbot.waitExposed(window)
    story = shown.stored.story
    for frame in shown.stored.display().frames:
        window.go_to(frame.index)
        photo = _displayed_photo(window)

        qtbot.keyClick(window, Qt.Key.Key_B)
        everything = _drawn(window)
        assert set(everything) == set(window.frame_boxes()) and len(everything) >= 3
        for entity_id, rect in everything.items():
            want = _expected(story, frame.index, entity_id, photo)
            assert _close_to(window, rect, want), (frame.index, entity_id, rect, want)
        if frame.index == 3:
            window.grab().save(str(tmp_path / f"present-boxes-{size[0]}x{size[1]}.png"))
        qtbot.keyClick(window, Qt.Key.Key_B)
        assert _drawn(window) == {}

        mentions = window.mentions()
        assert mentions, frame.index
        for n, mention in enumerate(mentions):
            qtbot.keyClick(window, Qt.Key.Key_Tab)
            drawn = _drawn(window)
            assert set(drawn) == set(mention.ids), (frame.index, n, mention)
            for entity_id, rect in drawn.items():
                assert _close_to(window, rect, _expected(story, frame.index, entity_id, photo))
            assert "background-color:#fff2a8" in window.text.text()  # the words stand out
        qtbot.keyClick(window, Qt.Key.Key_Tab)  # round again to the first
        assert set(_drawn(window)) == set(mentions[0].ids)
        qtbot.keyClick(window, Qt.Key.Key_Backtab)
        assert set(_drawn(window)) == set(mentions[-1].ids)
    # Portrait or landscape, the text never covers the photo.
    assert not window.text.geometry().intersects(window.photo.geometry())
    window.close()


def test_timed_advance_runs_to_the_end_and_the_pointer_hides_until_it_moves(
    qtbot: Any, presenting: tuple[PresentationController, Any]
) -> None:
    _controller, shown = presenting
    window = PresentationWindow(shown.stored, "Kite day", advance_s=0.05, cursor_hide_ms=50)
    qtbot.addWidget(window)
    window.start(QGuiApplication.primaryScreen())
    qtbot.waitExposed(window)
    qtbot.waitUntil(lambda: QApplication.overrideCursor() is not None, timeout=5_000)
    assert QApplication.overrideCursor().shape() == Qt.CursorShape.BlankCursor
    qtbot.mouseMove(window, QPoint(10, 10))
    qtbot.mouseMove(window, QPoint(40, 40))
    qtbot.waitUntil(lambda: QApplication.overrideCursor() is None, timeout=5_000)

    qtbot.keyClick(window, Qt.Key.Key_P)
    assert window.advance_timer.isActive() and "P stop" in window.footer.text()
    qtbot.waitUntil(lambda: window.slide.kind == "end", timeout=10_000)
    qtbot.waitUntil(lambda: not window.advance_timer.isActive(), timeout=5_000)
    window.close()
    assert QApplication.overrideCursor() is None  # never left hidden
    assert window.awake is not None and (window.awake.held or window.awake.why_not)


def test_a_stopped_version_is_presented_and_nothing_open_is_said(
    qtbot: Any, make_session: Any, sample_photos: list[Path], story_output: str
) -> None:
    from ui_helpers import session_album

    from desktop_app.library import RunSpec

    session = make_session()
    messages: list[str] = []
    session.status_message.connect(messages.append)
    controller = PresentationController(session)
    assert controller.present(QGuiApplication.primaryScreen()) is None
    assert messages[-1] == "Open a version of the story to present it."

    album = session_album(session, sample_photos)
    photos = session.library.photos(album.id)
    run_id = session.library.start_run(
        album.id, RunSpec(photo_ids=tuple(p.id for p in photos), backend="scripted")
    )
    cut = story_output.index("<gdi image3>")  # stopped while writing frame 3
    session.library.append_output(run_id, story_output[:cut])
    session.library.stop_run(run_id)
    shown = show_told(session)
    assert shown.run.status.value == "stopped"
    window = controller.present(QGuiApplication.primaryScreen())
    assert window is not None
    qtbot.addWidget(window)
    assert [s.frame.index for s in window.slides if s.frame is not None] == [1, 2]
    assert "incomplete" in _plain(window.card.text())
    window.close()
