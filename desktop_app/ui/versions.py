"""The versions of the open album's story: which one is open, and what the user does with it.

``VersionsController`` is built with the session. It fills the versions list when an album
opens, opens the selected version (parsed and checked once) in the session, follows runs as they
start and end, deletes and compares versions, stores the user's names for characters, and exports
or copies the open version.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDialog, QFileDialog

from desktop_app.app.album_cast import offer_names, undo_match
from desktop_app.app.captions import ShareReport, SidecarNaming, write_sidecars
from desktop_app.app.exports import render_export
from desktop_app.app.sharing import SHARE_FORMATS, share_source
from desktop_app.app.stored_story import StoredStory
from desktop_app.errors import StorytellerError
from desktop_app.library.records import Album, RunStatus, StoryRun
from desktop_app.story.names import display_name
from desktop_app.ui.exporting import (
    EXPORT_KINDS,
    export_space_warning,
    export_story,
    show_export_notice,
)
from desktop_app.ui.session import EndedRun, LiveRun, OpenVersion, Session
from desktop_app.ui.share_options import PHOTO_MANAGER_KINDS, ShareChoice, ShareOptionsDialog
from desktop_app.ui.workers import CallableWorker, WorkerHandle

logger = logging.getLogger(__name__)


def best_version(runs: list[StoryRun]) -> StoryRun | None:
    """The version to show first among ``runs`` (newest first): the newest complete one, else
    the newest with any text, else the newest (the rule ``album export`` follows)."""
    for run in runs:
        if run.status is RunStatus.COMPLETE:
            return run
    for run in runs:
        if run.status is not RunStatus.RUNNING and run.raw_output.strip():
            return run
    return runs[0] if runs else None


def export_name(title: str, run_id: int) -> str:
    """The file name an export of version ``run_id`` of ``title`` is offered under (no suffix)."""
    return f"{title} (version {run_id})"


class VersionsController(QObject):
    """The versions list, the open version, its names, exports and comparisons."""

    # Two versions to show side by side (older, newer) with their display names.
    comparison_ready = Signal(object, object, object, object)

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self._session = session
        session.album_opened.connect(self._on_album_opened)
        session.versions_changed.connect(self._on_versions_changed)
        session.versions_selected.connect(self._on_selected)
        session.run_started.connect(self._on_run_started)
        session.run_ended.connect(self._on_run_ended)

    # ---------------------------------------------------------------- the versions list

    def _on_album_opened(self, album: Album | None) -> None:
        if album is None:
            self._session.run_model.set_runs([])
            self.show_run(None)
        else:
            self.reload_runs(select_latest=True)

    def _on_versions_changed(self, album_id: int) -> None:
        if album_id == self._session.album_id:
            self.reload_runs(select_latest=True)

    def reload_runs(self, select_latest: bool = False) -> None:
        """Read the open album's versions (newest first); if asked, open the newest complete
        one (what ``album export`` picks), not a newer stopped or failed one."""
        session = self._session
        runs = session.read_open_album(lambda lib, album: lib.runs(album), "Reading the stories")
        if runs is None:
            return
        session.run_model.set_runs(runs)
        session.select_versions([])
        best = best_version(session.run_model.runs())
        if select_latest and best is not None:
            self.open_version(best.id)
        else:
            self.show_run(None)

    def open_version(self, run_id: int) -> None:
        """Open the version ``run_id`` (the run being written, if it is that one)."""
        session = self._session
        live = session.live
        if live is not None and run_id == live.run_id:
            if not session.showing_live(live):
                session.show(live)
            return
        if session.open_run is not None and session.open_run.id == run_id:
            return
        try:
            run = session.library.run(run_id)
        except StorytellerError as err:
            session.report_error(err, action="Opening the story")
            return
        self.show_run(run)

    def _on_selected(self, runs: list[StoryRun]) -> None:
        if len(runs) == 1:
            self.open_version(runs[0].id)

    def show_run(self, run: StoryRun | None, story: StoredStory | None = None) -> None:
        """Show a stored version: its story (parsed and checked here unless ``story`` is that
        already, as for a run that just ended)."""
        session = self._session
        if run is None:
            session.show(None)
            return
        if story is None:  # a version told before its album kept a cast gets its names now
            try:
                offer_names(session.library, run.id)
            except StorytellerError as err:
                logger.warning("the album's names were not offered to version %s: %s", run.id, err)
        names = session.library.display_names(run.id)
        stored = story.with_names(names) if story is not None else StoredStory.of_run(run, names)
        session.show(OpenVersion(run, stored))
        status = run.status.value
        if status in ("stopped", "interrupted", "failed"):
            session.show_status(
                f"Version #{run.id} was {status}: it shows the story as far as it got."
            )

    def _on_run_started(self, live: LiveRun) -> None:
        session = self._session
        session.album_changed.emit(live.album_id)
        if live.album_id == session.album_id:
            try:
                session.run_model.upsert(session.library.run(live.run_id))
            except StorytellerError:
                logger.warning("could not read the new run %s", live.run_id)

    def _on_run_ended(self, ended: EndedRun) -> None:
        session = self._session
        if ended.live is None:
            return
        album_id = ended.live.album_id
        session.album_changed.emit(album_id)
        if album_id != session.album_id:
            return
        if ended.run is not None:
            session.run_model.upsert(ended.run)
            self.show_run(ended.run, ended.stored)
        else:  # not kept (nothing was written): the list and the story show what is left
            session.run_model.remove(ended.live.run_id)
            self.reload_runs(select_latest=True)

    def delete_selected(self) -> None:
        """Delete the selected versions (after asking)."""
        session = self._session
        runs = session.selected_runs
        if not runs:
            return
        live = session.live
        if live is not None and any(run.id == live.run_id for run in runs):
            session.show_status("Stop the story being written before deleting it.")
            return
        label = f"version #{runs[0].id}" if len(runs) == 1 else f"{len(runs)} versions"
        if not session.ask(
            "Delete version", f"Delete {label} of this story?", action=f"Delete {label}"
        ):
            return
        for run in runs:
            try:
                session.library.delete_run(run.id)
            except StorytellerError as err:
                session.report_error(err, action="Deleting the version")
                return
            session.run_model.remove(run.id)
        if session.album_id is not None:
            session.album_changed.emit(session.album_id)
        session.select_versions([])
        if session.run_model.rowCount():
            first = session.run_model.run_at(0)
            assert first is not None
            self.open_version(first.id)
        else:
            self.show_run(None)

    def compare_versions(self) -> None:
        """Show the two selected versions (or the two newest) side by side."""
        session = self._session
        runs = session.selected_runs
        if len(runs) < 2:
            runs = session.run_model.runs()[:2]
        if len(runs) < 2:
            session.show_status("An album needs two versions to compare: generate another one.")
            return
        left, right = runs[1], runs[0]  # older on the left
        library = session.library
        self.comparison_ready.emit(
            library.run(left.id),
            library.run(right.id),
            library.display_names(left.id),
            library.display_names(right.id),
        )

    # ---------------------------------------------------------------- names

    def rename_entity(self, entity_id: str, name: str) -> None:
        """Give ``entity_id`` a display name in the open version (stored as an edit)."""
        session = self._session
        shown = session.shown
        if not isinstance(shown, OpenVersion):
            return
        old_name = display_name(entity_id, shown.story, shown.stored.names)
        rename = partial(session.library.set_display_name, shown.run.id, entity_id, name or None)
        if not self._change_names(shown, rename, action="Renaming"):
            return
        session.show_status(
            f"{old_name} is now called “{name}” in this version."
            if name
            else f"{old_name} has its original name again: "
            f"“{display_name(entity_id, shown.story)}”."
        )

    def undo_name_match(self, entity_id: str) -> None:
        """Take back the name the album's cast gave ``entity_id`` in the open version."""
        session = self._session
        shown = session.shown
        if not isinstance(shown, OpenVersion):
            return
        old_name = display_name(entity_id, shown.story, shown.stored.names)
        undo = partial(undo_match, session.library, shown.run.id, entity_id)
        if not self._change_names(shown, undo, action="Undoing the name"):
            return
        session.show_status(
            f"{old_name} is “{display_name(entity_id, shown.story)}” again in this version; "
            "the album will not offer it that name again."
        )

    def _change_names(
        self, shown: OpenVersion, change: Callable[[], object], *, action: str
    ) -> bool:
        """Make ``change`` to the open version's names, then show the version under its names as
        they now are; False (said as an error of ``action``) when the library refused."""
        session = self._session
        try:
            change()
            names = session.library.display_names(shown.run.id)
        except StorytellerError as err:
            session.report_error(err, action=action)
            return False
        session.shown = OpenVersion(shown.run, shown.stored.with_names(names))
        session.names_changed.emit(names)
        return True

    # ---------------------------------------------------------------- export

    def _title(self) -> str:
        album = self._session.album
        return album.name if album is not None else "Story"

    def export_dialog(self, kind: str) -> None:
        """Ask where to export the open version as ``kind`` and export it; sidecars and
        captioned copies first ask how (``ui.share_options``)."""
        session = self._session
        run = session.open_run
        shown = session.shown
        if run is None or not isinstance(shown, OpenVersion):
            session.show_status("Open a story version to export it.")
            return
        choice = ShareChoice()
        if kind in PHOTO_MANAGER_KINDS:
            photos = [frame.path for frame in shown.stored.frames]
            asked = self.ask_share_choice(kind, photos)
            if asked is None:
                return
            choice = asked
            if choice.beside_originals:
                self.share_beside_originals(choice.naming)
                return
        label, suffix, file_filter = EXPORT_KINDS[kind]
        # "Kite day (version 2).html": a name, not what looks like a copy's "-2" suffix.
        default = Path.home() / f"{export_name(self._title(), run.id)}{suffix}"
        if kind in SHARE_FORMATS and SHARE_FORMATS[kind].into_folder:
            parent = QFileDialog.getExistingDirectory(
                session.dialog_parent, f"Export as {label} into a folder", str(Path.home())
            )
            # A new folder inside the one chosen: "Kite day (version 2) sidecars".
            path = str(Path(parent) / f"{default.name} {kind}") if parent else ""
        else:
            path, _ = QFileDialog.getSaveFileName(
                session.dialog_parent, f"Export as {label}", str(default), file_filter
            )
        if path:
            self.export(kind, Path(path), keep_location=choice.keep_location, naming=choice.naming)

    def ask_share_choice(self, kind: str, photos: list[Path]) -> ShareChoice | None:
        """How to share ``photos`` as ``kind`` (a photo-manager kind), or None if cancelled."""
        dialog = ShareOptionsDialog(kind, photos, self._session.dialog_parent)
        try:
            if dialog.exec() != QDialog.DialogCode.Accepted:
                return None
            return dialog.choice()
        finally:
            dialog.deleteLater()

    def share_beside_originals(
        self, naming: SidecarNaming = SidecarNaming.FULL_NAME
    ) -> WorkerHandle | None:
        """Write the open version's XMP sidecars beside its original photos in the background
        (an existing sidecar is merged into; the photos are only read)."""
        session = self._session
        shown = session.shown
        if not isinstance(shown, OpenVersion):
            return None
        stored = shown.stored
        worker = CallableWorker(lambda ctx: write_sidecars(stored, None, naming=naming))
        handle = session.start_job(worker, "Writing sidecars beside the photos")

        def done(report: ShareReport) -> None:
            count = len(report.written)
            folders = {path.parent for path in report.written}
            where = str(next(iter(folders))) if len(folders) == 1 else f"{len(folders)} folders"
            session.show_status(
                f"Wrote {count} sidecar{'s' if count != 1 else ''} beside the photos in {where}."
            )

        handle.finished.connect(done)
        return handle

    def export(
        self,
        kind: str,
        path: Path,
        *,
        keep_location: bool = False,
        naming: SidecarNaming = SidecarNaming.FULL_NAME,
    ) -> WorkerHandle | None:
        """Write the open version to ``path`` in the background; copies of photos keep their
        location only with ``keep_location``, sidecars are named as ``naming`` says."""
        session = self._session
        shown = session.shown
        if not isinstance(shown, OpenVersion):
            return None
        stored, title, album = shown.stored, self._title(), session.album
        warning = export_space_warning(kind, path, stored)
        if warning:  # it may still fit: said, never refused
            session.show_status(f"Warning: {warning[0].upper()}{warning[1:]}.")
        if kind in SHARE_FORMATS and album is not None:
            # Read on this thread (the library's names and dates); written in the worker.
            source = replace(
                share_source(session.library, album, shown.run),
                story=stored,
                keep_location=keep_location,
                sidecar_naming=naming,
            )
            write = SHARE_FORMATS[kind].write
            worker = CallableWorker(lambda ctx: write(source, path))
        else:
            worker = CallableWorker(lambda ctx: export_story(kind, path, stored, title))
        handle = session.start_job(worker, f"Exporting {path.name}")
        handle.finished.connect(lambda _r: session.show_status(f"Exported to {path}"))
        handle.finished.connect(lambda _r: show_export_notice(path, session.dialog_parent))
        return handle

    def copy_story(self) -> None:
        """Copy the open version's story, without tags, to the clipboard."""
        session = self._session
        shown = session.shown
        if not isinstance(shown, OpenVersion):
            return
        text = render_export("text", shown.story, [], names=shown.stored.names)
        if not any(segment.text.strip() for segment in shown.story.segments):
            session.show_status("This version has no story text to copy.")
            return
        QGuiApplication.clipboard().setText(text)
        session.show_status("Story copied as text.")
