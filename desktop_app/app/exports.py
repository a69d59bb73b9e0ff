"""Exports: a story in any format (one dispatcher, one photo embedder), and album bundles.

``render_export`` turns a story into one of ``EXPORT_FORMATS``; ``photo_data_uri`` is the one way
a photo is embedded in a page. A bundle is an album with one story as a folder or a zip, and
can be imported back; it holds ``story.html`` (one self-contained page, photos embedded as data URIs),
``story.md``, ``story.json`` (the story JSON contract), the photos under ``photos/``, and
``bundle.json``: what importing needs (album, photo hashes and order, the run with its raw output,
parameters, model, timings and the user's display names).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from desktop_app.app.album_cast import refresh_cast
from desktop_app.app.shared_photos import shared_photo
from desktop_app.app.stored_story import StoredStory, box_on_photo
from desktop_app.errors import disk_full_error, is_disk_full, low_space_warning
from desktop_app.fileio import atomic_open, sha256_file
from desktop_app.imaging import PhotoUnreadableError, fitted_jpeg
from desktop_app.library.errors import BundleError, LibraryError
from desktop_app.library.records import Album, RunPhoto, RunStatus, StoryRun
from desktop_app.library.store import AlbumRef, Library
from desktop_app.story.display import StoryDisplay, display_story
from desktop_app.story.model import Issue, Story
from desktop_app.story.render import (
    PhotoBox,
    story_to_dict,
    write_html,
    write_markdown,
    write_text,
)
from desktop_app.story.slideshow import write_slideshow

EXPORT_FORMATS = ("html", "markdown", "json", "text", "slideshow")
# formats that embed the photos and draw their boxes
PICTURED_FORMATS = frozenset({"html", "slideshow"})
BUNDLE_FORMAT = "storyteller-album-bundle"
# 2: no local paths, photos without location, the album's cast (``cast``); 1 still imports.
BUNDLE_VERSION = 2
MANIFEST_NAME = "bundle.json"
PHOTOS_FOLDER = "photos"
EMBEDDED_MAX_SIDE = 1600  # embedded page images: sharp on screen, a fraction of the originals
_UNSAFE_NAME = re.compile(r"[^\w .()+-]+")


def render_export(
    kind: str,
    story: Story,
    issues: Sequence[Issue],
    *,
    names: Mapping[str, str] | None = None,
    images: Mapping[int, str] | None = None,
    boxes: Mapping[int, Mapping[str, PhotoBox]] | None = None,
    title: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """The text of ``story`` as ``kind`` (one of ``EXPORT_FORMATS``).

    ``images`` (frame -> ``src``) and ``boxes`` (``photo_boxes``) are shown in HTML; ``extra``
    adds top-level keys to the JSON (the JSON also carries ``display_names`` when the user
    renamed anyone).
    """
    display = display_story(story, issues, names)
    return write_export(kind, display, images=images, boxes=boxes, title=title, extra=extra)


def write_export(
    kind: str,
    display: StoryDisplay,
    *,
    images: Mapping[int, str] | None = None,
    boxes: Mapping[int, Mapping[str, PhotoBox]] | None = None,
    title: str | None = None,
    extra: Mapping[str, Any] | None = None,
    dates: str = "",
) -> str:
    """``display`` (the one display model of a story) written as ``kind``; ``dates`` (the
    photos' date range) is shown on a slideshow's title slide."""
    if kind == "slideshow":
        return write_slideshow(
            display, title=title or "Story", dates=dates, images=images, boxes=boxes
        )
    if kind == "html":
        return write_html(display, images=images, boxes=boxes, title=title)
    if kind == "markdown":
        return write_markdown(display, title=title)
    if kind == "text":
        return write_text(display)
    if kind == "json":
        data: dict[str, Any] = story_to_dict(display.story, display.issues)
        if display.names:
            data["display_names"] = dict(display.names)
        data.update(extra or {})
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    raise ValueError(f"unknown export format {kind!r}: use one of {', '.join(EXPORT_FORMATS)}")


def photo_data_uri(path: Path, max_side: int = EMBEDDED_MAX_SIDE) -> str:
    """The photo as a JPEG ``data:`` URI: upright, at most ``max_side`` pixels.

    Raises ``PhotoUnreadableError`` naming the file when it cannot be read.
    """
    jpeg = fitted_jpeg(path, max_side, purpose="for the story page")
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def embedded_photos(stored: StoredStory, *, skip_unreadable: bool = True) -> dict[int, str]:
    """Frame -> data URI of its photo; a photo that moved or cannot be read is left out
    (the page shows no picture for it) unless ``skip_unreadable`` is False."""
    images = {}
    for frame in stored.frames:
        try:
            images[frame.index] = photo_data_uri(frame.path)
        except PhotoUnreadableError:
            if not skip_unreadable:
                raise
    return images


def photo_boxes(stored: StoredStory) -> dict[int, dict[str, PhotoBox]]:
    """Frame -> each entity's box on that frame's upright photo, as fractions of the photo
    (what the HTML page draws over the embedded photo, which keeps the photo's proportions).

    Mapped as the story view maps them (``stored_story.box_on_photo``; a run that did not
    record the prepared size is taken to have seen the photo as it is); a frame whose photo
    size was not recorded, and a box of no area, are left out.
    """
    story = stored.story
    out: dict[int, dict[str, PhotoBox]] = {}
    for frame in stored.frames:
        if frame.original_size is None:
            continue
        width, height = frame.original_size
        prepared = frame.prepared_size or frame.original_size
        on_photo: dict[str, PhotoBox] = {}
        for entity_id in sorted(story.defined_ids()):
            box = story.boxes_for(entity_id).get(frame.index)
            if box is None:
                continue
            x1, y1, x2, y2 = box_on_photo(box, prepared, frame.original_size)
            if x2 > x1 and y2 > y1:
                on_photo[entity_id] = (x1 / width, y1 / height, x2 / width, y2 / height)
        out[frame.index] = on_photo
    return out


def render_stored(
    kind: str,
    stored: StoredStory,
    *,
    title: str | None = None,
    extra: Mapping[str, Any] | None = None,
    dates: str = "",
) -> str:
    """``render_export`` of a told story under its names; in HTML and the slideshow its photos
    are embedded with each entity's box to show over them."""
    pictured = kind in PICTURED_FORMATS
    images = embedded_photos(stored) if pictured else None
    boxes = photo_boxes(stored) if pictured else None
    return write_export(
        kind, stored.display(), images=images, boxes=boxes, title=title, extra=extra, dates=dates
    )


@dataclass(frozen=True)
class ImportedBundle:
    album: Album
    run_id: int | None
    photos_folder: Path


def choose_run(library: Library, album: Album, run_id: int | None) -> StoryRun:
    if run_id is not None:
        run = library.run(run_id)
        if run.album_id != album.id:
            raise BundleError(f"story {run_id} does not belong to album {album.name!r}")
        if run.status is RunStatus.RUNNING:
            raise BundleError(f"story {run_id} is still being written: export it when it ends")
        return run
    runs = library.runs(album)
    complete = [run for run in runs if run.status is RunStatus.COMPLETE]
    with_text = [
        run for run in runs if run.status is not RunStatus.RUNNING and run.raw_output.strip()
    ]
    if complete:
        return complete[-1]
    if with_text:
        return with_text[-1]
    raise BundleError(f"album {album.name!r} has no story yet: tell one before exporting it")


def _photo_entry_name(index: int, path: Path) -> str:
    safe = _UNSAFE_NAME.sub("_", path.name).strip() or "photo"
    return f"{PHOTOS_FOLDER}/{index:03d} {safe}"


def _cast_for_bundle(
    library: Library, album: Album, run: StoryRun, new_hashes: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The album's cast as the bundle carries it: each member's name, kind and boxes (on the
    photos the bundle holds, by their hash in the bundle), the entity it was named as in the
    exported version, and the entities of that version its name was matched to."""
    matches = library.cast_matches(run.id)
    cast = []
    for member in refresh_cast(library, album):
        cast.append(
            {
                "name": member.name,
                "kind": member.kind,
                "boxes": {
                    new_hashes[sha]: list(box)
                    for sha, box in member.boxes.items()
                    if sha in new_hashes
                },
                "named_as": member.entity_id if member.run_id == run.id else None,
                "matched": [
                    {"entity": m.entity_id, "mean_iou": m.mean_iou, "undone": m.undone}
                    for m in matches
                    if m.cast_id == member.id
                ],
            }
        )
    return cast


def _bundle_contents(
    library: Library, album: Album, run: StoryRun, *, keep_location: bool = False
) -> tuple[dict[str, str], dict[str, bytes]]:
    """The bundle's text files (name -> text) and photos (name -> bytes).

    Nothing in it says where the photos were on this machine (no paths, only file names), and
    the photos carry no location unless ``keep_location`` (``shared_photos``).
    """
    missing = [photo for photo in run.photos if not photo.path.is_file()]
    if missing:
        raise BundleError(
            f"{missing[0].path.name} (and {len(missing) - 1} more) cannot be found: relink "
            "the album to the folder the photos moved to, then export again"
            if len(missing) > 1
            else f"{missing[0].path.name} cannot be found at {missing[0].path.parent}: relink "
            "the album to the folder it moved to, then export again"
        )
    names = library.display_names(run.id)
    stored = StoredStory.of_run(run, names)
    story, issues = stored.story, stored.issues
    images = embedded_photos(stored, skip_unreadable=False)
    shared = [shared_photo(photo.path, keep_location=keep_location) for photo in run.photos]
    entries = [
        _photo_entry_name(photo.index, Path(copy.name))
        for photo, copy in zip(run.photos, shared, strict=True)
    ]
    new_hashes = {
        photo.sha256: hashlib.sha256(copy.data).hexdigest()
        for photo, copy in zip(run.photos, shared, strict=True)
    }
    manifest = {
        "format": BUNDLE_FORMAT,
        "version": BUNDLE_VERSION,
        "album": {"name": album.name, "notes": album.notes, "created": album.created},
        "photos": [
            {
                "file": entry,
                "sha256": new_hashes[photo.sha256],
                "index": photo.index,
                "original_name": photo.path.name,
            }
            for entry, photo in zip(entries, run.photos, strict=True)
        ],
        "run": {
            "status": run.status.value,
            "created": run.created,
            "finished": run.finished,
            "photos": [
                {**photo.to_dict(), "path": entry, "sha256": new_hashes[photo.sha256]}
                for entry, photo in zip(entries, run.photos, strict=True)
            ],
            "parameters": dict(run.parameters),
            "backend": run.backend,
            "model": dict(run.model),
            "timings": dict(run.timings),
            "raw_output": run.raw_output,
            "error": run.error,
            "display_names": names,
        },
        "cast": _cast_for_bundle(library, album, run, new_hashes),
    }
    texts = {
        MANIFEST_NAME: json.dumps(manifest, ensure_ascii=False, indent=2),
        "story.json": json.dumps(story_to_dict(story, issues), ensure_ascii=False, indent=2),
        "story.md": render_export("markdown", story, issues, names=names),
        "story.html": render_export(
            "html",
            story,
            issues,
            names=names,
            images=images,
            boxes=photo_boxes(stored),
            title=album.name,
        ),
    }
    photo_files = {entry: copy.data for entry, copy in zip(entries, shared, strict=True)}
    return texts, photo_files


def _cannot_write_bundle(target: Path, err: OSError, needed: int) -> BundleError:
    """Why ``target`` could not be written: a full disk said as such (how much the export
    needs), anything else with its reason. Nothing half-written is left either way."""
    if is_disk_full(err, target.parent):
        full = disk_full_error(
            target.parent,
            needed=needed,
            what=f"the export {target.name}",
            kept="nothing was lost: the album and its stories are unchanged",
            then="export again, or choose another folder",
        )
        return BundleError(str(full))
    return BundleError(f"cannot write {target} ({err}): check free space and permissions")


def export_album(
    library: Library,
    ref: AlbumRef,
    dest: str | os.PathLike[str],
    *,
    run_id: int | None = None,
    warn: Callable[[str], None] | None = None,
    keep_location: bool = False,
) -> Path:
    """Write the album and one of its stories to ``dest``: a zip if it ends in ``.zip``, else a
    new folder. Default story: the latest complete one (else the latest with any text). The
    photos' GPS and other location metadata are left out unless ``keep_location``.

    Written under a temporary name and renamed at the end: ``dest`` appears whole or not at all.
    ``warn`` hears, before the first byte, that the destination's disk has less than twice the
    export's size free.
    """
    album = library.album(ref)
    run = choose_run(library, album, run_id)
    target = Path(dest).expanduser().absolute()
    if target.exists():
        raise BundleError(f"{target} already exists: choose a new name or remove it first")
    texts, photo_files = _bundle_contents(library, album, run, keep_location=keep_location)
    needed = sum(len(text.encode("utf-8")) for text in texts.values()) + sum(
        len(data) for data in photo_files.values()
    )
    warning = low_space_warning(target.parent, needed, what="the export")
    if warning and warn is not None:
        warn(warning)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix.lower() == ".zip":
        try:
            with atomic_open(target, "wb") as handle, zipfile.ZipFile(handle, "w") as archive:
                for name, text in texts.items():
                    archive.writestr(name, text, compress_type=zipfile.ZIP_DEFLATED)
                for name, data in photo_files.items():
                    # Photos are already compressed: storing them is as small and much faster.
                    archive.writestr(name, data, compress_type=zipfile.ZIP_STORED)
        except OSError as err:
            raise _cannot_write_bundle(target, err, needed) from err
        return target
    staging = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.partial"
    try:
        (staging / PHOTOS_FOLDER).mkdir(parents=True)
        for name, text in texts.items():
            (staging / name).write_text(text, encoding="utf-8")
        for name, data in photo_files.items():
            (staging / name).write_bytes(data)
        os.rename(staging, target)
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise _cannot_write_bundle(target, err, needed) from err
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _read_manifest(text: str, source: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(text)
    except ValueError as err:
        raise BundleError(f"{source.name} has a damaged {MANIFEST_NAME} ({err})") from err
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{source.name} is not a Storyteller album export")
    if int(manifest.get("version", 0)) > BUNDLE_VERSION:
        raise BundleError(f"{source.name} was exported by a newer Storyteller: update Storyteller")
    return manifest


def _safe_member(name: object, source: Path) -> str:
    """A bundle-relative photo path that cannot escape the folder it is extracted into."""
    path = PurePosixPath(str(name))
    if (
        not isinstance(name, str)
        or path.is_absolute()
        or ".." in path.parts
        or len(path.parts) != 2
        or path.parts[0] != PHOTOS_FOLDER
    ):
        raise BundleError(f"{source.name} lists a photo outside its photos folder: {name!r}")
    return path.parts[1]


def _unique_album_name(library: Library, wanted: str) -> str:
    taken = {album.name.casefold() for album in library.albums()}
    if wanted.casefold() not in taken:
        return wanted
    for number in range(2, 10_000):
        candidate = f"{wanted} ({number})"
        if candidate.casefold() not in taken:
            return candidate
    raise BundleError(f"too many albums named {wanted!r}: name the imported album yourself")


def _folder_slug(name: str) -> str:
    return _UNSAFE_NAME.sub("_", name).strip(" ._") or "album"


def import_bundle(
    library: Library, source: str | os.PathLike[str], *, name: str | None = None
) -> ImportedBundle:
    """Create an album (and its story) from an export folder or zip.

    The photos are copied into a folder under the library's data folder (``imported/``) and
    checked against their hashes; the album is named as exported, or ``name``, with a number
    added if that name is taken.
    """
    bundle = Path(source).expanduser().absolute()
    imported_root = library.root / "imported"
    imported_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".import-", dir=imported_root))
    try:
        if bundle.is_dir():
            manifest_file = bundle / MANIFEST_NAME
            if not manifest_file.is_file():
                raise BundleError(
                    f"{bundle} is not a Storyteller album export (no {MANIFEST_NAME})"
                )
            manifest = _read_manifest(manifest_file.read_text(encoding="utf-8"), bundle)
            entries = [(_safe_member(p.get("file"), bundle), p) for p in manifest["photos"]]
            for file_name, _ in entries:
                shutil.copy2(bundle / PHOTOS_FOLDER / file_name, staging / file_name)
        elif zipfile.is_zipfile(bundle):
            with zipfile.ZipFile(bundle) as archive:
                try:
                    manifest_text = archive.read(MANIFEST_NAME).decode("utf-8")
                except KeyError:
                    raise BundleError(f"{bundle.name} is not a Storyteller album export") from None
                manifest = _read_manifest(manifest_text, bundle)
                entries = [(_safe_member(p.get("file"), bundle), p) for p in manifest["photos"]]
                for file_name, _ in entries:
                    with (
                        archive.open(f"{PHOTOS_FOLDER}/{file_name}") as src,
                        open(staging / file_name, "wb") as dst,
                    ):
                        shutil.copyfileobj(src, dst)
        else:
            raise BundleError(f"{bundle} is neither an export folder nor a zip: check the path")
        for file_name, entry in entries:
            if sha256_file(staging / file_name) != entry.get("sha256"):
                raise BundleError(f"{file_name} in {bundle.name} is damaged (its hash differs)")
        album_name = _unique_album_name(library, name or manifest["album"]["name"])
        final_folder = imported_root / f"{_folder_slug(album_name)}-{uuid.uuid4().hex[:8]}"
        os.rename(staging, final_folder)
    except (OSError, KeyError, TypeError, zipfile.BadZipFile) as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise BundleError(f"{bundle.name} cannot be imported ({err}): export it again") from err
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    album: Album | None = None
    try:
        album = library.create_album(album_name, manifest["album"].get("notes", ""))
        photo_paths = [final_folder / file_name for file_name, _ in entries]
        report = library.add_photos(album, photo_paths)
        if report.failed:
            raise BundleError(report.failed[0].message)
        run_id = _import_run(library, album, manifest.get("run"), entries)
        _import_cast(library, album, run_id, manifest.get("cast"))
    except BaseException as err:
        # Late: the album half exists. It goes, with its copied photos, whatever went wrong.
        if album is not None:
            with contextlib.suppress(LibraryError):
                library.delete_album(album)
        shutil.rmtree(final_folder, ignore_errors=True)
        if isinstance(err, (KeyError, TypeError, ValueError)):  # a bundle.json that lies
            raise BundleError(
                f"{bundle.name} cannot be imported ({type(err).__name__}: {err}): its story "
                "is damaged; export it again"
            ) from err
        raise
    return ImportedBundle(library.album(album.id), run_id, final_folder)


def _imported_status(value: object) -> RunStatus:
    try:
        status = RunStatus(value)
    except ValueError:
        return RunStatus.COMPLETE
    # Nothing is writing an imported run: one exported mid-stream counts as interrupted.
    return RunStatus.INTERRUPTED if status is RunStatus.RUNNING else status


def _import_run(
    library: Library,
    album: Album,
    run_data: dict[str, Any] | None,
    entries: list[tuple[str, dict[str, Any]]],
) -> int | None:
    if not run_data:
        return None
    by_hash = {photo.sha256: photo for photo in library.photos(album)}
    run_photos = []
    for item in run_data.get("photos", []):
        old = RunPhoto.from_dict(item)
        current = by_hash.get(old.sha256)
        run_photos.append(
            RunPhoto(
                index=old.index,
                photo_id=current.id if current else None,
                path=current.path if current else old.path,
                sha256=old.sha256,
                original_size=old.original_size,
                prepared_size=old.prepared_size,
                tokens=old.tokens,
            )
        )
    return library.add_finished_run(
        album,
        photos=run_photos,
        status=_imported_status(run_data.get("status")),
        raw_output=str(run_data.get("raw_output", "")),
        parameters=run_data.get("parameters") or {},
        backend=str(run_data.get("backend", "")),
        model=run_data.get("model") or {},
        timings=run_data.get("timings") or {},
        created=run_data.get("created"),
        finished=run_data.get("finished"),
        error=str(run_data.get("error", "")),
        display_names=run_data.get("display_names") or {},
    )


def _import_cast(library: Library, album: Album, run_id: int | None, cast: object) -> None:
    """The cast a version-2 bundle carries (a version-1 bundle has none: the run's display
    names become the cast when it is next read, ``album_cast.refresh_cast``)."""
    if not isinstance(cast, list):
        return
    for item in cast:
        if not isinstance(item, dict) or not str(item.get("name", "")).strip():
            continue
        if item.get("kind") not in ("character", "object", "place"):
            continue
        boxes = {
            str(sha): (float(b[0]), float(b[1]), float(b[2]), float(b[3]))
            for sha, b in (item.get("boxes") or {}).items()
            if isinstance(b, list) and len(b) == 4
        }
        named_as = item.get("named_as") if run_id is not None else None
        cast_id = library.save_cast_member(
            album,
            name=str(item["name"]).strip(),
            kind=str(item["kind"]),
            boxes=boxes,
            run_id=run_id if named_as else None,
            entity_id=str(named_as) if named_as else None,
        )
        for match in item.get("matched") or () if run_id is not None else ():
            entity = str(match.get("entity", ""))
            if not entity:
                continue
            library.apply_cast_match(
                run_id, entity, cast_id, float(match.get("mean_iou", 0.0)), str(item["name"])
            )
            if match.get("undone"):
                library.undo_cast_match(run_id, entity)
