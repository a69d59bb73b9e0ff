"""The versions of the open album's story: which one is open, and what the user does with it.

``VersionsController`` is a part of the main window. It fills the versions list, opens the
selected version in the story and analysis tabs (parsed and checked), deletes and compares
versions, stores the user's names for characters, and exports or copies the open version.
The open version is the window's ``current_run`` / ``current_story`` / ``current_issues``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QItemSelectionModel, QObject
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFileDialog

from desktop_app.app.exports import render_export
from desktop_app.app.stored_story import StoredStory, frames_of
from desktop_app.errors import StorytellerError
from desktop_app.library.records import StoryRun
from desktop_app.ui.errors import show_error
from desktop_app.ui.exporting import EXPORT_KINDS, export_story
from desktop_app.ui.story_panel import frame_photos_of
from desktop_app.ui.workers import CallableWorker, WorkerHandle

if TYPE_CHECKING:
    from desktop_app.ui.main_window import MainWindow

logger = logging.getLogger(__name__)


class VersionsController(QObject):
    """The versions list, the open version, its names, exports and comparisons."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self._window = window
        window.sidebar.run_view.selectionModel().selectionChanged.connect(self._on_run_selection)
        # The compare tab offers the versions the list shows, whatever changed them.
        model = window.run_model
        for signal in (model.modelReset, model.rowsInserted, model.rowsRemoved, model.dataChanged):
            signal.connect(lambda *_: window.compare_panel.set_runs(model.runs()))
        window.analysis_panel.name_edited.connect(self.rename_entity)
        window.analysis_panel.entity_activated.connect(self._show_entity_from_analysis)

    # ---------------------------------------------------------------- the versions list

    def reload_runs(self, select_latest: bool = False) -> None:
        """Read the open album's versions (newest first), selecting the newest if asked."""
        window = self._window
        runs = window.read_open_album(lambda lib, album: lib.runs(album), "Reading the stories")
        if runs is None:
            return
        window.run_model.set_runs(runs)
        if select_latest and runs:
            self.select_run_row(window.run_model.run_at(0).id)
        elif not runs:
            self.show_run(None)

    def select_run_row(self, run_id: int) -> None:
        """Select (and so open) the version ``run_id`` in the list."""
        row = self._window.run_model.row_of(run_id)
        if row is None:
            return
        index = self._window.run_model.index(row)
        self._window.sidebar.run_view.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect
        )

    def selected_runs(self) -> list[StoryRun]:
        """The versions selected in the versions list, newest first."""
        view = self._window.sidebar.run_view
        rows = sorted({i.row() for i in view.selectionModel().selectedIndexes()})
        model = self._window.run_model
        return [run for run in (model.run_at(r) for r in rows) if run is not None]

    def _on_run_selection(self, *_args: object) -> None:
        window = self._window
        rows = sorted(i.row() for i in window.sidebar.run_view.selectionModel().selectedIndexes())
        window.update_actions()
        if len(rows) != 1:
            return
        run = window.run_model.run_at(rows[0])
        if run is None:
            return
        live = window.generation.live
        if live is not None and run.id == live.run_id:
            window.generation.show_live()
            return
        if window.current_run is not None and run.id == window.current_run.id:
            return
        try:
            run = window.library.run(run.id)
        except StorytellerError as err:
            show_error(window, err, action="Opening the story")
            return
        self.show_run(run)

    def show_run(self, run: StoryRun | None, story: StoredStory | None = None) -> None:
        """Show a stored version: its story (parsed and checked here unless ``story`` is that
        already, as for a run that just ended), story and analysis tabs."""
        window = self._window
        window.current_run = run
        if run is None:
            window.current_story = None
            window.current_issues = []
            window.story_panel.clear()
            window.analysis_panel.clear()
            window.update_actions()
            return
        frame_photos = frame_photos_of(run)
        window.story_panel.set_frame_photos(frame_photos)
        window.analysis_panel.set_frame_photos(frame_photos)
        names = window.library.display_names(run.id)
        stored = story.with_names(names) if story is not None else StoredStory.of_run(run, names)
        window.current_story = stored.story
        window.current_issues = list(stored.issues)
        window.story_panel.set_story(
            stored.story, names=names, issues=window.current_issues, frame_count=len(run.photos)
        )
        window.analysis_panel.set_story(stored.story, names)
        status = run.status.value
        if status in ("stopped", "interrupted", "failed"):
            window.show_status(
                f"Version #{run.id} was {status}: it shows the story as far as it got."
            )
        window.update_actions()

    def delete_current_run(self) -> None:
        """Delete the selected versions (after asking)."""
        window = self._window
        runs = self.selected_runs()
        if not runs:
            return
        live = window.generation.live
        if live is not None and any(run.id == live.run_id for run in runs):
            window.show_status("Stop the story being written before deleting it.")
            return
        label = f"version #{runs[0].id}" if len(runs) == 1 else f"{len(runs)} versions"
        if not window.ask("Delete version", f"Delete {label} of this story?"):
            return
        for run in runs:
            try:
                window.library.delete_run(run.id)
            except StorytellerError as err:
                show_error(window, err, action="Deleting the version")
                return
            window.run_model.remove(run.id)
        window.current_run = None
        if window.current_album_id is not None:
            window.sidebar.refresh_album_row(window.current_album_id)
        if window.run_model.rowCount():
            self.select_run_row(window.run_model.run_at(0).id)
        else:
            self.show_run(None)

    def compare_versions(self) -> None:
        """Show the two selected versions (or the two newest) side by side."""
        window = self._window
        runs = self.selected_runs()
        if len(runs) < 2:
            runs = window.run_model.runs()[:2]
        if len(runs) < 2:
            window.show_status("An album needs two versions to compare: generate another one.")
            return
        left, right = runs[1], runs[0]  # older on the left
        library = window.library
        window.compare_panel.compare(
            library.run(left.id),
            library.run(right.id),
            library.display_names(left.id),
            library.display_names(right.id),
        )
        window.tabs.setCurrentWidget(window.compare_panel)

    # ---------------------------------------------------------------- names

    def rename_entity(self, entity_id: str, name: str) -> None:
        """Give ``entity_id`` a display name in the current version (stored as an edit)."""
        window = self._window
        if window.current_run is None:
            return
        try:
            window.library.set_display_name(window.current_run.id, entity_id, name or None)
            names = window.library.display_names(window.current_run.id)
        except StorytellerError as err:
            show_error(window, err, action="Renaming")
            return
        window.story_panel.set_names(names)
        window.analysis_panel.set_story(window.current_story, names)
        window.show_status(
            f"{entity_id} is now called “{name}” in this version."
            if name
            else f"{entity_id} has its original name again."
        )

    def _show_entity_from_analysis(self, frame: int, entity_id: str) -> None:
        panel = self._window.story_panel
        panel.show_entities(frame, (entity_id,))
        panel.select_entity(entity_id)
        self._window.tabs.setCurrentWidget(panel)

    def current_names(self) -> dict[str, str]:
        """The user's display names for the open version."""
        run = self._window.current_run
        return self._window.library.display_names(run.id) if run else {}

    # ---------------------------------------------------------------- export

    def export_dialog(self, kind: str) -> None:
        """Ask where to export the open version as ``kind`` and export it."""
        window = self._window
        if window.current_story is None or window.current_run is None:
            window.show_status("Open a story version to export it.")
            return
        label, suffix, file_filter = EXPORT_KINDS[kind]
        album = window.sidebar.current_album()
        default = (
            Path.home() / f"{(album.name if album else 'story')}-{window.current_run.id}{suffix}"
        )
        path, _ = QFileDialog.getSaveFileName(
            window, f"Export as {label}", str(default), file_filter
        )
        if path:
            self.export(kind, Path(path))

    def export(self, kind: str, path: Path) -> WorkerHandle | None:
        """Write the current version to ``path`` in the background."""
        window = self._window
        if window.current_story is None or window.current_run is None:
            return None
        album = window.sidebar.current_album()
        title = album.name if album else "Story"
        stored = StoredStory(
            window.current_story,
            tuple(window.current_issues),
            frames_of(window.current_run),
            self.current_names(),
        )
        worker = CallableWorker(lambda ctx: export_story(kind, path, stored, title))
        handle = window.start_job(worker, f"Exporting {path.name}")
        handle.finished.connect(lambda _r: window.show_status(f"Exported to {path}"))
        return handle

    def copy_story(self) -> None:
        """Copy the open version's story, without tags, to the clipboard."""
        window = self._window
        if window.current_story is None:
            return
        text = render_export("text", window.current_story, [], names=self.current_names())
        QGuiApplication.clipboard().setText(text)
        window.show_status("Story copied as text.")
