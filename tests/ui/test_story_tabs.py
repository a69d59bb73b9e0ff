"""The story tabs alone with a session: they show the version the session opens, the run being
written as it grows, renames, a photo's frame, and two versions side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ui_helpers import session_album
from ui_sample import scripted_backend

from desktop_app.app.stored_story import StoredStory
from desktop_app.app.telling import TellOptions, tell_album
from desktop_app.story.parser import StoryStreamParser
from desktop_app.ui.analysis import IdRole
from desktop_app.ui.session import LiveRun, OpenVersion
from desktop_app.ui.story_tabs import StoryTabs


def _told(session: Any, story_output: str) -> Any:
    """A stored version of the open album, told by the scripted backend."""
    ended = tell_album(
        session.library, session.album_id, scripted_backend(story_output), TellOptions()
    )
    return ended.run


def test_the_tabs_show_the_open_version_and_clear_without_one(
    make_session: Any, host: Any, sample_photos: list[Path], story_output: str
) -> None:
    session = make_session()
    tabs = host(StoryTabs(session))
    session_album(session, sample_photos)
    run = _told(session, story_output)
    session.show(OpenVersion(run, StoredStory.of_run(run)))
    text = tabs.story_panel.browser.toPlainText()
    assert "Frame 4" in text and "Grandpa Joe" in text and "<gdo" not in text
    assert "no problems found" in tabs.story_panel.issues_label.text()
    assert tabs.analysis_panel.frame_tabs.count() == 4
    session.show(None)
    assert "No story yet" in tabs.story_panel.browser.toPlainText()
    assert tabs.analysis_panel.frame_tabs.count() == 0


def test_the_run_being_written_is_rendered_as_it_grows_and_only_while_shown(
    make_session: Any, host: Any, sample_photos: list[Path], story_output: str
) -> None:
    session = make_session()
    tabs = host(StoryTabs(session))
    album = session_album(session, sample_photos)
    live = LiveRun(album.id, 1, {})
    session.run_started.emit(live)
    session.show(live)
    assert tabs.currentWidget() is tabs.story_panel
    assert "Starting" in tabs.story_panel.browser.toPlainText()
    parser = StoryStreamParser()
    parser.feed(story_output[: len(story_output) // 3])
    live.story = parser.snapshot()
    session.live_story_changed.emit(live)
    shown = tabs.story_panel.browser.toPlainText()
    assert "Frame 1" in shown and "|" not in shown and "<think>" not in shown
    session.show(None)  # another version (or album) is open: the live text stays off screen
    parser.feed(story_output[len(story_output) // 3 :])
    live.story = parser.snapshot()
    session.live_story_changed.emit(live)
    assert "Grandpa Joe" not in tabs.story_panel.browser.toPlainText()


def test_a_rename_and_a_photo_click_show_in_the_story_tab(
    make_session: Any, host: Any, sample_photos: list[Path], story_output: str
) -> None:
    session = make_session()
    tabs = host(StoryTabs(session))
    session_album(session, sample_photos)
    run = _told(session, story_output)
    session.show(OpenVersion(run, StoredStory.of_run(run)))
    tabs.setCurrentWidget(tabs.analysis_panel)
    session.names_changed.emit({"char1": "Grandpa Ray"})
    assert "Grandpa Ray" in tabs.story_panel.browser.toPlainText()
    from PySide6.QtWidgets import QApplication

    tabs.setCurrentWidget(tabs.story_panel)
    tabs.resize(900, 360)  # the story is taller than its pane: it must scroll to a frame
    QApplication.processEvents()
    bar = tabs.story_panel.browser.verticalScrollBar()
    assert bar.maximum() > 0
    bar.setValue(0)
    tabs.setCurrentWidget(tabs.analysis_panel)
    tabs.show_frame(4, ("char1",))
    assert tabs.currentWidget() is tabs.story_panel
    assert tabs.story_panel.photo_view.photo_path == sample_photos[3]
    assert bar.value() > 0  # the story scrolled to frame 4's text


def test_comparing_shows_both_versions_in_the_compare_tab(
    make_session: Any, host: Any, sample_photos: list[Path], story_output: str
) -> None:
    session = make_session()
    tabs = host(StoryTabs(session))
    session_album(session, sample_photos)
    first, second = _told(session, story_output), _told(session, story_output)
    session.run_model.set_runs([second, first])
    assert tabs.compare_panel.left_combo.count() == 2  # the compare tab follows the list
    tabs.compare(first, second, {}, {"char1": "Grandpa Ray"})
    assert tabs.currentWidget() is tabs.compare_panel
    assert "Grandpa Ray" in tabs.compare_panel.right_browser.toPlainText()
    assert "Grandpa Ray" not in tabs.compare_panel.left_browser.toPlainText()


def test_compared_versions_show_each_frames_photo_and_a_header(
    make_session: Any, host: Any, sample_photos: list[Path], story_output: str
) -> None:
    from PySide6.QtCore import QUrl
    from PySide6.QtGui import QImage, QTextDocument

    from desktop_app.app.settings import Settings
    from desktop_app.engine.api import Preset

    session = make_session()
    tabs = host(StoryTabs(session))
    session_album(session, sample_photos)
    options = TellOptions.from_settings(Settings(preset=Preset.FAITHFUL))
    first, second = (
        tell_album(session.library, session.album_id, scripted_backend(story_output), options).run
        for _ in range(2)
    )
    tabs.compare(first, second, {}, {})
    panel = tabs.compare_panel
    frames = range(1, len(sample_photos) + 1)
    for run, header, browser in (
        (first, panel.left_header, panel.left_browser),
        (second, panel.right_header, panel.right_browser),
    ):
        markup = browser.toHtml()
        for frame in frames:
            assert f'src="frame-photo:{frame}"' in markup  # the photo beside the frame's text
            image = browser.document().resource(
                QTextDocument.ResourceType.ImageResource, QUrl(f"frame-photo:{frame}")
            )
            assert isinstance(image, QImage) and not image.isNull()
        assert "Grandpa Joe" in browser.toPlainText()
        text = header.text()
        assert f"Version #{run.id}" in text
        assert "complete" in text
        assert run.created[:10] in text  # the date
        assert "preset faithful" in text
        assert "model " in text and "scripted" in text
    # Each frame's thumbnail is that frame's photo: the four sample photos differ in colour.
    left = panel.left_browser.document()
    colours = {
        left.resource(QTextDocument.ResourceType.ImageResource, QUrl(f"frame-photo:{f}"))
        .pixelColor(5, 5)
        .name()
        for f in frames
    }
    assert len(colours) == len(sample_photos)


def test_a_photo_no_story_speaks_of_shows_large_and_opens_full_size(
    qtbot: Any, make_session: Any, host: Any, sample_photos: list[Path]
) -> None:
    from desktop_app.ui.photo_window import open_full_size

    session = make_session()
    tabs = host(StoryTabs(session))
    tabs.setCurrentWidget(tabs.compare_panel)
    tabs.show_photo(sample_photos[2], "Photo 3 of 4 · 03-stuck-in-tree.jpg")
    assert tabs.currentWidget() is tabs.story_panel
    view = tabs.story_panel.photo_view
    assert view.photo_path == sample_photos[2] and view.box_items() == []
    assert tabs.story_panel.photo_caption.text() == "Photo 3 of 4 · 03-stuck-in-tree.jpg"
    window = open_full_size(sample_photos[2], tabs)
    qtbot.waitExposed(window)
    assert window.view.photo_path == sample_photos[2]
    from PySide6.QtGui import QGuiApplication

    screen = QGuiApplication.primaryScreen().availableGeometry()
    assert window.width() >= int(screen.width() * 0.85)  # most of the screen
    window.close()


def test_checks_are_cleared_when_a_run_starts(
    qtbot: Any, make_session: Any, host: Any, sample_photos: list[Path], story_output: str
) -> None:
    """While a story is written, Checks does not list the previous version's problems."""
    from ui_helpers import tell_and_wait

    from desktop_app.ui.generation import GenerationController

    session = make_session()
    tabs = host(StoryTabs(session))
    session_album(session, sample_photos)
    broken = _told(session, story_output[: len(story_output) // 2])  # stops mid-way
    session.show(OpenVersion(broken, StoredStory.of_run(broken)))
    assert tabs.story_panel.issues_list.count() > 0
    seen: list[tuple[int, str]] = []
    panel = tabs.story_panel
    session.run_started.connect(
        lambda _live: seen.append((panel.issues_list.count(), panel.issues_label.text()))
    )
    tell_and_wait(qtbot, GenerationController(session))
    assert seen and seen[0][0] == 0
    assert "checked when it is finished" in seen[0][1]


def _stopped_when(session: Any, story_output: str, marker: str, count: int = 1) -> Any:
    """A version of the open album stopped by the user once ``marker`` was written
    ``count`` times."""
    from desktop_app.engine.api import TokenEvent
    from desktop_app.library.records import RunStatus

    written: list[str] = []

    def seen(event: Any) -> None:
        if isinstance(event, TokenEvent):
            written.append(event.text)

    ended = tell_album(
        session.library,
        session.album_id,
        scripted_backend(story_output),
        TellOptions(),
        should_stop=lambda: "".join(written).count(marker) >= count,
        on_event=seen,
    )
    assert ended.run.status is RunStatus.STOPPED
    return ended.run


def _checks(tabs: Any) -> list[str]:
    issues = tabs.story_panel.issues_list
    return [issues.item(row).text() for row in range(issues.count())]


def test_a_version_stopped_in_the_story_says_where_the_user_stopped_it(
    make_session: Any, host: Any, sample_photos: list[Path], story_output: str
) -> None:
    session = make_session()
    tabs = host(StoryTabs(session))
    session_album(session, sample_photos)
    run = _stopped_when(session, story_output, "</gdi>", count=2)
    session.show(OpenVersion(run, StoredStory.of_run(run)))
    checks = _checks(tabs)
    assert any("Stopped by you after frame 2 of 4" in line for line in checks), checks
    assert not any("tokens" in line or "<gdi" in line for line in checks), checks
    assert not any(line.startswith("✖") for line in checks), checks  # no errors for a stop
    assert "…" not in tabs.story_panel.browser.toPlainText()  # nothing looks still to come


def test_a_version_stopped_in_the_analysis_says_so_and_not_that_the_story_follows(
    make_session: Any, host: Any, sample_photos: list[Path], story_output: str
) -> None:
    session = make_session()
    tabs = host(StoryTabs(session))
    session_album(session, sample_photos)
    run = _stopped_when(session, story_output, "## Image 3")
    session.show(OpenVersion(run, StoredStory.of_run(run)))
    checks = _checks(tabs)
    assert any("Stopped by you while analysing frame" in line for line in checks), checks
    assert not any("ran out of tokens" in line for line in checks), checks
    text = tabs.story_panel.browser.toPlainText()
    assert "follows" not in text and "…" not in text
    assert "No story text" in text


def test_a_frame_the_user_stopped_before_its_text_does_not_look_still_to_come(
    make_session: Any, host: Any, sample_photos: list[Path], story_output: str
) -> None:
    session = make_session()
    tabs = host(StoryTabs(session))
    session_album(session, sample_photos)
    run = _stopped_when(session, story_output, "<gdi image3>")
    session.show(OpenVersion(run, StoredStory.of_run(run)))
    text = tabs.story_panel.browser.toPlainText()
    assert "Frame 3" in text and "…" not in text


def test_a_photo_taken_out_of_the_album_leaves_the_viewer(
    make_session: Any, host: Any, sample_photos: list[Path], tmp_path: Path
) -> None:
    session = make_session()
    tabs = host(StoryTabs(session))
    album = session_album(session, sample_photos[:2])
    view = tabs.story_panel.photo_view
    tabs.show_photo(sample_photos[1], "Photo 2 of 2")
    assert view.photo_path == sample_photos[1]
    gone = tmp_path / "gone.jpg"
    tabs.show_photo(gone, "Photo 3 of 3")  # a file that is not there: the viewer says so
    assert view.failed_path == gone and "cannot be shown" in view._placeholder.text()
    session.photos_changed.emit(album.id)  # the strip re-read the album: that photo is not in it
    assert view.failed_path is None and "cannot be shown" not in view._placeholder.text()
    tabs.show_photo(sample_photos[1], "Photo 2 of 2")
    photo = next(p for p in session.photo_model.photos() if p.path == sample_photos[1])
    session.library.remove_photos(album.id, [photo.id])
    session.photos_changed.emit(album.id)
    assert view.photo_path is None and tabs.story_panel.photo_caption.text() == ""


def test_the_analysis_being_written_names_people_without_their_ids(
    make_session: Any, host: Any, sample_photos: list[Path], story_output: str
) -> None:
    session = make_session()
    tabs = host(StoryTabs(session))
    album = session_album(session, sample_photos)
    live = LiveRun(album.id, 1, {})
    session.show(live)
    parser = StoryStreamParser()
    parser.feed(story_output[: story_output.index("</think>")])  # the analysis only, so far
    live.story = parser.snapshot()
    session.live_story_changed.emit(live)
    text = tabs.story_panel.browser.toPlainText()
    assert "Maya" in text and "Grandpa Joe" in text
    assert "char1" not in text and "obj1" not in text


def test_the_cast_gallery_says_where_a_name_came_from_and_undoes_a_match(
    make_session: Any, host: Any, sample_photos: list[Path], story_output: str
) -> None:
    from desktop_app.ui.versions import VersionsController

    session = make_session()
    tabs = host(StoryTabs(session))
    versions = VersionsController(session)
    tabs.analysis_panel.match_undone.connect(versions.undo_name_match)  # as the window wires it
    session_album(session, sample_photos)
    first = _told(session, story_output)
    session.library.set_display_name(first.id, "char1", "Grandpa Ray")
    # The next version's ids differ; the album's cast gives the same person the name.
    later = tell_album(
        session.library,
        session.album_id,
        scripted_backend(story_output.replace("char1", "char9")),
        TellOptions(),
    ).run
    versions.show_run(later)
    panel = tabs.analysis_panel
    assert panel.cast_names()["char9"] == "Grandpa Ray"
    rows = {panel.cast_list.item(i).data(IdRole): i for i in range(panel.cast_list.count())}
    panel.cast_list.setCurrentRow(rows["char9"])
    assert f"the name you gave in version #{first.id}" in panel.origin_label.text()
    assert not panel.undo_match_button.isHidden()
    panel.undo_match_button.click()
    assert session.library.display_names(later.id) == {}
    assert panel.cast_names()["char9"] != "Grandpa Ray"
    assert "Grandpa Ray" not in tabs.story_panel.browser.toPlainText()
    panel.cast_list.setCurrentRow(rows["char9"])
    assert "you undid that name" in panel.origin_label.text()
    assert panel.undo_match_button.isHidden()
