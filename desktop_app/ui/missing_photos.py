"""What to do when Generate finds photos of the album missing: find them (relink), take them out
of the album, or cancel; not a dead-end message with only OK."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtWidgets import QMessageBox, QWidget

from desktop_app.errors import StorytellerError
from desktop_app.library.records import Photo
from desktop_app.ui.session import Session

FIND = "Find moved photos…"
REMOVE = "Remove them from the album"


def offer_missing_photos(
    session: Session,
    album_id: int,
    missing: Sequence[Photo],
    message: str,
    find: Callable[[], object],
    parent: QWidget | None = None,
) -> QMessageBox:
    """Say which photos are missing and offer to find them (``find``: the relink dialog) or to
    remove them from the album (the files are not touched); non-blocking, like every dialog."""
    box = QMessageBox(QMessageBox.Icon.Warning, "Some photos are missing", message, parent=parent)
    box.setObjectName("missingPhotosDialog")
    find_button = box.addButton(FIND, QMessageBox.ButtonRole.AcceptRole)
    remove_button = box.addButton(REMOVE, QMessageBox.ButtonRole.DestructiveRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(find_button)
    ids = [photo.id for photo in missing]

    def chosen(button: object) -> None:
        if button is find_button:
            find()
        elif button is remove_button:
            _remove(session, album_id, ids)

    box.buttonClicked.connect(chosen)
    box.open()
    return box


def _remove(session: Session, album_id: int, photo_ids: Sequence[int]) -> None:
    try:
        session.library.remove_photos(album_id, list(photo_ids))
    except StorytellerError as err:
        session.report_error(err, action="Removing the missing photos")
        return
    session.photos_changed.emit(album_id)
    session.album_changed.emit(album_id)
    count = len(photo_ids)
    what = "1 missing photo" if count == 1 else f"{count} missing photos"
    session.show_status(f"Removed {what} from the album; you can press Generate now.")
