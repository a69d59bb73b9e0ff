"""The left side of the main window: the albums, and the versions of the open album's story.

The sidebar creates, renames and deletes albums and says which one the user opened
(``album_selected``); what an album shows is the window's business. The versions list is
driven by ``desktop_app.ui.versions``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QModelIndex, Qt, Signal
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
from desktop_app.ui.errors import show_error

if TYPE_CHECKING:
    from desktop_app.ui.main_window import MainWindow


class Sidebar(QWidget):
    """Albums (with New, Rename, Delete) above the story versions (with Delete, Compare)."""

    album_selected = Signal(object)  # the album record the user opened, or None
    album_renamed = Signal(object)  # the renamed album's record

    def __init__(self, window: MainWindow, actions: WindowActions) -> None:
        super().__init__(window)
        self._window = window
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 4, 8)
        albums_label = QLabel("<b>Albums</b>")
        self.album_view = QListView(self)
        self.album_view.setObjectName("albumList")
        self.album_view.setAccessibleName("Albums")
        self.album_view.setModel(window.album_model)
        self.album_view.setEditTriggers(
            QAbstractItemView.EditTrigger.EditKeyPressed
            | QAbstractItemView.EditTrigger.DoubleClicked
        )
        self.album_view.setSpacing(2)
        self.album_view.setWordWrap(True)
        self.album_view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        albums_label.setBuddy(self.album_view)
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
        self.run_view.setModel(window.run_model)
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
        window.album_model.rename_requested.connect(self._rename_album_to)

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
        window = self._window
        model = window.album_model
        try:
            albums = window.library.albums()
            missing = {album.id: len(window.library.missing_photos(album.id)) for album in albums}
        except StorytellerError as err:
            show_error(window, err, action="Reading the library")
            albums, missing = [], {}
        model.set_albums(albums, missing)
        target = select_id if select_id is not None else window.current_album_id
        row = model.row_of(target) if target is not None else None
        if row is None and albums:
            row = 0
        if row is not None:
            self.album_view.setCurrentIndex(model.index(row))
        else:
            self.album_selected.emit(None)

    def refresh_album_row(self, album_id: int) -> None:
        """Re-read one album's row (its photo and story counts, its missing photos)."""
        library = self._window.library
        try:
            album = library.album(album_id)
            missing = len(library.missing_photos(album_id))
        except StorytellerError:
            return
        self._window.album_model.update_album(album, missing)

    def unique_album_name(self, base: str = "New album") -> str:
        """``base``, or "``base`` N" with the first N no album is called yet."""
        names = {album.name for album in self._window.album_model.albums()}
        if base not in names:
            return base
        n = 2
        while f"{base} {n}" in names:
            n += 1
        return f"{base} {n}"

    def new_album(self, name: str | None = None, *, edit: bool = True) -> Album | None:
        """Create an album (named, or "New album N" to be renamed in place) and select it."""
        window = self._window
        try:
            album = window.library.create_album(name or self.unique_album_name())
        except StorytellerError as err:
            show_error(window, err, action="Creating the album")
            return None
        window.album_model.update_album(album, 0)
        row = window.album_model.row_of(album.id)
        assert row is not None
        index = window.album_model.index(row)
        self.album_view.setCurrentIndex(index)
        if name is None and edit:
            self.album_view.edit(index)
        return album

    def rename_album(self) -> None:
        """Start editing the current album's name in place."""
        index = self.album_view.currentIndex()
        if index.isValid():
            self.album_view.setFocus()
            self.album_view.edit(index)

    def _rename_album_to(self, album_id: int, name: str) -> None:
        try:
            album = self._window.library.rename_album(album_id, name)
        except StorytellerError as err:
            show_error(self._window, err, action="Renaming the album")
            return
        self._window.album_model.update_album(album)
        self.album_renamed.emit(album)

    def delete_album(self) -> None:
        """Delete the current album (after asking); photo files are not touched."""
        window = self._window
        album = self.current_album()
        if album is None:
            return
        live = window.generation.live
        if live is not None and live.album_id == album.id:
            window.show_status("Stop the story being written before deleting its album.")
            return
        if not window.ask(
            "Delete album",
            f"Delete the album “{album.name}” and its {album.run_count} stories? "
            "Your photo files are not touched.",
        ):
            return
        try:
            window.library.delete_album(album.id)
        except StorytellerError as err:
            show_error(window, err, action="Deleting the album")
            return
        model = window.album_model
        row = model.row_of(album.id)
        model.remove_album(album.id)
        if model.rowCount():
            row = min(row or 0, model.rowCount() - 1)
            self.album_view.setCurrentIndex(model.index(row))
        else:
            self.album_selected.emit(None)

    def current_album(self) -> Album | None:
        """The open album's record, or None."""
        album_id = self._window.current_album_id
        if album_id is None:
            return None
        row = self._window.album_model.row_of(album_id)
        return self._window.album_model.album_at(row) if row is not None else None

    def _on_album_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        model = self._window.album_model
        self.album_selected.emit(model.album_at(current.row()) if current.isValid() else None)
