"""Export an album with its story as a folder or zip, and import it back."""

from __future__ import annotations

import base64
import io
import json
import re
import zipfile
from pathlib import Path

import pytest
from library_helpers import STORY_TEXT, distinct_photos, make_photo
from PIL import Image

from desktop_app.app.exports import export_album, import_bundle
from desktop_app.app.telling import TellOptions, tell_album
from desktop_app.engine.replay_backend import ReplayBackend
from desktop_app.library import BundleError, Library, PhotoUnreadableError, RunStatus


@pytest.fixture
def told_album(library: Library, tmp_path: Path) -> int:
    library.create_album("Rainy day", notes="April")
    photos = distinct_photos(tmp_path / "photos é", 2)
    library.add_photos("Rainy day", photos)
    run = tell_album(
        library,
        "Rainy day",
        ReplayBackend(STORY_TEXT, prepared_size=(28, 28)),
        TellOptions(),
    ).run
    library.set_display_name(run.id, "char1", "Little Maya")
    return run.id


@pytest.mark.parametrize("kind", ["zip", "folder"])
def test_export_then_import_round_trips_album_photos_story_and_names(
    library: Library, told_album: int, tmp_path: Path, kind: str
) -> None:
    dest = tmp_path / "out" / ("rainy.zip" if kind == "zip" else "rainy")
    assert export_album(library, "Rainy day", dest) == dest
    if kind == "zip":
        with zipfile.ZipFile(dest) as archive:
            names = set(archive.namelist())
            html = archive.read("story.html").decode()
            markdown = archive.read("story.md").decode()
    else:
        names = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}
        html = (dest / "story.html").read_text()
        markdown = (dest / "story.md").read_text()
    assert {"bundle.json", "story.html", "story.md", "story.json"} <= names
    assert {"photos/001 photo01.jpg", "photos/002 photo02.jpg"} <= names
    assert html.count("data:image/jpeg;base64,") == 2  # photos embedded: one file to share
    assert "Little Maya" in html and "Little Maya" in markdown

    # Import into a different library: the photos are copied in, the story comes along.
    with Library.open(tmp_path / "other library") as other:
        imported = import_bundle(other, dest)
        assert imported.album.name == "Rainy day" and imported.album.notes == "April"
        photos = other.photos(imported.album)
        assert [p.sha256 for p in photos] == [p.sha256 for p in library.photos("Rainy day")]
        assert all(p.path.is_relative_to(other.root / "imported") for p in photos)
        assert all(not p.missing for p in photos)
        run = other.run(imported.run_id or 0)
        original = library.run(told_album)
        assert run.status is RunStatus.COMPLETE
        assert run.raw_output == original.raw_output
        assert run.parameters == original.parameters
        assert [p.prepared_size for p in run.photos] == [(28, 28), (28, 28)]
        assert [p.photo_id for p in run.photos] == [p.id for p in photos]
        assert run.story == original.story
        assert other.display_names(run.id) == {"char1": "Little Maya"}
        # Importing twice makes a second album, never a clash.
        again = import_bundle(other, dest)
        assert again.album.name == "Rainy day (2)"
    if kind == "zip":  # nothing in the library points at a temporary extraction
        leftovers = [p for p in (tmp_path / "other library" / "imported").iterdir()]
        assert all(not p.name.startswith(".") for p in leftovers)


def test_export_refuses_to_overwrite_and_leaves_no_partial_files(
    library: Library, told_album: int, tmp_path: Path
) -> None:
    (tmp_path / "taken").mkdir()
    with pytest.raises(BundleError, match="already exists"):
        export_album(library, "Rainy day", tmp_path / "taken")
    library.photos("Rainy day")[0].path.unlink()
    with pytest.raises(BundleError, match=r"photo01\.jpg cannot be found.*relink"):
        export_album(library, "Rainy day", tmp_path / "new.zip")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "library") == [
        "photos é",
        "taken",
    ]


def test_a_photo_that_became_unreadable_stops_the_export_with_its_name(
    library: Library, told_album: int, tmp_path: Path
) -> None:
    library.photos("Rainy day")[1].path.write_bytes(b"not a jpeg any more")
    with pytest.raises(PhotoUnreadableError, match=r"photo02\.jpg cannot be read.*check the file"):
        export_album(library, "Rainy day", tmp_path / "out.zip")
    assert not (tmp_path / "out.zip").exists()


def test_transparent_photos_are_embedded_on_white(library: Library, tmp_path: Path) -> None:
    library.create_album("Clear")
    png = tmp_path / "clear.png"
    Image.new("RGBA", (40, 30), (0, 0, 0, 0)).save(png)
    library.add_photos("Clear", [png])
    tell_album(library, "Clear", ReplayBackend(STORY_TEXT), TellOptions())
    dest = export_album(library, "Clear", tmp_path / "clear-export")
    html = (dest / "story.html").read_text()
    encoded = re.search(r"data:image/jpeg;base64,([A-Za-z0-9+/=]+)", html)
    assert encoded is not None
    with Image.open(io.BytesIO(base64.b64decode(encoded.group(1)))) as embedded:
        assert embedded.convert("L").getextrema()[0] > 240  # white, not black


def test_an_album_without_a_story_cannot_be_exported(library: Library, tmp_path: Path) -> None:
    library.create_album("Empty")
    library.add_photos("Empty", [make_photo(tmp_path / "a.jpg")])
    with pytest.raises(BundleError, match="no story yet"):
        export_album(library, "Empty", tmp_path / "x.zip")


def test_a_damaged_or_foreign_bundle_is_refused_and_nothing_is_added(
    library: Library, told_album: int, tmp_path: Path
) -> None:
    dest = export_album(library, "Rainy day", tmp_path / "b")
    photo = next((dest / "photos").iterdir())
    photo.write_bytes(photo.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(BundleError, match="damaged"):
        import_bundle(library, dest)
    evil = tmp_path / "evil.zip"
    manifest = json.loads((dest / "bundle.json").read_text())
    manifest["photos"][0]["file"] = "../../outside.jpg"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("bundle.json", json.dumps(manifest))
    with pytest.raises(BundleError, match="outside its photos folder"):
        import_bundle(library, evil)
    not_bundle = tmp_path / "random.zip"
    with zipfile.ZipFile(not_bundle, "w") as archive:
        archive.writestr("readme.txt", "hi")
    with pytest.raises(BundleError, match="not a Storyteller album export"):
        import_bundle(library, not_bundle)
    assert [a.name for a in library.albums()] == ["Rainy day"]
    assert [p.name for p in (library.root / "imported").iterdir()] == []


def test_stories_follow_relinked_photos_so_export_still_works(
    library: Library, told_album: int, tmp_path: Path
) -> None:
    old_folder = tmp_path / "photos é"
    new_folder = tmp_path / "moved to the nas"
    old_folder.rename(new_folder)
    assert all(not p.path.is_file() for p in library.run(told_album).photos)
    library.relink("Rainy day", new_folder)
    run = library.run(told_album)
    assert [p.path.parent for p in run.photos] == [new_folder, new_folder]
    assert export_album(library, "Rainy day", tmp_path / "after-move.zip").is_file()
