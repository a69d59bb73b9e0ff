"""Item models over the library's records: albums, an album's photos, an album's story runs.

The models hold plain records (``desktop_app.library.records``) and change rows with
begin/end insert/remove/move; persisting a change is the window's job, through the library.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

from PySide6.QtCore import (
    QAbstractListModel,
    QByteArray,
    QMimeData,
    QModelIndex,
    QPersistentModelIndex,
    QSize,
    Qt,
    QUrl,
    Signal,
)
from PySide6.QtGui import QColor, QIcon, QImage, QPixmap
from PySide6.QtWidgets import QApplication, QStyle

from desktop_app.library.records import Album, Photo, StoryRun
from desktop_app.words import counted

R = TypeVar("R", Album, Photo, StoryRun)  # the records a list model shows, one per row

PHOTO_IDS_MIME = "application/x-storyteller-photo-ids"
URI_LIST_MIME = "text/uri-list"

ModelIndex = QModelIndex | QPersistentModelIndex

RecordRole = Qt.ItemDataRole.UserRole + 1
IdRole = Qt.ItemDataRole.UserRole + 2


class _RecordListModel(QAbstractListModel, Generic[R]):
    """One row per record (anything with an ``id``): the row bookkeeping the list models share.

    Subclasses say what a record shows for each role in ``_record_data``; ``RecordRole`` and
    ``IdRole`` answer the same in every model.
    """

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._records: list[R] = []

    def _reset(self, records: Sequence[R]) -> None:
        self.beginResetModel()
        self._records = list(records)
        self.endResetModel()

    def _insert_or_refresh(self, record: R, insert_at: int) -> None:
        """Refresh the row of ``record``'s id, or insert it as row ``insert_at``."""
        row = self.row_of(record.id)
        if row is None:
            self.beginInsertRows(QModelIndex(), insert_at, insert_at)
            self._records.insert(insert_at, record)
            self.endInsertRows()
            return
        self._records[row] = record
        index = self.index(row)
        self.dataChanged.emit(index, index)

    def _remove(self, record_id: int) -> bool:
        """Remove the row of ``record_id``; False when there is none."""
        row = self.row_of(record_id)
        if row is None:
            return False
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._records[row]
        self.endRemoveRows()
        return True

    def row_of(self, record_id: int) -> int | None:
        """The row showing the record with id ``record_id``, if any."""
        for row, record in enumerate(self._records):
            if record.id == record_id:
                return row
        return None

    def _record_at(self, row: int) -> R | None:
        return self._records[row] if 0 <= row < len(self._records) else None

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._records)

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        record = self._record_at(index.row()) if index.isValid() else None
        if record is None:
            return None
        if role == RecordRole:
            return record
        if role == IdRole:
            return record.id
        return self._record_data(record, index.row(), role)

    def _record_data(self, record: R, row: int, role: int) -> Any:
        raise NotImplementedError


class AlbumListModel(_RecordListModel[Album]):
    """Albums with their photo counts and how many photos are missing on disk."""

    rename_requested = Signal(int, str)  # album id, new name (the window asks the library)

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._missing: dict[int, int] = {}

    def set_albums(self, albums: Sequence[Album], missing: dict[int, int]) -> None:
        """Show a new album list with each album's count of missing photos."""
        self._missing = dict(missing)
        self._reset(albums)  # the whole list changed (start-up, library moved)

    def update_album(self, album: Album, missing: int | None = None) -> None:
        """Append ``album`` or refresh its row (and its missing-photo count)."""
        if missing is not None:
            self._missing[album.id] = missing
        self._insert_or_refresh(album, len(self._records))

    def remove_album(self, album_id: int) -> None:
        """Remove the row of ``album_id``."""
        if self._remove(album_id):
            self._missing.pop(album_id, None)

    def album_at(self, row: int) -> Album | None:
        return self._record_at(row)

    def albums(self) -> list[Album]:
        return list(self._records)

    def missing_count(self, album_id: int) -> int:
        return self._missing.get(album_id, 0)

    def _record_data(self, album: Album, row: int, role: int) -> Any:
        missing = self._missing.get(album.id, 0)
        if role == Qt.ItemDataRole.DisplayRole:
            photos = f"{album.photo_count} photo{'s' if album.photo_count != 1 else ''}"
            badge = f" · ⚠ {missing} missing" if missing else ""
            return f"{album.name}\n{photos} · {album.run_count} stor{'ies' if album.run_count != 1 else 'y'}{badge}"
        if role == Qt.ItemDataRole.EditRole:
            return album.name
        if role == Qt.ItemDataRole.ToolTipRole:
            tip = f"{album.name}: {album.photo_count} photos, {album.run_count} stories"
            if missing:
                tip += f"; {counted(missing, 'photo')} not found on disk: use Relink to find them"
            return tip
        if role == Qt.ItemDataRole.DecorationRole and missing:
            return QApplication.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return f"Album {album.name}, {album.photo_count} photos" + (
                f", {missing} missing" if missing else ""
            )
        return None

    def flags(self, index: ModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEditable

    def setData(self, index: ModelIndex, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if not index.isValid() or role != Qt.ItemDataRole.EditRole:
            return False
        name = str(value).strip()
        album = self._records[index.row()]
        if not name or name == album.name:
            return False
        self.rename_requested.emit(album.id, name)
        return True


class PhotoListModel(_RecordListModel[Photo]):
    """The photos of one album, in story order, with thumbnails; drag to reorder, drop to add."""

    order_changed = Signal(list)  # photo ids in the new order (after a drag inside the list)
    files_dropped = Signal(list, int)  # paths dropped from outside, row to insert at (-1: end)

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._thumbnails: dict[int, QIcon] = {}
        self._placeholder: QIcon | None = None
        self.icon_size = QSize(128, 96)

    def set_photos(self, photos: Sequence[Photo]) -> None:
        """Show a different album (or its reloaded photo list)."""
        keep = {photo.id for photo in photos}
        self._thumbnails = {k: v for k, v in self._thumbnails.items() if k in keep}
        self._reset(photos)

    def photos(self) -> list[Photo]:
        return list(self._records)

    def photo_at(self, row: int) -> Photo | None:
        return self._record_at(row)

    def ids(self) -> list[int]:
        return [photo.id for photo in self._records]

    def set_thumbnail(self, photo_id: int, image: QImage, device_ratio: float = 1.0) -> None:
        """Show ``image`` as the thumbnail of ``photo_id`` on a screen with ``device_ratio``
        device pixels per logical pixel (the view's ``devicePixelRatioF()``)."""
        row = self.row_of(photo_id)
        if row is None or image.isNull():
            return
        # Fitted to the icon in device pixels and tagged with the ratio: a high-DPI screen then
        # draws every pixel instead of enlarging an icon made for a 1x screen.
        device_size = self.icon_size * device_ratio
        if image.width() > device_size.width() or image.height() > device_size.height():
            image = image.scaled(
                device_size,
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        pixmap = QPixmap.fromImage(image)
        pixmap.setDevicePixelRatio(device_ratio)
        self._thumbnails[photo_id] = QIcon(pixmap)
        index = self.index(row)
        self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])

    def _loading_icon(self) -> QIcon:
        """A grey card the size of a thumbnail, shown until the thumbnail is loaded."""
        if self._placeholder is None:
            pixmap = QPixmap(self.icon_size)
            pixmap.fill(QColor("#d9d9d9"))
            self._placeholder = QIcon(pixmap)
        return self._placeholder

    def has_thumbnail(self, photo_id: int) -> bool:
        return photo_id in self._thumbnails

    def move_photos(self, photo_ids: Sequence[int], before_row: int) -> bool:
        """Move ``photo_ids`` (keeping their relative order) to just before ``before_row``."""
        moving = [pid for pid in self.ids() if pid in set(photo_ids)]
        if not moving:
            return False
        rest = [pid for pid in self.ids() if pid not in set(moving)]
        before_row = len(self._records) if before_row < 0 else before_row
        insert_at = len([pid for pid in self.ids()[:before_row] if pid not in set(moving)])
        new_order = rest[:insert_at] + moving + rest[insert_at:]
        if new_order == self.ids():
            return False
        self.apply_order(new_order)
        self.order_changed.emit(new_order)
        return True

    def apply_order(self, new_order: Sequence[int]) -> None:
        """Reorder the rows to ``new_order`` with one row move at a time (views keep selection)."""
        for target, photo_id in enumerate(new_order):
            source = self.row_of(photo_id)
            if source is None or source == target:
                continue
            # beginMoveRows wants the destination row as counted before the move.
            if not self.beginMoveRows(QModelIndex(), source, source, QModelIndex(), target):
                continue
            photo = self._records.pop(source)
            self._records.insert(target, photo)
            self.endMoveRows()

    def _record_data(self, photo: Photo, row: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            date = (photo.captured_at or "")[:10]
            label = f"{row + 1}. {photo.path.name}"
            if photo.missing:
                return f"{label}\n⚠ missing"
            return f"{label}\n{date}" if date else label
        if role == Qt.ItemDataRole.DecorationRole:
            if photo.id in self._thumbnails:
                return self._thumbnails[photo.id]
            if photo.missing:
                return QApplication.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
            return self._loading_icon()
        if role == Qt.ItemDataRole.ToolTipRole:
            text = f"{photo.path}\n{photo.width}×{photo.height}"
            if photo.captured_at:
                text += f"\ntaken {photo.captured_at}"
            if photo.missing:
                text += "\nThis file is missing: move it back or use Relink."
            return text
        if role == Qt.ItemDataRole.ForegroundRole and photo.missing:
            return QColor("#b00020")
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return f"Photo {row + 1}: {photo.path.name}"
        return None

    def flags(self, index: ModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.ItemIsDropEnabled
        # Drop-enabled items: dropping onto a photo inserts before it.
        return (
            Qt.ItemFlag.ItemIsEnabled
            | Qt.ItemFlag.ItemIsSelectable
            | Qt.ItemFlag.ItemIsDragEnabled
            | Qt.ItemFlag.ItemIsDropEnabled
        )

    def supportedDropActions(self) -> Qt.DropAction:
        return Qt.DropAction.MoveAction | Qt.DropAction.CopyAction

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.MoveAction

    def mimeTypes(self) -> list[str]:
        return [PHOTO_IDS_MIME, URI_LIST_MIME]

    def mimeData(self, indexes: Sequence[QModelIndex]) -> QMimeData:
        data = QMimeData()
        ids = [self._records[index.row()].id for index in sorted(indexes, key=lambda i: i.row())]
        data.setData(PHOTO_IDS_MIME, QByteArray(json.dumps(ids).encode()))
        data.setUrls([QUrl.fromLocalFile(str(self._records[i.row()].path)) for i in indexes])
        return data

    def canDropMimeData(
        self,
        data: QMimeData,
        action: Qt.DropAction,
        row: int,
        column: int,
        parent: ModelIndex,
    ) -> bool:
        return data.hasFormat(PHOTO_IDS_MIME) or any(url.isLocalFile() for url in data.urls())

    def dropMimeData(
        self,
        data: QMimeData,
        action: Qt.DropAction,
        row: int,
        column: int,
        parent: ModelIndex,
    ) -> bool:
        if action == Qt.DropAction.IgnoreAction:
            return True
        if parent.isValid():  # dropped onto a photo: insert before it
            row = parent.row()
        if data.hasFormat(PHOTO_IDS_MIME):
            ids = json.loads(bytes(data.data(PHOTO_IDS_MIME).data()).decode())
            self.move_photos([int(i) for i in ids], row)
            # False: the view must not remove the dragged rows; they were moved, not copied.
            return False
        paths = [Path(url.toLocalFile()) for url in data.urls() if url.isLocalFile()]
        if not paths:
            return False
        self.files_dropped.emit(paths, row)
        return True


class RunListModel(_RecordListModel[StoryRun]):
    """The story runs (versions) of one album, newest first."""

    def set_runs(self, runs: Sequence[StoryRun]) -> None:
        """Show a new list of versions (newest first)."""
        self._reset(sorted(runs, key=lambda run: run.id, reverse=True))

    def upsert(self, run: StoryRun) -> None:
        """Insert ``run`` at the top or refresh its row."""
        self._insert_or_refresh(run, 0)

    def remove(self, run_id: int) -> None:
        """Remove the row of ``run_id``."""
        self._remove(run_id)

    def run_at(self, row: int) -> StoryRun | None:
        return self._record_at(row)

    def runs(self) -> list[StoryRun]:
        return list(self._records)

    def _record_data(self, run: StoryRun, row: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return describe_run(run)
        if role == Qt.ItemDataRole.ToolTipRole:
            params = ", ".join(f"{k}={v}" for k, v in dict(run.parameters).items())
            return f"{run.backend} · {params}" + (f"\n{run.error}" if run.error else "")
        if role == Qt.ItemDataRole.ForegroundRole:
            status = getattr(run.status, "value", run.status)
            if status == "failed":
                return QColor("#b00020")
            if status in ("stopped", "interrupted"):
                return QColor("#8a5a00")
            return None
        return None


def describe_run(run: StoryRun) -> str:
    """A version in two lines: number and status; when, preset and seed."""
    status = run.status.value
    when = (run.created or "")[:16].replace("T", " ")
    asked = run.asked  # GUI- and CLI-told versions alike, whichever shape they were stored in
    details = [when]
    if asked.preset:
        details.append(asked.preset)
    if asked.seed is not None:
        details.append(f"seed {asked.seed}")
    errors = sum(
        1 for issue in (run.story or {}).get("issues", ()) if issue.get("severity") == "error"
    )
    if errors:  # "complete" alone would hide a version the checks found broken
        status += f" · {errors} error{'s' if errors != 1 else ''}"
    return f"#{run.id} · {status}\n" + " · ".join(bit for bit in details if bit)
