"""Errors the library raises; each message says what failed and what to do about it."""

from __future__ import annotations

from pathlib import Path

from desktop_app.errors import DiskFullError, StorytellerError
from desktop_app.imaging import PhotoUnreadableError


class LibraryError(StorytellerError):
    """A problem with the album library."""


class LibraryDiskFullError(LibraryError, DiskFullError):
    """The library's disk is full: nothing in the library is damaged (never say it is)."""


class RunNotStoredError(LibraryDiskFullError):
    """A run ended while the library's disk was full: its text is kept in ``saved_to`` (a file
    the library's recovery brings back at its next start), or only in ``raw_output`` when no
    file could be written either (the caller then prints it)."""

    def __init__(self, message: str, folder: Path, saved_to: Path | None, raw_output: str) -> None:
        super().__init__(message, folder)
        self.saved_to = saved_to
        self.raw_output = raw_output


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
    "LibraryDiskFullError",
    "LibraryError",
    "LibraryVersionError",
    "NotAnImageError",
    "PhotoMissingError",
    "PhotoUnreadableError",
    "RunNotFoundError",
    "RunNotStoredError",
]
