"""Albums and photos: import, duplicates, order, removal, missing files, relinking, thumbnails."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from library_helpers import distinct_photos, make_photo
from PIL import Image

from desktop_app.library import (
    AlbumExistsError,
    AlbumNotFoundError,
    Library,
    LibraryError,
    PhotoMissingError,
)
from desktop_app.library import (
    photos as photo_store,
)


def test_albums_are_created_listed_renamed_and_deleted(library: Library) -> None:
    library.create_album("Summer", notes="by the sea")
    library.create_album("autumn")
    assert [a.name for a in library.albums()] == ["autumn", "Summer"]
    assert library.album("summer").notes == "by the sea"  # names ignore letter case
    with pytest.raises(AlbumExistsError, match="already exists"):
        library.create_album("SUMMER")
    renamed = library.rename_album("Summer", "Summer 2024")
    assert library.album(renamed.id).name == "Summer 2024"
    library.delete_album("autumn")
    assert [a.name for a in library.albums()] == ["Summer 2024"]


def test_unknown_album_error_lists_the_albums_there_are(library: Library) -> None:
    library.create_album("Summer")
    library.create_album("Winter")
    with pytest.raises(AlbumNotFoundError, match="albums: Summer, Winter"):
        library.album("Spring")


def test_folder_import_is_recursive_takes_only_images_and_keeps_order(
    library: Library, tmp_path: Path
) -> None:
    folder = tmp_path / "trip"
    make_photo(folder / "b.jpg", color=(1, 2, 3))
    make_photo(folder / "a.png", color=(4, 5, 6), fmt="PNG")
    make_photo(folder / "day 2" / "c.jpeg", color=(7, 8, 9))
    # Content decides, not the name: a JPEG named .txt is a photo, a text named .jpg is not.
    make_photo(folder / "disguised.txt", color=(10, 11, 12))
    (folder / "notes.jpg").write_text("not a photo")
    (folder / ".hidden.jpg").write_bytes((folder / "b.jpg").read_bytes() + b"x")
    library.create_album("Trip")
    report = library.add_photos("Trip", [folder])
    names = [p.name for p in library.photos("Trip")]
    assert names == ["a.png", "b.jpg", "disguised.txt", "c.jpeg"]
    assert [p.name for p in report.added] == names
    assert report.skipped == (folder / "notes.jpg",)
    assert not report.failed and not report.duplicates


def test_photo_records_size_hash_capture_date_and_upright_pixel_size(
    library: Library, tmp_path: Path
) -> None:
    path = make_photo(
        tmp_path / "p.jpg", size=(60, 20), captured_at="2023:07:14 18:30:05", orientation=6
    )
    library.create_album("A")
    library.add_photos("A", [path])
    (photo,) = library.photos("A")
    assert photo.path == path
    assert photo.size == path.stat().st_size
    assert photo.captured_at == "2023-07-14T18:30:05"
    assert (photo.width, photo.height) == (20, 60)  # orientation 6: shown rotated a quarter turn
    import hashlib

    assert photo.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_unicode_and_spaces_in_paths_survive_the_round_trip(
    library: Library, tmp_path: Path
) -> None:
    path = make_photo(tmp_path / "été à Zürich" / "ферма 写真 01.jpg")
    library.create_album("Voyage d'été 🌞")
    library.add_photos("Voyage d'été 🌞", [path.parent])
    reopened = Library.open(library.path)
    (photo,) = reopened.photos("voyage d'été 🌞")
    assert photo.path == path and not photo.missing
    reopened.close()


def test_duplicates_by_content_are_reported_and_not_added_twice(
    library: Library, tmp_path: Path
) -> None:
    original = make_photo(tmp_path / "a.jpg")
    copy = tmp_path / "copy of a.jpg"
    shutil.copyfile(original, copy)
    library.create_album("A")
    report = library.add_photos("A", [original, copy, original])
    assert [p.path for p in report.added] == [original]
    assert [d.path for d in report.duplicates] == [copy, original]
    assert all(d.existing.path == original for d in report.duplicates)
    again = library.add_photos("A", [copy])
    assert not again.added and len(again.duplicates) == 1
    assert len(library.photos("A")) == 1


def test_one_photo_can_be_in_several_albums(library: Library, tmp_path: Path) -> None:
    path = make_photo(tmp_path / "a.jpg")
    library.create_album("A")
    library.create_album("B")
    library.add_photos("A", [path])
    library.add_photos("B", [path])
    assert library.photos("A")[0].id == library.photos("B")[0].id
    assert library.album("B").photo_count == 1


def test_unreadable_and_non_image_files_are_reported_by_name(
    library: Library, tmp_path: Path
) -> None:
    good = make_photo(tmp_path / "good.jpg")
    text = tmp_path / "letter.jpg"
    text.write_text("hello")
    truncated = tmp_path / "broken.jpg"
    truncated.write_bytes(good.read_bytes()[:4])
    heic = tmp_path / "iphone.heic"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic")
    library.create_album("A")
    report = library.add_photos("A", [good, text, truncated, heic, tmp_path / "gone.jpg"])
    assert [p.path for p in report.added] == [good]
    messages = {f.path.name: f.message for f in report.failed}
    assert set(messages) == {"letter.jpg", "broken.jpg", "iphone.heic", "gone.jpg"}
    assert "letter.jpg is not an image" in messages["letter.jpg"]
    assert "pi-heif" in messages["iphone.heic"]
    assert "gone.jpg was not found" in messages["gone.jpg"]


def test_a_photo_cut_short_is_refused_at_import_not_at_generate(
    library: Library, tmp_path: Path
) -> None:
    from PIL import ImageDraw

    image = Image.new("RGB", (640, 480), (30, 80, 160))
    ImageDraw.Draw(image).ellipse((100, 100, 500, 400), fill=(220, 40, 40))
    whole = tmp_path / "whole.jpg"
    image.save(whole, quality=90)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])  # its header reads fine
    with Image.open(cut) as opened:
        assert opened.size == (640, 480)
    library.create_album("A")
    report = library.add_photos("A", [whole, cut])
    assert [p.path for p in report.added] == [whole]
    (failure,) = report.failed
    assert failure.path == cut
    assert "cut.jpg is damaged or truncated and cannot be decoded" in failure.message
    assert "copy it again" in failure.message


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs POSIX permissions")
def test_a_photo_without_read_permission_is_reported(library: Library, tmp_path: Path) -> None:
    locked = make_photo(tmp_path / "locked.jpg")
    locked.chmod(0)
    try:
        library.create_album("A")
        report = library.add_photos("A", [locked])
    finally:
        locked.chmod(0o644)
    assert "locked.jpg cannot be read: permission denied" in report.failed[0].message


def test_reorder_remove_and_sort_by_capture_date(library: Library, tmp_path: Path) -> None:
    late = make_photo(tmp_path / "late.jpg", color=(1, 1, 1), captured_at="2024:01:03 09:00:00")
    early = make_photo(tmp_path / "early.jpg", color=(2, 2, 2), captured_at="2024:01:01 09:00:00")
    mid = make_photo(tmp_path / "mid.jpg", color=(3, 3, 3), captured_at="2024:01:02 09:00:00")
    library.create_album("A")
    library.add_photos("A", [late, early, mid])
    ids = {p.name: p.id for p in library.photos("A")}
    library.sort_by_capture_date("A")
    assert [p.name for p in library.photos("A")] == ["early.jpg", "mid.jpg", "late.jpg"]
    library.reorder("A", [ids["mid.jpg"], ids["late.jpg"], ids["early.jpg"]])
    assert [p.name for p in library.photos("A")] == ["mid.jpg", "late.jpg", "early.jpg"]
    with pytest.raises(LibraryError, match="each of the album's 3 photos exactly once"):
        library.reorder("A", [ids["mid.jpg"], ids["mid.jpg"], ids["early.jpg"]])
    assert library.remove_photos("A", [ids["late.jpg"]]) == 1
    assert [p.name for p in library.photos("A")] == ["mid.jpg", "early.jpg"]
    assert late.is_file()  # removed from the album, never from the disk
    library.delete_album("A")
    assert late.is_file() and early.is_file() and mid.is_file()


def test_missing_photos_are_flagged_and_relinked_by_hash(library: Library, tmp_path: Path) -> None:
    photos = distinct_photos(tmp_path / "old", 3)
    library.create_album("A")
    library.add_photos("A", [tmp_path / "old"])
    moved = tmp_path / "new place" / "sub"
    moved.mkdir(parents=True)
    shutil.move(str(photos[0]), moved / "renamed.jpg")
    shutil.move(str(photos[1]), moved / "photo02.jpg")
    photos[2].unlink()
    listed = library.photos("A")  # the album still lists, with flags
    assert [p.missing for p in listed] == [True, True, True]
    make_photo(moved / "unrelated.jpg", color=(0, 0, 0))
    report = library.relink("A", tmp_path / "new place")
    assert sorted(r.new_path.name for r in report.relinked) == ["photo02.jpg", "renamed.jpg"]
    assert [p.name for p in report.still_missing] == ["photo03.jpg"]
    after = library.photos("A")
    assert [p.name for p in after] == ["renamed.jpg", "photo02.jpg", "photo03.jpg"]
    assert [p.missing for p in after] == [False, False, True]


def test_a_candidate_that_vanishes_or_cannot_be_read_is_skipped_not_fatal(
    library: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photos = distinct_photos(tmp_path / "old", 3)
    library.create_album("A")
    library.add_photos("A", [tmp_path / "old"])
    new_place = tmp_path / "new"
    new_place.mkdir()
    # Walked in name order: a copy of photo01 that vanishes right after it is hashed, a copy of
    # photo02 that cannot be read, then the files that stay.
    shutil.copy(photos[0], new_place / "a vanishing.jpg")
    shutil.copy(photos[1], new_place / "b locked.jpg")
    for photo in photos:
        shutil.move(str(photo), new_place / photo.name)
    real_hash = photo_store.sha256_file

    def hash_then_interfere(path: Path) -> str:
        if path.name == "b locked.jpg":
            raise PermissionError(13, "Permission denied", str(path))
        digest = real_hash(path)
        if path.name == "a vanishing.jpg":
            path.unlink()  # another program moved it on between hashing and writing
        return digest

    monkeypatch.setattr(photo_store, "sha256_file", hash_then_interfere)
    report = library.relink("A", new_place)
    assert sorted(r.new_path.name for r in report.relinked) == [p.name for p in photos]
    assert report.still_missing == ()
    assert [(f.path.name, "vanished" in f.message) for f in report.unreadable] == [
        ("a vanishing.jpg", True),
        ("b locked.jpg", False),
    ]
    assert "permission denied" in report.unreadable[1].message.lower()
    assert [p.missing for p in library.photos("A")] == [False, False, False]


def _stop_after(files: int) -> tuple[list[int], Callable[[], bool]]:
    """A ``should_stop`` that lets ``files`` files through; the list counts its calls."""
    calls: list[int] = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) > files

    return calls, should_stop


def test_a_stopped_import_keeps_the_photos_read_so_far_and_says_it_stopped(
    library: Library, tmp_path: Path
) -> None:
    photos = distinct_photos(tmp_path / "big", 6)
    library.create_album("A")
    calls, should_stop = _stop_after(2)
    report = library.add_photos("A", [tmp_path / "big"], should_stop=should_stop)
    assert report.stopped is True
    assert report.to_dict()["stopped"] is True
    assert [p.name for p in report.added] == [p.name for p in photos[:2]]
    assert [p.name for p in library.photos("A")] == [p.name for p in photos[:2]]
    assert len(calls) == 3  # asked once per file, no file looked at after it said stop

    # Importing the folder again adds the rest (the first two are duplicates), unstopped.
    again = library.add_photos("A", [tmp_path / "big"], should_stop=lambda: False)
    assert again.stopped is False
    assert len(again.added) == 4 and len(again.duplicates) == 2
    assert [p.name for p in library.photos("A")] == [p.name for p in photos]


def test_a_stopped_relink_keeps_what_it_found_and_says_it_stopped(
    library: Library, tmp_path: Path
) -> None:
    photos = distinct_photos(tmp_path / "old", 3)
    library.create_album("A")
    library.add_photos("A", [tmp_path / "old"])
    new_place = tmp_path / "new"
    new_place.mkdir()
    for photo in photos:
        shutil.move(str(photo), new_place / photo.name)
    _calls, should_stop = _stop_after(1)
    report = library.relink("A", new_place, should_stop=should_stop)
    assert report.stopped is True
    assert len(report.relinked) == 1 and len(report.still_missing) == 2
    assert sum(not p.missing for p in library.photos("A")) == 1
    finished = library.relink("A", new_place)
    assert finished.stopped is False and len(finished.relinked) == 2


def test_thumbnails_are_upright_cached_and_rebuilt_when_deleted(
    library: Library, tmp_path: Path
) -> None:
    path = make_photo(tmp_path / "tall.jpg", size=(300, 100), orientation=6)
    library.create_album("A")
    library.add_photos("A", [path])
    (photo,) = library.photos("A")
    thumb = library.thumbnail_path(photo, 128)
    assert thumb.is_relative_to(library.thumbnails_dir)
    with Image.open(thumb) as image:
        assert image.size == (43, 128)  # rotated upright, fits 128
    thumb.unlink()
    assert library.thumbnail_path(photo, 128).is_file()
    path.unlink()
    assert library.thumbnail_path(photo, 128) == thumb  # cached copy still serves
    with pytest.raises(PhotoMissingError, match="relink"):
        library.thumbnail_path(photo, 256)


def test_reimporting_an_unchanged_file_is_a_duplicate_without_rehashing(
    library: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "trip"
    path = make_photo(folder / "a.jpg")
    changed = make_photo(folder / "deeper" / "b.jpg", color=(1, 2, 3))
    library.create_album("A")
    library.add_photos("A", [folder])
    real_read = photo_store.read_photo_facts
    read_again: list[str] = []

    def record_read(path: Path) -> object:
        read_again.append(path.name)
        return real_read(path)

    monkeypatch.setattr(photo_store, "read_photo_facts", record_read)
    report = library.add_photos("A", [path])
    assert len(report.duplicates) == 1
    report = library.add_photos("A", [folder])  # files found under a folder are known too
    assert len(report.duplicates) == 2 and read_again == []
    make_photo(changed, color=(9, 9, 9))  # new content at a known path is read again
    os.utime(changed, (1_000_000_000, 1_000_000_000))
    report = library.add_photos("A", [folder])
    assert read_again == ["b.jpg"]
    assert [p.name for p in report.added] == ["b.jpg"] and len(report.duplicates) == 1
