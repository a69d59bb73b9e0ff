"""Adding photos to the open album, and finding moved ones, in worker threads.

``ImportController`` is built with the session. It owns the import and relink workers, so
"Stop importing" can end them; photos added before a stop stay in the album.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog

from desktop_app.errors import StorytellerError
from desktop_app.library.records import ImportReport, RelinkReport
from desktop_app.ui.session import Session
from desktop_app.ui.workers import CallableWorker, JobContext, WorkerHandle
from desktop_app.words import counted

PHOTO_FILTER = "Images (*.jpg *.jpeg *.png *.webp *.heic *.heif *.bmp *.tif *.tiff);;All files (*)"


class ImportController(QObject):
    """Imports and relinks of the window's albums, and stopping them."""

    state_changed = Signal()  # an import started or ended: actions follow

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self._session = session
        self._imports: list[WorkerHandle] = []  # imports and relinks: "Stop importing" ends them

    def add_photos_dialog(self) -> None:
        """Pick photos with a file dialog and import them into the current album."""
        session = self._session
        session.ensure_album()
        files, _ = QFileDialog.getOpenFileNames(
            session.dialog_parent, "Add photos", str(Path.home()), PHOTO_FILTER
        )
        if files:
            self.import_paths([Path(f) for f in files])

    def import_paths(self, paths: Sequence[Path], insert_at: int = -1) -> None:
        """Add files and folders to the current album in the background (a new album if none)."""
        session = self._session
        album_id = session.ensure_album()
        if album_id is None:
            return
        library = session.library

        def job(ctx: JobContext) -> Any:
            def progress(count: int, path: Path) -> None:
                ctx.report(-1, f"Importing {count}: {path.name}")

            report = library.add_photos(
                album_id, list(paths), progress=progress, should_stop=ctx.should_stop
            )
            if insert_at >= 0 and report.added:
                order = [p.id for p in library.photos(album_id)]
                added = [p.id for p in report.added]
                rest = [pid for pid in order if pid not in set(added)]
                library.reorder(album_id, rest[:insert_at] + added + rest[insert_at:])
            return report

        handle = session.start_job(CallableWorker(job), "Importing photos", busy=True)
        handle.finished.connect(lambda report: self._on_import_done(album_id, report))
        self._track(handle)

    def relink_dialog(self) -> None:
        """Pick a folder to look for the album's missing photos in."""
        if self._session.album_id is None:
            return
        folder = QFileDialog.getExistingDirectory(
            self._session.dialog_parent, "Find moved photos in"
        )
        if folder:
            self.relink(Path(folder))

    def relink(self, folder: Path) -> WorkerHandle | None:
        """Look for the album's missing photos in ``folder`` (by content) in the background."""
        session = self._session
        album_id = session.album_id
        if album_id is None:
            return None
        library = session.library
        worker = CallableWorker(
            lambda ctx: library.relink(album_id, folder, should_stop=ctx.should_stop)
        )
        handle = session.start_job(worker, "Looking for moved photos", busy=True)
        handle.finished.connect(lambda report: self._on_relinked(album_id, report))
        self._track(handle)
        return handle

    def _track(self, handle: WorkerHandle) -> None:
        """Offer "Stop importing" while ``handle`` (an import or a relink) runs."""
        self._imports.append(handle)
        handle.ended.connect(lambda h=handle: self._ended(h))
        self.state_changed.emit()

    def _ended(self, handle: WorkerHandle) -> None:
        if handle in self._imports:
            self._imports.remove(handle)
        self.state_changed.emit()

    def has_imports(self) -> bool:
        """True from the start of an import or relink until its thread has ended."""
        return bool(self._imports)

    def is_importing(self) -> bool:
        """True while photos are being imported or looked for."""
        return any(handle.is_running() for handle in self._imports)

    def cancel_imports(self) -> None:
        """Stop the running imports and relinks after the file each one is reading; the photos
        added so far stay in the album."""
        running = [handle for handle in self._imports if handle.is_running()]
        for handle in running:
            handle.cancel()
        if running:
            self._session.show_status("Stopping the import…")

    def _after(self, album_id: int) -> None:
        self._session.album_changed.emit(album_id)
        self._session.photos_changed.emit(album_id)

    def _on_import_done(self, album_id: int, report: ImportReport) -> None:
        self._after(album_id)
        added = f"Added {counted(len(report.added), 'photo')}"
        parts = [f"Import stopped. {added}" if report.stopped else added]
        if report.duplicates:
            parts.append(f"{len(report.duplicates)} already in the album")
        if report.skipped:
            parts.append(f"{counted(len(report.skipped), 'non-image file')} skipped")
        if report.failed:
            parts.append(f"{len(report.failed)} could not be read")
        self._session.show_status("; ".join(parts) + ".")
        if report.failed and not self._session.closing:  # no message box for a closing window
            details = "\n".join(f.message for f in report.failed[:20])
            self._session.report_error(
                StorytellerError(
                    f"{counted(len(report.failed), 'file')} could not be added:\n{details}"
                ),
                action="Importing photos",
            )

    def _on_relinked(self, album_id: int, report: RelinkReport) -> None:
        self._after(album_id)
        found = f"Found {counted(len(report.relinked), 'photo')}; {len(report.still_missing)} still missing"
        if report.unreadable:  # non-fatal: those files vanished or were unreadable mid-search
            found += f"; {counted(len(report.unreadable), 'file')} in the folder could not be read"
        found += "."
        self._session.show_status(f"Search stopped. {found}" if report.stopped else found)
