"""Captions and people for photo managers: XMP sidecars and captioned copies of a told story.

Each photo of the version gets its frame's text as ``dc:description``, the names of the
characters its table lists as ``Iptc4xmpExt:PersonInImage``, and one MWG region per character
(``desktop_app.story.xmp``). Three ways, as the user chooses:

- ``write_sidecars(stored)``: a sidecar beside each original (``photo.jpg.xmp``, or ``photo.xmp``
  with ``SidecarNaming.STEM``); an existing one is merged into, never replaced;
- ``write_sidecars(stored, dest)``: a new folder of copies (``shared_photos``: no location unless
  asked) each with its sidecar (the original's sidecar, if it has one, merged with ours);
- ``write_captioned_copies(stored, dest)``: copies with the XMP embedded, for managers that read
  only what is inside a JPEG (Lightroom Classic, Apple Photos; README lists who reads what).

Characters are written as regions of type ``Face`` with the model's box, which covers the whole
person: digiKam draws it as a face tag around the body and Immich crops the person's thumbnail
from it (README says more). Objects, background regions and landmarks get no region at all: a
``Focus`` region is not read as a person by every manager, and an object listed among the
people is worse than an object left out (their names are in the description anyway).

The originals are only read; sidecars and copies are written under a temporary name and
renamed (``fileio``).
"""

from __future__ import annotations

import enum
import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from desktop_app.app.shared_photos import SharedPhoto, shared_photo
from desktop_app.app.stored_story import FrameGeometry, StoredStory
from desktop_app.errors import StorytellerError
from desktop_app.fileio import atomic_write_bytes
from desktop_app.imaging import stored_layout, upright_to_stored
from desktop_app.story.display import StoryDisplay
from desktop_app.story.model import Character
from desktop_app.story.xmp import (
    PhotoCaption,
    PhotoRegion,
    XmpError,
    merge_caption,
    without_location,
)

FACE = "Face"


class SharingError(StorytellerError):
    """A share that cannot be written; the message says which file and what to do."""


class SidecarNaming(enum.Enum):
    """How a sidecar is named: ``photo.jpg.xmp`` (digiKam's, darktable's and Immich's first
    choice) or ``photo.xmp`` (Lightroom's and Adobe Bridge's)."""

    FULL_NAME = "photo.jpg.xmp"
    STEM = "photo.xmp"

    def sidecar_for(self, photo: Path) -> Path:
        if self is SidecarNaming.STEM:
            return photo.with_suffix(".xmp")
        return photo.with_name(photo.name + ".xmp")


@dataclass(frozen=True)
class ShareReport:
    """What a share wrote: every file, and the frames left out because there was nothing to
    say about them (no text and no one in them)."""

    written: tuple[Path, ...]
    skipped_frames: tuple[int, ...] = ()


def frame_caption(
    stored: StoredStory,
    display: StoryDisplay,
    frame: FrameGeometry,
    orientation: int,
    stored_size: tuple[int, int],
) -> PhotoCaption:
    """The XMP content of one frame's photo whose pixels are stored as ``stored_size`` under
    EXIF ``orientation``: its text, its people and their regions on the stored grid."""
    text = " ".join(shown.plain() for shown in display.frames if shown.index == frame.index).strip()
    analysis = stored.story.frame(frame.index)
    people: dict[str, None] = {}
    regions: list[PhotoRegion] = []
    width, height = stored_size
    for row in analysis.characters if analysis is not None else ():
        if not isinstance(row, Character) or not row.id:
            continue
        name = display.name(row.id)
        people.setdefault(name, None)
        on_photo = frame.box_on_photo(row.box) if row.box is not None else None
        if on_photo is None or width <= 0 or height <= 0:
            continue
        x1, y1, x2, y2 = upright_to_stored(on_photo, orientation, stored_size)
        if x2 <= x1 or y2 <= y1:
            continue
        regions.append(
            PhotoRegion(
                name=name,
                kind=FACE,
                x=(x1 + x2) / 2 / width,
                y=(y1 + y2) / 2 / height,
                w=(x2 - x1) / width,
                h=(y2 - y1) / height,
            )
        )
    return PhotoCaption(text, tuple(people), tuple(regions), stored_size)


def _captions_needed(stored: StoredStory) -> list[FrameGeometry]:
    missing = [frame for frame in stored.frames if not frame.path.is_file()]
    if missing:
        raise SharingError(
            f"{missing[0].path.name} cannot be found at {missing[0].path.parent}: relink the "
            "album to the folder it moved to, then share again"
        )
    return list(stored.frames)


def _merge(caption: PhotoCaption, existing: bytes | None, source: Path) -> bytes:
    try:
        return merge_caption(caption, existing)
    except XmpError as err:
        raise SharingError(f"{source}: {err}") from err


def _new_folder(dest: Path) -> Path:
    target = dest.expanduser().absolute()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise SharingError(f"{target} already exists: choose a new folder or empty it first")
    return target


def _shared_copies(
    frames: Sequence[FrameGeometry], keep_location: bool
) -> tuple[dict[int, SharedPhoto], dict[int, str]]:
    """The copies to share of ``frames``' photos (location left out unless ``keep_location``)
    and a file name for each, unique in the folder they go to, by frame index."""
    photos = {
        frame.index: shared_photo(frame.path, keep_location=keep_location) for frame in frames
    }
    return photos, _unique_names(photos)


def _unique_names(photos: Mapping[int, SharedPhoto]) -> dict[int, str]:
    taken: set[str] = set()
    names: dict[int, str] = {}
    for index, photo in photos.items():
        name = photo.name
        stem, dot, suffix = name.rpartition(".")
        number = 2
        while name.casefold() in taken:
            name = f"{stem} ({number}){dot}{suffix}" if dot else f"{photo.name} ({number})"
            number += 1
        taken.add(name.casefold())
        names[index] = name
    return names


def _write_folder(target: Path, files: Mapping[str, bytes]) -> tuple[Path, ...]:
    """Write ``files`` into a new folder ``target``, whole or not at all."""
    staging = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.partial"
    try:
        staging.mkdir(parents=True)
        for name, data in files.items():
            (staging / name).write_bytes(data)
        if target.exists():
            target.rmdir()  # empty, checked by _new_folder
        os.rename(staging, target)
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise SharingError(
            f"cannot write {target} ({err}): check free space and permissions"
        ) from err
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return tuple(target / name for name in files)


def write_sidecars(
    stored: StoredStory,
    dest: str | os.PathLike[str] | None = None,
    *,
    naming: SidecarNaming = SidecarNaming.FULL_NAME,
    keep_location: bool = False,
) -> ShareReport:
    """XMP sidecars for every photo of the story: beside the originals when ``dest`` is None,
    else in the new folder ``dest`` with a copy of each photo (see the module)."""
    frames = _captions_needed(stored)
    display = stored.display()
    if dest is None:
        written = []
        for frame in frames:
            orientation, size = stored_layout(frame.path)
            caption = frame_caption(stored, display, frame, orientation, size)
            sidecar = naming.sidecar_for(frame.path)
            existing = sidecar.read_bytes() if sidecar.is_file() else None
            try:
                atomic_write_bytes(sidecar, _merge(caption, existing, sidecar))
            except OSError as err:
                raise SharingError(
                    f"cannot write {sidecar} ({err}): check the folder's permissions, or share "
                    "to a new folder instead"
                ) from err
            written.append(sidecar)
        return ShareReport(tuple(written))
    target = _new_folder(Path(dest))
    photos, names = _shared_copies(frames, keep_location)
    files: dict[str, bytes] = {}
    for frame in frames:
        photo = photos[frame.index]
        caption = frame_caption(stored, display, frame, photo.orientation, photo.stored_size)
        original_sidecar = naming.sidecar_for(frame.path)
        existing = original_sidecar.read_bytes() if original_sidecar.is_file() else None
        if existing is not None and not keep_location:
            existing = without_location(existing)
        copy_path = Path(names[frame.index])
        files[copy_path.name] = photo.data
        files[naming.sidecar_for(copy_path).name] = _merge(caption, existing, original_sidecar)
    return ShareReport(_write_folder(target, files))


def write_captioned_copies(
    stored: StoredStory, dest: str | os.PathLike[str], *, keep_location: bool = False
) -> ShareReport:
    """A new folder ``dest`` of copies of the story's photos with the XMP embedded (JPEG; any
    other format is converted to JPEG). The XMP a photo already has is kept and merged into."""
    frames = _captions_needed(stored)
    target = _new_folder(Path(dest))
    display = stored.display()
    photos, names = _shared_copies(frames, keep_location)
    files: dict[str, bytes] = {}
    for frame in frames:
        photo = photos[frame.index]
        caption = frame_caption(stored, display, frame, photo.orientation, photo.stored_size)
        packet = _merge(caption, photo.embedded_xmp, frame.path)
        files[names[frame.index]] = photo.with_xmp(packet).data
    return ShareReport(_write_folder(target, files))
