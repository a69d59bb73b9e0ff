"""Album bundles when something fails (issue 27): an import that fails late (after the album
was created) leaves no half-created album and no copied photos; an export on a full disk (a
real small tmpfs) says so, how much it needs, and leaves nothing behind and the story as it was."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from library_helpers import STORY_TEXT, distinct_photos

from desktop_app.app.exports import export_album, import_bundle
from desktop_app.app.telling import TellOptions, tell_album
from desktop_app.engine.replay_backend import ReplayBackend
from desktop_app.library import BundleError, Library, LibraryDiskFullError


@pytest.fixture
def told(library: Library, tmp_path: Path) -> int:
    library.create_album("Rainy day")
    library.add_photos("Rainy day", distinct_photos(tmp_path / "photos", 2))
    return tell_album(library, "Rainy day", ReplayBackend(STORY_TEXT), TellOptions()).run.id


def test_an_import_that_fails_after_the_album_was_created_leaves_nothing(
    library: Library, told: int, tmp_path: Path
) -> None:
    bundle = export_album(library, "Rainy day", tmp_path / "bundle")
    manifest = json.loads((bundle / "bundle.json").read_text(encoding="utf-8"))
    manifest["run"]["photos"] = [{"index": 1}]  # a story whose photos say nothing usable
    (bundle / "bundle.json").write_text(json.dumps(manifest), encoding="utf-8")
    imported_root = library.root / "imported"

    with pytest.raises(BundleError, match=r"bundle cannot be imported .*export it again"):
        import_bundle(library, bundle, name="Copy")
    assert [album.name for album in library.albums()] == ["Rainy day"]  # "Copy" went again
    assert list(imported_root.iterdir()) == []  # and so did its copied photos


def test_an_import_that_fails_late_on_a_full_library_disk_leaves_no_album(
    told: int, tmp_path: Path, small_disk: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = Library.open(tmp_path / "library" / "library.sqlite3")
    bundle = export_album(source, "Rainy day", tmp_path / "bundle.zip")
    source.close()
    target = Library.open(small_disk.path / "lib")
    add_finished_run = target.add_finished_run

    def full_before_the_story(*args: Any, **kwargs: Any) -> int:
        small_disk.fill()
        try:
            return add_finished_run(*args, **kwargs)
        finally:
            small_disk.make_room()  # room for the clean-up, as when another program frees some

    monkeypatch.setattr(target, "add_finished_run", full_before_the_story)
    try:
        with pytest.raises(LibraryDiskFullError, match="is full"):
            import_bundle(target, bundle)
        assert target.albums() == []
        assert list((target.root / "imported").iterdir()) == []
    finally:
        target.close()


@pytest.mark.parametrize("kind", ["zip", "folder"])
def test_an_export_on_a_full_disk_says_so_and_leaves_nothing(
    library: Library, told: int, small_disk: Any, kind: str
) -> None:
    before = library.run(told)
    small_disk.fill()
    dest = small_disk.path / ("out.zip" if kind == "zip" else "out")
    with pytest.raises(BundleError) as raised:
        export_album(library, "Rainy day", dest)
    message = str(raised.value)
    assert f"the export {dest.name} cannot be written: the disk of {small_disk.path} is full" in (
        message
    )
    assert "it needs about" in message and "nothing was lost" in message
    assert sorted(p.name for p in small_disk.path.iterdir()) == [".filler"]  # no partial files
    assert library.run(told) == before

    small_disk.make_room()
    assert export_album(library, "Rainy day", dest).exists()  # with room, the same export works
