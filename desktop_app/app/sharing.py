"""Sharing a story with other people: one table of formats, one way to write each.

``storyteller album share NAME DEST --as FORMAT`` and the GUI's *Export* menu both go through
``share_story``: it picks the version (default: the latest complete one), gathers what every
writer needs (``ShareSource``: the album's name, its photos' date range, the story under the
user's names) and calls the format's writer from ``SHARE_FORMATS``. A format is a
``ShareFormat``: its name, its menu label, whether DEST is a file (with its suffix) or a folder,
and its writer. Formats whose writer needs Qt (PDF) are added to the table by the GUI layer
(``desktop_app.ui.exporting`` registers them when imported); ``SHARE_NAMES`` lists every
format in the order menus and ``--as`` show them, whoever writes it.

A file is written to a temporary name and renamed (``desktop_app.fileio``): DEST appears whole
or not at all.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from desktop_app.app.captions import (
    ShareReport,
    SidecarNaming,
    write_captioned_copies,
    write_sidecars,
)
from desktop_app.app.exports import choose_run, render_stored
from desktop_app.app.stored_story import StoredStory
from desktop_app.errors import StorytellerError
from desktop_app.fileio import atomic_write_text
from desktop_app.library.records import Album, StoryRun
from desktop_app.library.store import AlbumRef, Library

# Every share format, in menu order; each must be in SHARE_FORMATS once its writer's layer is
# imported (PDF: desktop_app.ui.exporting).
SHARE_NAMES: tuple[str, ...] = (
    "slideshow",
    "html",
    "markdown",
    "pdf",
    "sidecars",
    "captioned-copies",
)


@dataclass(frozen=True)
class ShareSource:
    """What a share writer is given: the album's name (the title), its photos' date range as
    text (may be empty), the chosen version's story under the user's names and its run (the
    library's record: photos with their ids, hashes and paths)."""

    title: str
    dates: str
    story: StoredStory
    run: StoryRun | None = None
    keep_location: bool = False  # copies of photos keep their GPS and place metadata
    sidecar_naming: SidecarNaming = SidecarNaming.FULL_NAME


# A writer: the source and the destination (a file, or a folder for ``into_folder`` formats);
# returns what it wrote (the file, or the folder).
ShareWriter = Callable[[ShareSource, Path], Path]


@dataclass(frozen=True)
class ShareFormat:
    """One way to share a story: ``name`` (``--as``), ``label`` (the menu's words), ``suffix``
    of the file DEST is (``into_folder``: DEST is a folder, and ``suffix`` is empty)."""

    name: str
    label: str
    suffix: str
    write: ShareWriter
    into_folder: bool = False
    file_filter: str = ""  # the file dialog's filter, e.g. "Slideshow (*.html)"


SHARE_FORMATS: dict[str, ShareFormat] = {}


def register_share_format(share_format: ShareFormat) -> ShareFormat:
    """Add (or replace) a format in ``SHARE_FORMATS``; its name must be in ``SHARE_NAMES``."""
    if share_format.name not in SHARE_NAMES:
        raise ValueError(f"{share_format.name!r} is not in SHARE_NAMES: add it there first")
    SHARE_FORMATS[share_format.name] = share_format
    return share_format


def _text_writer(kind: str) -> ShareWriter:
    def write(source: ShareSource, dest: Path) -> Path:
        text = render_stored(kind, source.story, title=source.title, dates=source.dates)
        try:
            atomic_write_text(dest, text)
        except OSError as err:
            raise StorytellerError(
                f"{dest} cannot be written ({err.strerror or err}): choose another folder"
            ) from err
        return dest

    return write


register_share_format(
    ShareFormat(
        "slideshow",
        "Slideshow",
        ".html",
        _text_writer("slideshow"),
        file_filter="Slideshow, one web page (*.html)",
    )
)
register_share_format(
    ShareFormat("html", "HTML", ".html", _text_writer("html"), file_filter="Web page (*.html)")
)
register_share_format(
    ShareFormat(
        "markdown", "Markdown", ".md", _text_writer("markdown"), file_filter="Markdown (*.md)"
    )
)


def _sidecars(source: ShareSource, dest: Path) -> Path:
    write_sidecars(
        source.story, dest, naming=source.sidecar_naming, keep_location=source.keep_location
    )
    return dest


def _captioned_copies(source: ShareSource, dest: Path) -> Path:
    write_captioned_copies(source.story, dest, keep_location=source.keep_location)
    return dest


# For photo managers (app.captions): a new folder of copies with XMP sidecars, or of copies
# with the XMP inside. Sidecars beside the originals are ``share_beside_originals``.
register_share_format(
    ShareFormat("sidecars", "Photos with XMP sidecars", "", _sidecars, into_folder=True)
)
register_share_format(
    ShareFormat(
        "captioned-copies", "Captioned copies (XMP inside)", "", _captioned_copies, into_folder=True
    )
)


def share_format(name: str) -> ShareFormat:
    """The format called ``name``, or a message that says which exist."""
    try:
        return SHARE_FORMATS[name]
    except KeyError:
        known = ", ".join(n for n in SHARE_NAMES if n in SHARE_FORMATS)
        raise StorytellerError(f"cannot share as {name!r}: use one of {known}") from None


def date_range_text(captured: Iterable[str | None]) -> str:
    """The dates the photos were taken (EXIF, ISO 8601) as one line: "14 May 2024",
    "14–16 May 2024", "30 May – 2 June 2024", "28 December 2023 – 3 January 2024"; empty
    when no photo has a date."""
    days = sorted(
        {date.fromisoformat(value[:10]) for value in captured if value and len(value) >= 10}
    )
    if not days:
        return ""
    first, last = days[0], days[-1]

    def day(d: date, month: bool = True, year: bool = True) -> str:
        text = str(d.day)
        if month:
            text += d.strftime(" %B")
        return text + (f" {d.year}" if year else "")

    if first == last:
        return day(first)
    if first.year != last.year:
        return f"{day(first)} – {day(last)}"
    if first.month != last.month:
        return f"{day(first, year=False)} – {day(last)}"
    return f"{first.day}–{day(last)}"


def share_source(library: Library, album: Album, run: StoryRun) -> ShareSource:
    """What the writers need of ``run``: the album's name, the date range of the run's
    photos still in the album, the story under the user's names."""
    by_id = {photo.id: photo for photo in library.photos(album)}
    captured = [
        by_id[photo.photo_id].captured_at for photo in run.photos if photo.photo_id in by_id
    ]
    story = StoredStory.of_run(run, library.display_names(run.id))
    return ShareSource(album.name, date_range_text(captured), story, run)


@dataclass(frozen=True)
class Shared:
    """What ``share_story`` wrote: ``path`` and its size in bytes (a folder: its files')."""

    path: Path
    size: int
    run_id: int


def size_text(size: int) -> str:
    """A file's size as people read it: "840 kB", "3.2 MB"."""
    if size >= 1 << 20:
        return f"{size / (1 << 20):.1f} MB"
    return f"{size / 1024:.0f} kB"


def _size_of(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def share_story(
    library: Library,
    ref: AlbumRef,
    dest: str | os.PathLike[str],
    kind: str,
    *,
    run_id: int | None = None,
    overwrite: bool = False,
    keep_location: bool = False,
    sidecar_naming: SidecarNaming = SidecarNaming.FULL_NAME,
) -> Shared:
    """Write a version of the album (``run_id``, default: the latest complete one) to
    ``dest`` as ``kind`` (a name in ``SHARE_FORMATS``).

    A DEST file that exists is replaced only with ``overwrite`` (the GUI's save dialog has
    asked); otherwise the caller is told to choose another name. Copies of photos (sidecars,
    captioned copies) keep their location metadata only with ``keep_location``.
    """
    chosen = share_format(kind)
    album = library.album(ref)
    run = choose_run(library, album, run_id)
    target = Path(dest).expanduser().absolute()
    if not chosen.into_folder:
        if target.is_dir():
            raise StorytellerError(
                f"{target} is a folder: give a file name, e.g. {target / (album.name + chosen.suffix)}"
            )
        if target.exists() and not overwrite:
            raise StorytellerError(f"{target} already exists: choose a new name or remove it first")
        target.parent.mkdir(parents=True, exist_ok=True)
    source = replace(
        share_source(library, album, run),
        keep_location=keep_location,
        sidecar_naming=sidecar_naming,
    )
    written = chosen.write(source, target)
    return Shared(written, _size_of(written), run.id)


def share_beside_originals(
    library: Library,
    ref: AlbumRef,
    *,
    run_id: int | None = None,
    naming: SidecarNaming = SidecarNaming.FULL_NAME,
) -> ShareReport:
    """XMP sidecars beside the original photos of a version (default: the latest complete
    one); an existing sidecar is merged into, never replaced (``app.captions``)."""
    album = library.album(ref)
    run = choose_run(library, album, run_id)
    return write_sidecars(share_source(library, album, run).story, None, naming=naming)
