"""Grounding in the story and analysis tabs (the story tabs alone with a session): a hovered word draws its box at the right place, a
clicked box highlights every mention, analysis rows show on the photo, issues jump to their
frame."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import ui_sample
from PySide6.QtCore import QRectF, Qt, QUrl
from PySide6.QtWidgets import QApplication
from ui_helpers import column_fit, session_album, show_told, story_text_columns
from ui_sample import scripted_backend


def expected_scene_rect(frame: int, entity_id: str) -> QRectF:
    """Where ``entity_id``'s box must land on frame ``frame``'s photo (original pixels)."""
    x1, y1, x2, y2 = ui_sample.prepared_box(ui_sample.SCENES[frame - 1].boxes[entity_id])
    pw, ph = ui_sample.PREPARED_SIZE
    ow, oh = ui_sample.PHOTO_SIZE
    return QRectF(x1 * ow / pw, y1 * oh / ph, (x2 - x1) * ow / pw, (y2 - y1) * oh / ph)


def box_rect(box: Any) -> QRectF:
    """A box item's rectangle in scene (original photo) pixels, without its pen's width."""
    pen = box.pen().widthF() / 2
    return box.sceneBoundingRect().adjusted(pen, pen, -pen, -pen)


def assert_rect_close(actual: QRectF, expected: QRectF, tolerance: float = 0.75) -> None:
    for a, e in (
        (actual.left(), expected.left()),
        (actual.top(), expected.top()),
        (actual.right(), expected.right()),
        (actual.bottom(), expected.bottom()),
    ):
        assert abs(a - e) <= tolerance, f"{actual} != {expected}"


def test_hovering_a_word_draws_its_box_at_the_right_place_at_any_window_size(
    story_tabs: Any, sample_photos: list[Path]
) -> None:
    window = story_tabs
    panel = window.story_panel
    href = next(h for h, s in panel.spans.items() if s.frame == 3 and s.ids == ("char3",))
    panel.browser.highlighted.emit(QUrl(href))  # what hovering (or tabbing to) the link emits
    view = panel.photo_view
    assert view.photo_path is not None and view.photo_path.name == sample_photos[2].name
    (box,) = view.box_items()
    assert box.overlay.entity_id == "char3"
    expected = expected_scene_rect(3, "char3")
    assert_rect_close(box_rect(box), expected)
    # The photo item covers the whole original photo in the same coordinates.
    assert_rect_close(view.photo_item.sceneBoundingRect(), QRectF(0, 0, *ui_sample.PHOTO_SIZE))
    # On screen the box sits over the same part of the photo, whatever the window size.
    for size in ((1440, 900), (1000, 700)):
        window.resize(*size)
        QApplication.processEvents()
        photo_on_screen = view.mapFromScene(view.photo_item.sceneBoundingRect()).boundingRect()
        box_on_screen = view.mapFromScene(expected).boundingRect()
        fx = (box_on_screen.left() - photo_on_screen.left()) / photo_on_screen.width()
        fy = (box_on_screen.top() - photo_on_screen.top()) / photo_on_screen.height()
        assert abs(fx - expected.left() / ui_sample.PHOTO_SIZE[0]) < 0.01
        assert abs(fy - expected.top() / ui_sample.PHOTO_SIZE[1]) < 0.01


def test_clicking_a_box_highlights_every_mention_of_that_entity(
    qtbot: Any, story_tabs: Any
) -> None:
    window = story_tabs
    panel = window.story_panel
    panel.show_entities(1, ("char2",))
    (box,) = panel.photo_view.box_items()
    view = panel.photo_view
    center = view.mapFromScene(box.sceneBoundingRect().center())
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=center)
    assert panel.selected_id == "char2"
    html = panel.browser.toHtml()
    mentions = sum("char2" in s.ids for s in panel.spans.values())
    assert mentions >= 4
    assert html.count("background-color:#fff2a8") >= mentions


def test_analysis_tables_show_the_selected_row_on_the_frame_photo(
    story_tabs: Any, sample_photos: list[Path]
) -> None:
    from PySide6.QtWidgets import QTableWidget

    window = story_tabs
    panel = window.analysis_panel
    window.setCurrentWidget(panel)
    panel.frame_tabs.setCurrentIndex(2)  # frame 3
    photo = panel.frame_photo
    assert photo.photo_path is not None and photo.photo_path.name == sample_photos[2].name
    assert {b.overlay.entity_id for b in photo.box_items()} == {
        "char1",
        "char3",
        "obj1",
        "obj2",
        "bg1",
    }
    characters = panel.frame_tabs.currentWidget().widget().findChildren(QTableWidget)[0]
    characters.setCurrentCell(1, 0)  # Grandpa Joe's row
    (box,) = photo.box_items()
    assert box.overlay.entity_id == "char3"
    assert_rect_close(box_rect(box), expected_scene_rect(3, "char3"))


def test_the_narrative_tab_lists_each_phase_with_its_frames(story_tabs: Any) -> None:
    table = story_tabs.analysis_panel.narrative_table
    rows = [
        [table.item(r, c).text() for c in range(table.columnCount())]
        for r in range(table.rowCount())
    ]
    assert [row[0] for row in rows] == ["Introduction", "Development", "Conflict", "Conclusion"]
    assert rows[2][1:] == [
        "The kite is caught in the old oak",
        "Maya cannot reach it; Grandpa Joe arrives",
        "3",
    ]
    assert table.item(2, 2).toolTip() == rows[2][2]  # a cut-off cell shows its text on hover


def test_a_validation_issue_jumps_to_its_frame_and_entity(
    qtbot: Any,
    make_session: Callable[..., Any],
    host: Callable[[Any], Any],
    sample_photos: list[Path],
    story_output: str,
) -> None:
    from desktop_app.app.telling import TellOptions, tell_album
    from desktop_app.ui.story_tabs import StoryTabs

    # The model names char9 in frame 3's text, but no table defines it.
    broken = story_output.replace(
        "<gdo char3>Grandpa Joe</gdo> <gda char3>came walking over</gda>",
        "<gdo char9>Grandpa Joe</gdo> <gda char3>came walking over</gda>",
    )
    assert broken != story_output
    session = make_session()
    window = host(StoryTabs(session))
    session_album(session, sample_photos)
    tell_album(session.library, session.album_id, scripted_backend(broken), TellOptions())
    show_told(session)
    issues = window.story_panel.issues_list
    assert issues.count() >= 1
    item = next(issues.item(i) for i in range(issues.count()) if "char9" in issues.item(i).text())
    assert "error" in window.story_panel.issues_label.text()
    issues.itemClicked.emit(item)
    view = window.story_panel.photo_view
    assert view.photo_path is not None and view.photo_path.name == sample_photos[2].name


def test_the_checks_line_counts_in_plain_english(qtbot: Any) -> None:
    from desktop_app.story.model import Issue, Severity
    from desktop_app.ui.story_panel import StoryPanel

    panel = StoryPanel()
    qtbot.addWidget(panel)
    error = Issue("missing-segment", Severity.ERROR, "Photo 1 has no text")
    warning = Issue("untagged-text", Severity.WARNING, "Text outside any frame")
    panel.set_issues([error])
    assert panel.issues_label.text() == "Checks: 1 error, 0 warnings"
    panel.set_issues([error, error, warning])
    assert panel.issues_label.text() == "Checks: 2 errors, 1 warning"


def test_hover_tips_and_status_lines_name_people_not_internal_ids(story_tabs: Any) -> None:
    panel = story_tabs.story_panel
    statuses: list[str] = []
    panel.status_message.connect(statuses.append)
    panel.select_entity("char3")  # what clicking Grandpa Joe's box does
    count = sum("char3" in span.ids for span in panel.spans.values())
    assert statuses[-1] == f"Grandpa Joe: {count} mentions highlighted"
    assert "who/what: Grandpa Joe" in _link_tooltips(panel.browser.document())
    assert "char3" not in " ".join(statuses)


def _link_tooltips(document: Any) -> set[str]:
    """The tooltips of the story's links, as hovering shows them."""
    tips: set[str] = set()
    block = document.begin()
    while block.isValid():
        iterator = block.begin()
        while not iterator.atEnd():
            fragment = iterator.fragment()
            if fragment.isValid() and fragment.charFormat().anchorHref():
                tips.add(fragment.charFormat().toolTip())
            iterator += 1
        block = block.next()
    return tips


def _grow_live(qtbot: Any, panel: Any, parser: Any, pieces: list[str]) -> None:
    """Feed ``pieces`` of output to the live view as the generation controller does."""
    for piece in pieces:
        parser.feed(piece)
        panel.set_story(parser.snapshot(), live=True, frame_count=4)
        qtbot.wait(5)


def test_the_live_view_follows_the_end_unless_the_reader_scrolled_up(
    qtbot: Any, host: Callable[[Any], Any], sample_photos: list[Path], story_output: str
) -> None:
    from desktop_app.app.stored_story import FrameGeometry
    from desktop_app.story.parser import StoryStreamParser
    from desktop_app.ui.story_panel import StoryPanel

    panel = host(StoryPanel())
    panel.resize(900, 320)  # a short window: the story outgrows it after a frame or two
    panel.set_frame_photos({i: FrameGeometry(i, p) for i, p in enumerate(sample_photos, 1)})
    story_start = story_output.index("</think>")
    pieces = [story_output[i : i + 20] for i in range(0, len(story_output), 20)]
    parser = StoryStreamParser()
    bar = panel.browser.verticalScrollBar()
    head = next(i for i, _ in enumerate(pieces) if 20 * i > story_start + 300)
    middle = (head + len(pieces)) // 2
    _grow_live(qtbot, panel, parser, pieces[:head])
    scrolled = 0
    for piece in pieces[head:middle]:
        _grow_live(qtbot, panel, parser, [piece])
        assert bar.value() == bar.maximum()  # the newest text is in view
        scrolled += bar.maximum() > 0
    assert scrolled > 10  # the story was taller than the view for most of it
    from PySide6.QtWidgets import QAbstractSlider

    _wheel_up(panel.browser.viewport())  # the reader scrolls up to read
    kept = bar.value()
    assert kept < bar.maximum()
    _grow_live(qtbot, panel, parser, pieces[middle:])
    assert bar.value() == kept and bar.maximum() > kept  # left where the reader is
    bar.triggerAction(QAbstractSlider.SliderAction.SliderToMaximum)  # back at the end
    _grow_live(qtbot, panel, parser, ["\n<gdi image4>More text. " * 20])
    assert bar.value() == bar.maximum()


def _wheel_up(widget: Any, notches: int = 3) -> None:
    """Turn the mouse wheel away from the reader over ``widget`` (scrolls up)."""
    from PySide6.QtCore import QPoint, QPointF
    from PySide6.QtGui import QWheelEvent

    centre = QPointF(widget.rect().center())
    event = QWheelEvent(
        centre,
        QPointF(widget.mapToGlobal(centre.toPoint())),
        QPoint(),
        QPoint(0, 120 * notches),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(widget, event)


@pytest.mark.parametrize("width", [760, 1180, 2300])  # the analysis at 1024, 1440 and 2560
def test_analysis_tables_fit_their_text_without_wasting_width(
    qtbot: Any, story_tabs: Any, width: int
) -> None:
    from PySide6.QtWidgets import QTableWidget

    story_tabs.resize(width, 620)
    panel = story_tabs.analysis_panel
    story_tabs.setCurrentWidget(panel)
    tables = [panel.narrative_table]
    panel.tabs.setCurrentWidget(panel.narrative_table)
    qtbot.wait(10)
    checks = [(panel.narrative_table, column_fit(panel.narrative_table))]
    panel.tabs.setCurrentIndex(0)
    for index in range(panel.frame_tabs.count()):
        panel.frame_tabs.setCurrentIndex(index)
        qtbot.wait(10)
        tables = panel.frame_tabs.currentWidget().widget().findChildren(QTableWidget)
        checks += [(table, column_fit(table)) for table in tables]
    for table, (cut, wasted) in checks:
        headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
        # No text is cut while another column has more than twice the width it needs.
        assert not (cut and wasted), (headers, cut, wasted, width)
    narrative = panel.narrative_table
    phases = [narrative.item(r, 0).text() for r in range(narrative.rowCount())]
    assert "Conflict" in phases and "Conclusion" in phases
    assert not column_fit(narrative)[0]  # every phase, description and event readable whole
    frames_width = narrative.columnWidth(3)
    assert frames_width < narrative.columnWidth(1)  # the one-digit column stays narrow


@pytest.mark.parametrize("width", [600, 760, 1180, 2300])  # 1024 to 2560 px windows, and less
def test_the_story_text_is_at_least_fifty_characters_wide(
    qtbot: Any, story_tabs: Any, width: int
) -> None:
    story_tabs.resize(width, 620)
    qtbot.wait(10)
    browser = story_tabs.story_panel.browser
    columns = story_text_columns(browser)
    assert len(columns) == 4  # one per frame, beside its photo
    from PySide6.QtGui import QFont, QFontMetrics

    font = QFont(browser.font())
    font.setPointSizeF(11)  # the story's size (story_html)
    fifty = 50 * QFontMetrics(font).averageCharWidth()
    assert min(columns) >= fifty, (columns, fifty)
    assert story_tabs.story_panel.photo_view.width() > 0  # the photo viewer is still there


def test_a_story_without_analysis_says_so_and_the_grid_explains_its_marks(
    qtbot: Any, host: Callable[[Any], Any]
) -> None:
    from desktop_app.story.parser import parse_story
    from desktop_app.ui.analysis import AnalysisPanel

    panel = host(AnalysisPanel())
    panel.set_story(parse_story(ui_sample.story_text()), {})
    assert not panel.empty_note.isVisible()
    panel.tabs.setCurrentIndex(3)  # who appears where
    legend = panel.matrix_legend
    assert legend.isVisible() and all(mark in legend.text() for mark in "●○·")
    assert "seen in the photo" in legend.text() and "named in the story" in legend.text()
    panel.set_story(parse_story("<gdi image1>Maya ran with the kite.</gdi>"), {})
    assert panel.empty_note.isVisible()
    assert "no analysis" in panel.empty_note.text()


def test_the_checks_line_wraps_in_a_narrow_photo_pane(qtbot: Any) -> None:
    from desktop_app.ui.story_panel import PHOTO_VIEW_MIN_PX, StoryPanel

    panel = StoryPanel()
    qtbot.addWidget(panel)
    panel.resize(900, 600)
    panel.show()
    panel.splitter.setSizes([900 - PHOTO_VIEW_MIN_PX, PHOTO_VIEW_MIN_PX])  # a 1024 px window
    label = panel.issues_label
    label.setText("Checks: the story is checked when it is finished")
    qtbot.wait(10)
    lines = label.heightForWidth(label.width()) // label.fontMetrics().lineSpacing()
    assert label.fontMetrics().horizontalAdvance(label.text()) > label.width()  # too long…
    assert lines >= 2 and label.height() >= label.heightForWidth(label.width())  # …so it wraps
