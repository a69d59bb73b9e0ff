"""The sidebar alone with a session: albums (create, rename, delete, another library), the
versions list following the open version, and the session's item models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QWidget
from ui_helpers import show_told

from desktop_app.app.settings import Settings
from desktop_app.ui.actions import WindowActions
from desktop_app.ui.item_models import AlbumListModel, PhotoListModel, RunListModel
from desktop_app.ui.sidebar import Sidebar
from desktop_app.ui.versions import VersionsController


def _sidebar(session: Any, host: Any) -> Sidebar:
    owner = QWidget()
    sidebar = Sidebar(session, WindowActions(owner), owner)
    host(owner)
    sidebar.reload_albums()
    return sidebar


def test_item_models_pass_qt_model_tester(qtmodeltester: Any, told_session: Any, host: Any) -> None:
    session = told_session
    _sidebar(session, host)
    VersionsController(session).reload_runs(select_latest=True)
    assert session.album_model.rowCount() == 1 and session.run_model.rowCount() == 1
    assert isinstance(session.album_model, AlbumListModel)
    qtmodeltester.check(session.album_model)
    assert isinstance(session.photo_model, PhotoListModel)
    qtmodeltester.check(session.photo_model)
    assert isinstance(session.run_model, RunListModel)
    qtmodeltester.check(session.run_model)


def test_create_rename_delete_album_updates_the_list_and_library(
    session: Any, host: Any, library: Any
) -> None:
    sidebar = _sidebar(session, host)
    opened: list[Any] = []
    session.album_opened.connect(opened.append)
    sidebar.new_album("Holiday", edit=False)
    assert [a.name if a else None for a in opened] == ["Holiday"]  # opened once
    index = sidebar.album_view.currentIndex()
    assert "Holiday" in index.data()
    assert session.album_model.setData(index, "Summer holiday")
    assert [a.name for a in library.albums()] == ["Summer holiday"]
    assert "Summer holiday" in sidebar.album_view.currentIndex().data()
    assert session.album.name == "Summer holiday"
    sidebar.delete_album()
    assert library.albums() == []
    assert session.album_model.rowCount() == 0 and session.album is None


def test_picking_an_album_opens_it_and_the_versions_list_follows_the_open_version(
    told_session: Any, host: Any, library: Any
) -> None:
    session = told_session
    told_album = session.album
    session.create_album("Empty")
    sidebar = _sidebar(session, host)
    VersionsController(session)
    row = session.album_model.row_of(told_album.id)
    sidebar.album_view.setCurrentIndex(session.album_model.index(row))
    assert session.album_id == told_album.id
    shown = show_told(session)
    assert sidebar.run_view.currentIndex().data().startswith(f"#{shown.run.id}")
    assert [run.id for run in session.selected_runs] == [shown.run.id]


def test_another_library_folder_in_the_settings_reopens_the_album_list(
    session: Any, host: Any, tmp_path: Path
) -> None:
    sidebar = _sidebar(session, host)
    sidebar.new_album("In the default library", edit=False)
    session.apply_settings(Settings(library_dir=tmp_path / "elsewhere"))
    assert session.album_model.rowCount() == 0 and session.album is None
    assert (tmp_path / "elsewhere").is_dir()


def test_f2_in_the_cast_renames_the_person_not_the_album(
    told_session: Any, host: Any, qtbot: Any
) -> None:
    """F2 acts on the focused list: in the Cast it edits the person; in the albums, the album."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QAbstractItemView, QHBoxLayout

    from desktop_app.ui.story_tabs import StoryTabs

    session = told_session
    owner = QWidget()
    actions = WindowActions(owner)
    sidebar = Sidebar(session, actions, owner)
    tabs = StoryTabs(session, owner)
    layout = QHBoxLayout(owner)
    layout.addWidget(sidebar)
    layout.addWidget(tabs)
    actions.connect(
        {name: (lambda: None) for name in actions} | {"rename_album": sidebar.rename_album}
    )
    host(owner)
    sidebar.reload_albums()
    show_told(session)
    tabs.setCurrentWidget(tabs.analysis_panel)
    panel = tabs.analysis_panel
    panel.tabs.setCurrentIndex(2)  # Cast
    cast = panel.cast_list
    assert cast.count() > 0
    cast.setCurrentRow(0)
    owner.activateWindow()
    cast.setFocus()
    qtbot.waitUntil(cast.hasFocus)
    qtbot.keyClick(cast, Qt.Key.Key_F2)
    editing = QAbstractItemView.State.EditingState
    assert cast.state() == editing
    assert sidebar.album_view.state() != editing
    qtbot.keyClick(cast.focusWidget() or cast, Qt.Key.Key_Escape)

    sidebar.album_view.setFocus()
    qtbot.waitUntil(sidebar.album_view.hasFocus)
    qtbot.keyClick(sidebar.album_view, Qt.Key.Key_F2)
    assert sidebar.album_view.state() == editing


def test_renaming_the_open_album_keeps_the_version_the_user_is_reading(
    told_session: Any, host: Any, story_output: str
) -> None:
    from ui_sample import scripted_backend

    from desktop_app.app.telling import TellOptions, tell_album

    session = told_session
    tell_album(session.library, session.album_id, scripted_backend(story_output), TellOptions())
    sidebar = _sidebar(session, host)
    versions = VersionsController(session)
    versions.reload_runs(select_latest=True)
    older = session.run_model.run_at(1)
    versions.open_version(older.id)
    reopened: list[Any] = []
    session.album_opened.connect(reopened.append)
    assert session.album_model.setData(sidebar.album_view.currentIndex(), "Kite day, spring")
    assert session.album.name == "Kite day, spring"
    assert reopened == []  # a rename changes the title, it does not open the album again
    assert session.open_run is not None and session.open_run.id == older.id
