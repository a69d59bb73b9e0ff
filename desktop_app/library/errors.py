"""Errors the library raises; each message says what failed and what to do about it."""

from __future__ import annotations

from desktop_app.errors import StorytellerError
from desktop_app.imaging import PhotoUnreadableError


class LibraryError(StorytellerError):
    """A problem with the album library."""


class LibraryVersionError(LibraryError):
    """The database was written by a newer Storyteller, or is not a Storyteller library."""


class AlbumNotFoundError(LibraryError):
    """No album has the given name or id."""


class AlbumExistsError(LibraryError):
    """An album with that name already exists."""


class RunNotFoundError(LibraryError):
    """No story run has the given id."""


class NotAnImageError(PhotoUnreadableError):
    """The file's content is not an image format Storyteller can read."""


class PhotoMissingError(LibraryError):
    """A photo is no longer where the library last saw it."""


class BundleError(LibraryError):
    """An export bundle cannot be written or read."""


__all__ = [  # PhotoUnreadableError is the imaging module's, raised by library and engine alike
    "AlbumExistsError",
    "AlbumNotFoundError",
    "BundleError",
    "LibraryError",
    "LibraryVersionError",
    "NotAnImageError",
    "PhotoMissingError",
    "PhotoUnreadableError",
    "RunNotFoundError",
]
