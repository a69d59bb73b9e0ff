"""Thumbnails in the user cache folder, keyed by content hash and size, rebuilt when missing."""

from __future__ import annotations

from pathlib import Path

from desktop_app.errors import disk_full_error, is_disk_full
from desktop_app.fileio import atomic_open
from desktop_app.imaging import fitted_jpeg
from desktop_app.library.errors import LibraryDiskFullError, LibraryError, PhotoMissingError
from desktop_app.library.records import Photo

THUMBNAIL_SIZES = (128, 256, 512)


def thumbnail_file(thumbnails_dir: Path, sha256: str, size: int) -> Path:
    """Where the ``size``-pixel thumbnail of the content ``sha256`` lives (it may not exist)."""
    return thumbnails_dir / sha256[:2] / f"{sha256}-{size}.jpg"


def render_thumbnail(source: Path, target: Path, size: int) -> None:
    """Write a JPEG of ``source`` fitting ``size``x``size``, upright (EXIF orientation applied)."""
    data = fitted_jpeg(source, size, purpose="for its thumbnail")
    try:
        with atomic_open(target, "wb") as handle:
            handle.write(data)
    except OSError as err:
        if is_disk_full(err, target.parent):
            full = disk_full_error(
                target.parent,
                needed=len(data),
                what=f"the thumbnail of {source.name}",
                kept="the photo itself is untouched",
            )
            raise LibraryDiskFullError(str(full), target.parent, len(data)) from err
        raise LibraryError(
            f"the thumbnail of {source.name} cannot be saved in {target.parent} ({err}): "
            "check free disk space and the cache folder's permissions"
        ) from err


def thumbnail_path(thumbnails_dir: Path, photo: Photo, size: int = 256) -> Path:
    """The thumbnail of ``photo``, made now if it is not in the cache yet.

    Raises ``PhotoMissingError`` when the photo has moved and no thumbnail is cached.
    """
    target = thumbnail_file(thumbnails_dir, photo.sha256, size)
    if target.is_file():
        return target
    if not photo.path.is_file():
        raise PhotoMissingError(
            f"{photo.name} is no longer at {photo.path.parent}: relink the album to the folder "
            "it moved to"
        )
    render_thumbnail(photo.path, target, size)
    return target
