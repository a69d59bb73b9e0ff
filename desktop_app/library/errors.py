"""Errors the library raises; each message says what failed and what to do about it."""

from __future__ import annotations

from pathlib import Path

from desktop_app.errors import StorytellerError


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


class PhotoUnreadableError(LibraryError):
    """A photo file cannot be read or is not an image; ``path`` names it."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path


class NotAnImageError(PhotoUnreadableError):
    """The file's content is not an image format Storyteller can read."""


class PhotoMissingError(LibraryError):
    """A photo is no longer where the library last saw it."""


class BundleError(LibraryError):
    """An export bundle cannot be written or read."""
