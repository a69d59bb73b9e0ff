"""What leaves the app carries nothing about the user's machine or whereabouts unless asked:
no local path in any shared file, no GPS in any shared photo (read with exiftool and searched
byte by byte)."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hand_stories import HandFrame, photo_with_boxes, story_text
from PIL import Image

from desktop_app.app.captions import write_captioned_copies, write_sidecars
from desktop_app.app.exports import export_album, render_stored
from desktop_app.app.stored_story import StoredStory
from desktop_app.library import Library, RunPhoto, RunStatus

SECRET = "zebediah-private"  # the user name in the photos' folder


@pytest.fixture
def told(tmp_path: Path) -> Iterator[tuple[Library, int]]:
    """An album of a JPEG and a PNG, both with a GPS position, in a folder under a
    recognisable path, with a told story."""
    folder = tmp_path / "home" / SECRET / "Secret Cove"
    jpeg = photo_with_boxes(folder / "cove.jpg", (300, 200), [(40, 30, 120, 180)], gps=True)
    png = folder / "rocks.png"
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 12.0)}
    Image.new("RGB", (200, 100), (10, 120, 40)).save(png, exif=exif)
    with Library.open(tmp_path / "library") as library:
        library.create_album("Cove")
        library.add_photos("Cove", [jpeg, png])
        photos = library.photos("Cove")
        frames = [
            HandFrame(
                characters=[("char1", "Joe", (40, 30, 120, 180))], text="<gdo char1>Joe</gdo>."
            ),
            HandFrame(text="The rocks."),
        ]
        run_id = library.add_finished_run(
            "Cove",
            photos=[
                RunPhoto(i, p.id, p.path, p.sha256, (p.width, p.height), (p.width, p.height))
                for i, p in enumerate(photos, 1)
            ],
            status=RunStatus.COMPLETE,
            raw_output=story_text(frames),
            parameters={},
            backend="hand",
            model={},
            timings={},
        )
        library.set_display_name(run_id, "char1", "Grandpa Joe")
        yield library, run_id


def _files(root: Path) -> list[Path]:
    """Every file under ``root``; a zip's members are extracted beside it to be read too."""
    found = []
    for path in sorted(root.rglob("*")):
        if path.suffix == ".zip":
            inside = path.with_name(path.name + ".contents")
            with zipfile.ZipFile(path) as archive:
                archive.extractall(inside)
            found.append(path)
            found += [p for p in inside.rglob("*") if p.is_file()]
        elif path.is_file() and ".zip.contents" not in str(path):
            found.append(path)
    return found


def _gps_tags(exiftool: Any, photo: Path) -> list[str]:
    (meta,) = exiftool(photo, args=("-a",))
    return sorted(key for key in meta if key.upper().startswith("GPS"))


def test_nothing_shared_names_the_folder_or_the_place(
    told: tuple[Library, int], tmp_path: Path, exiftool: Any
) -> None:
    library, run_id = told
    originals = [p.path for p in library.photos("Cove")]
    assert all(_gps_tags(exiftool, p) for p in originals)  # the test photos do carry GPS
    out = tmp_path / "shared"
    export_album(library, "Cove", out / "bundle.zip")
    export_album(library, "Cove", out / "bundle folder")
    stored = StoredStory.of_run(library.run(run_id), library.display_names(run_id))
    write_captioned_copies(stored, out / "captioned")
    write_sidecars(stored, out / "with sidecars")
    for kind, suffix in (
        ("html", ".html"),
        ("slideshow", ".slides.html"),
        ("markdown", ".md"),
        ("json", ".json"),
    ):
        (out / f"story{suffix}").write_text(render_stored(kind, stored, title="Cove"))
    files = _files(out)
    photos = [p for p in files if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
    assert len(photos) == 8  # two in each bundle, the copies, the sidecar folder's copies
    leaks = [
        str(p.relative_to(out))
        for p in files
        if SECRET.encode() in p.read_bytes() or str(tmp_path).encode() in p.read_bytes()
    ]
    assert leaks == []
    for photo in photos:
        assert _gps_tags(exiftool, photo) == [], photo.relative_to(out)
    # The captioned copy is still captioned and keeps the rest of its EXIF; the bundle imports.
    (copy,) = exiftool(out / "captioned" / "cove.jpg")
    assert copy["PersonInImage"] == ["Grandpa Joe"]
    assert (copy["Make"], copy["Orientation"]) == ("TestCam", 1)
    from desktop_app.app.exports import import_bundle

    with Library.open(tmp_path / "other") as other:
        imported = import_bundle(other, out / "bundle.zip")
        assert other.display_names(imported.run_id or 0) == {"char1": "Grandpa Joe"}


def test_location_is_kept_when_asked(
    told: tuple[Library, int], tmp_path: Path, exiftool: Any
) -> None:
    library, run_id = told
    stored = StoredStory.of_run(library.run(run_id), library.display_names(run_id))
    write_captioned_copies(stored, tmp_path / "copies", keep_location=True)
    (meta,) = exiftool(tmp_path / "copies" / "cove.jpg")
    assert meta["GPSLatitude"] == pytest.approx(51.503333, abs=1e-4)
    assert meta["Description"] == "Grandpa Joe."
    export_album(library, "Cove", tmp_path / "kept", keep_location=True)
    (photo,) = (tmp_path / "kept" / "photos").glob("*cove.jpg")
    assert _gps_tags(exiftool, photo)
