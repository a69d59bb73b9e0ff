"""Albums, photos and story runs in SQLite; thumbnails. No Qt.

``Library.open()`` is the entry point; see ``store.Library`` for what it does.
"""

from __future__ import annotations

from desktop_app.library.errors import (
    AlbumExistsError,
    AlbumNotFoundError,
    BundleError,
    LibraryDiskFullError,
    LibraryError,
    LibraryVersionError,
    NotAnImageError,
    PhotoMissingError,
    PhotoUnreadableError,
    RunNotFoundError,
    RunNotStoredError,
)
from desktop_app.library.records import (
    Album,
    DuplicatePhoto,
    FailedFile,
    ImportReport,
    Photo,
    RelinkedPhoto,
    RelinkReport,
    RunOutcome,
    RunParameters,
    RunPhoto,
    RunSpec,
    RunStatus,
    SeenPhoto,
    StoryRun,
)
from desktop_app.library.store import Library

__all__ = [
    "Album",
    "AlbumExistsError",
    "AlbumNotFoundError",
    "BundleError",
    "DuplicatePhoto",
    "FailedFile",
    "ImportReport",
    "Library",
    "LibraryDiskFullError",
    "LibraryError",
    "LibraryVersionError",
    "NotAnImageError",
    "Photo",
    "PhotoMissingError",
    "PhotoUnreadableError",
    "RelinkReport",
    "RelinkedPhoto",
    "RunNotFoundError",
    "RunNotStoredError",
    "RunOutcome",
    "RunParameters",
    "RunPhoto",
    "RunSpec",
    "RunStatus",
    "SeenPhoto",
    "StoryRun",
]
