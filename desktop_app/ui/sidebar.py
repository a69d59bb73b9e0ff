"""The left side of the main window: the albums, and the versions of the open album's story.

The sidebar creates, renames and deletes albums, and opens the one the user picks in the
session; it lists the open album's versions (the versions controller fills the list) and tells
the session which are selected, and follows the version the session shows.
"""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QListView,
    QVBoxLayout,
    QWidget,
)

from desktop_app.errors import StorytellerError
from desktop_app.library.records import Album
from desktop_app.ui.actions import WindowActions, tool_button
from desktop_app.ui.session import LiveRun, OpenVersion, Session, Shown


class Sidebar(QWidget):
    """Albums (with New, Rename, Delete) above the story versions (with Delete, Compare)."""

    def __init__(
        self, session: Session, actions: WindowActions, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._session = session
        self._following = False  # the album list follows the session, not the other way
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 4, 8)
        albums_label = QLabel("<b>Albums</b>")
        self.album_view = QListView(self)
        self.album_view.setObjectName("albumList")
        self.album_view.setAccessibleName("Albums")
        self.album_view.setModel(session.album_model)
        self.album_view.setEditTriggers(
            QAbstractItemView.EditTrigger.EditKeyPressed
            | QAbstractItemView.EditTrigger.DoubleClicked
        )
        self.album_view.setSpacing(2)
        self.album_view.setWordWrap(True)
        self.album_view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        albums_label.setBuddy(self.album_view)
        # F2 renames the album only from the album list (and its buttons): elsewhere the
        # focused list's own F2 edits its item (a person in the Cast, for one).
        actions.scope_to("rename_album", self.album_view)
        album_buttons = QHBoxLayout()
        self.new_album_button = tool_button(actions["new_album"], "New")
        self.rename_album_button = tool_button(actions["rename_album"], "Rename")
        self.delete_album_button = tool_button(actions["delete_album"], "Delete")
        for button in (self.new_album_button, self.rename_album_button, self.delete_album_button):
            album_buttons.addWidget(button)
        versions_label = QLabel("<b>Versions</b>")
        self.run_view = QListView(self)
        self.run_view.setObjectName("versionList")
        self.run_view.setAccessibleName("Story versions")
        self.run_view.setModel(session.run_model)
        self.run_view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.run_view.setWordWrap(True)
        self.run_view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.run_view.setSpacing(2)
        self.run_view.setToolTip("Select one version to read it; select two and Compare.")
        versions_label.setBuddy(self.run_view)
        run_buttons = QHBoxLayout()
        self.delete_run_button = tool_button(actions["delete_run"], "Delete")
        self.compare_button = tool_button(actions["compare"], "Compare")
        run_buttons.addWidget(self.delete_run_button)
        run_buttons.addWidget(self.compare_button)
        layout.addWidget(albums_label)
        layout.addWidget(self.album_view, 3)
        layout.addLayout(album_buttons)
        layout.addSpacing(8)
        layout.addWidget(versions_label)
        layout.addWidget(self.run_view, 2)
        layout.addLayout(run_buttons)
        self.album_view.selectionModel().currentChanged.connect(self._on_album_changed)
        self.run_view.selectionModel().selectionChanged.connect(self._on_run_selection)
        session.album_model.rename_requested.connect(self._rename_album_to)
        session.album_created.connect(self._on_album_created)
        session.album_changed.connect(self.refresh_album_row)
        session.library_changed.connect(self.reload_albums)
        session.version_opened.connect(self._follow_version)

    def focus_order(self) -> list[QWidget]:
        """The sidebar's widgets in keyboard (Tab) order."""
        return [
            self.album_view,
            self.new_album_button,
            self.rename_album_button,
            self.delete_album_button,
            self.run_view,
            self.delete_run_button,
            self.compare_button,
        ]

    def reload_albums(self, select_id: int | None = None) -> None:
        """Read the album list from the library (start-up, library moved)."""
        session = self._session
        model = session.album_model
        library = session.library
        try:
            albums = library.albums()
            missing = {album.id: len(library.missing_photos(album.id)) for album in albums}
        except StorytellerError as err:
            session.report_error(err, action="Reading the library")
            albums, missing = [], {}
        model.set_albums(albums, missing)
        target = select_id if select_id is not None else session.album_id
        row = model.row_of(target) if target is not None else None
        if row is None and albums:
            row = 0
        index = model.index(row) if row is not None else QModelIndex()
        self._following = True  # open it once, below, even if it is the open album
        try:
            self.album_view.setCurrentIndex(index)
        finally:
            self._following = False
        self._session.open_album(model.album_at(row) if row is not None else None)

    def refresh_album_row(self, album_id: int) -> None:
        """Re-read one album's row (its photo and story counts, its missing photos)."""
        library = self._session.library
        try:
            album = library.album(album_id)
            missing = len(library.missing_photos(album_id))
        except StorytellerError:
            return
        self._session.album_model.update_album(album, missing)

    def new_album(self, name: str | None = None, *, edit: bool = True) -> Album | None:
        """Create an album (named, or "New album N" to be renamed in place) and open it."""
        album = self._session.create_album(name or self._session.unique_album_name())
        if album is not None and name is None and edit:
            self.album_view.edit(self.album_view.currentIndex())
        return album

    def _on_album_created(self, album: Album) -> None:
        model = self._session.album_model
        row = model.row_of(album.id)
        assert row is not None
        self.album_view.setCurrentIndex(model.index(row))

    def rename_album(self) -> None:
        """Start editing the current album's name in place."""
        index = self.album_view.currentIndex()
        if index.isValid():
            self.album_view.setFocus()
            self.album_view.edit(index)

    def _rename_album_to(self, album_id: int, name: str) -> None:
        session = self._session
        album = session.try_library(
            lambda: session.library.rename_album(album_id, name), "Renaming the album"
        )
        if album is None:
            return
        session.album_model.update_album(album)
        session.rename_open_album(album)

    def delete_album(self) -> None:
        """Delete the current album (after asking); photo files are not touched."""
        session = self._session
        album = self.current_album()
        if album is None:
            return
        live = session.live
        if live is not None and live.album_id == album.id:
            session.show_status("Stop the story being written before deleting its album.")
            return
        if not session.ask(
            "Delete album",
            f"Delete the album “{album.name}” and its {album.run_count} stories? "
            "Your photo files are not touched.",
            action="Delete album",
        ):
            return
        try:
            session.library.delete_album(album.id)
        except StorytellerError as err:
            session.report_error(err, action="Deleting the album")
            return
        model = session.album_model
        row = model.row_of(album.id)
        model.remove_album(album.id)
        if model.rowCount():
            row = min(row or 0, model.rowCount() - 1)
            self.album_view.setCurrentIndex(model.index(row))
        else:
            session.open_album(None)

    def current_album(self) -> Album | None:
        """The open album's record, or None."""
        album_id = self._session.album_id
        if album_id is None:
            return None
        row = self._session.album_model.row_of(album_id)
        return self._session.album_model.album_at(row) if row is not None else None

    def _on_album_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        album = self._session.album_model.album_at(current.row()) if current.isValid() else None
        if self._following or (album is not None and album.id == self._session.album_id):
            return  # (a new album is open already)
        self._session.open_album(album)

    # ---------------------------------------------------------------- versions

    def _on_run_selection(self, *_args: object) -> None:
        rows = sorted({i.row() for i in self.run_view.selectionModel().selectedIndexes()})
        model = self._session.run_model
        self._session.select_versions([r for r in (model.run_at(row) for row in rows) if r])

    def select_version(self, run_id: int) -> None:
        """Select (and so open) the version ``run_id`` in the list."""
        model = self._session.run_model
        row = model.row_of(run_id)
        if row is None:
            return
        self.run_view.selectionModel().setCurrentIndex(
            model.index(row), QItemSelectionModel.SelectionFlag.ClearAndSelect
        )

    def _follow_version(self, shown: Shown) -> None:
        if isinstance(shown, OpenVersion):
            run_id = shown.run.id
        elif isinstance(shown, LiveRun):
            run_id = shown.run_id
        else:
            return
        if [run.id for run in self._session.selected_runs] != [run_id]:
            self.select_version(run_id)
