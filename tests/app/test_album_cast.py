"""Names that stay: a name given in one version is offered to the same entity of later versions
of the album, matched by place on the same photos (app.album_cast, app.name_matching).

Every story here is hand-written with ids that differ between versions: the model's ids carry
no identity from run to run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from hand_stories import Box, HandFrame, story_text
from PIL import Image

from desktop_app.app.album_cast import cast_entries, offer_names, refresh_cast, undo_match
from desktop_app.app.captions import frame_caption
from desktop_app.app.exports import BUNDLE_VERSION, export_album, import_bundle
from desktop_app.app.name_matching import Sighting, iou, match_entities
from desktop_app.app.stored_story import StoredStory, frames_of
from desktop_app.library import Library, LibraryError, Photo, RunPhoto, RunStatus

FULL = (400, 300)
HALF = (200, 150)  # "another detail level": the model saw the photos at half the size
GIRL = {"A": (40, 40, 110, 240), "B": (200, 50, 270, 250)}
MAN = {"A": (250, 60, 330, 280), "B": (20, 40, 100, 260)}
BALL = {"A": (300, 240, 350, 290)}


@pytest.fixture
def library(tmp_path: Path) -> Iterator[Library]:
    with Library.open(tmp_path / "library") as lib:
        yield lib


@pytest.fixture
def photos(library: Library, tmp_path: Path) -> dict[str, Photo]:
    """Photos A, B and C of album "Beach" (C is added to the album later in some tests)."""
    files = []
    for number, key in enumerate("ABC"):
        path = tmp_path / "photos" / f"{key}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", FULL, (40 * number, 90, 200)).save(path)
        files.append(path)
    library.create_album("Beach")
    library.add_photos("Beach", files)
    return {photo.path.stem: photo for photo in library.photos("Beach")}


def _scaled(box: Box, prepared: tuple[int, int]) -> Box:
    factor = prepared[0] / FULL[0]
    return tuple(int(v * factor) for v in box)  # type: ignore[return-value]


def _shifted(box: Box, dx: int) -> Box:
    return (box[0] + dx, box[1], box[2] + dx, box[3])


def version(
    library: Library,
    photos: dict[str, Photo],
    order: str,
    characters: Sequence[tuple[str, dict[str, Box]]] = (),
    objects: Sequence[tuple[str, dict[str, Box]]] = (),
    *,
    prepared: tuple[int, int] = FULL,
) -> int:
    """Store a version told about the photos ``order`` (e.g. "BA"); each entity is an id and
    its boxes on the full-size photos by photo key (scaled here to ``prepared``)."""
    frames = []
    for key in order:
        frames.append(
            HandFrame(
                characters=[
                    (cid, "Someone", _scaled(boxes[key], prepared))
                    for cid, boxes in characters
                    if key in boxes
                ],
                objects=[
                    (oid, "a thing", _scaled(boxes[key], prepared))
                    for oid, boxes in objects
                    if key in boxes
                ],
            )
        )
    run_photos = [
        RunPhoto(
            index=index,
            photo_id=photos[key].id,
            path=photos[key].path,
            sha256=photos[key].sha256,
            original_size=FULL,
            prepared_size=prepared,
        )
        for index, key in enumerate(order, 1)
    ]
    return library.add_finished_run(
        "Beach",
        photos=run_photos,
        status=RunStatus.COMPLETE,
        raw_output=story_text(frames),
        parameters={},
        backend="hand",
        model={},
        timings={},
    )


def _named(library: Library, photos: dict[str, Photo]) -> int:
    """Version 1: the user names the girl (char1) Maya and the ball (obj1) Red ball."""
    first = version(library, photos, "AB", [("char1", GIRL), ("char2", MAN)], [("obj1", BALL)])
    library.set_display_name(first, "char1", "Maya")
    library.set_display_name(first, "obj1", "Red ball")
    return first


def test_reordered_photos_at_another_detail_level_keep_the_names(
    library: Library, photos: dict[str, Photo]
) -> None:
    _named(library, photos)
    # The girl is char3 now, the man char1; an object sits exactly where the girl is.
    later = version(
        library,
        photos,
        "BA",
        [("char1", MAN), ("char3", GIRL)],
        [("obj2", GIRL), ("obj5", BALL)],
        prepared=HALF,
    )
    matches = offer_names(library, later)
    assert library.display_names(later) == {"char3": "Maya", "obj5": "Red ball"}
    assert {(m.entity, round(m.mean_iou, 2)) for m in matches} == {("char3", 1.0), ("obj5", 1.0)}
    entries = {e.entity_id: e for e in cast_entries(library, later)}
    assert entries["char3"].origin == "matched" and entries["char3"].from_run == later - 1
    # The names flow into what is shared: the XMP's people and the story's text.
    stored = StoredStory.of_run(library.run(later), library.display_names(later))
    frame = frames_of(library.run(later))[1]  # photo A, second in this version
    caption = frame_caption(stored, stored.display(), frame, 1, FULL)
    assert "Maya" in caption.people and "Someone" in caption.people


def test_an_added_photo_does_not_stop_the_match(library: Library, photos: dict[str, Photo]) -> None:
    _named(library, photos)
    girl = {**GIRL, "C": (10, 10, 60, 100)}
    later = version(library, photos, "ACB", [("char7", girl)])
    offer_names(library, later)
    assert library.display_names(later) == {"char7": "Maya"}


def test_a_near_miss_is_not_a_match(library: Library, photos: dict[str, Photo]) -> None:
    _named(library, photos)
    near = {key: _shifted(box, 30) for key, box in GIRL.items()}
    assert iou(near["A"], GIRL["A"]) == pytest.approx(0.4)
    later = version(library, photos, "AB", [("char1", near)])
    assert offer_names(library, later) == []
    assert library.display_names(later) == {}


def test_two_candidates_for_one_name_the_better_overlap_wins(
    library: Library, photos: dict[str, Photo]
) -> None:
    _named(library, photos)
    close = {key: _shifted(box, 10) for key, box in GIRL.items()}  # IoU 0.75
    later = version(library, photos, "AB", [("char1", close), ("char2", GIRL)])
    offer_names(library, later)
    assert library.display_names(later) == {"char2": "Maya"}


def test_matching_in_only_half_the_shared_photos_is_not_enough() -> None:
    named = Sighting("1", "character", {"A": (0, 0, 0.5, 0.5), "B": (0.5, 0.5, 1, 1)})
    half = Sighting("char1", "character", {"A": (0, 0, 0.5, 0.5), "B": (0, 0, 0.2, 0.2)})
    assert match_entities([named], [half]) == []
    other_kind = Sighting("obj1", "object", dict(named.boxes))
    assert match_entities([named], [other_kind]) == []
    same = Sighting("char2", "character", dict(named.boxes))
    assert [m.entity for m in match_entities([named], [half, same])] == ["char2"]


def test_a_name_given_in_the_new_version_is_kept_and_an_undone_match_stays_undone(
    library: Library, photos: dict[str, Photo]
) -> None:
    first = _named(library, photos)
    later = version(library, photos, "AB", [("char4", GIRL)], [("obj1", BALL)])
    library.set_display_name(later, "obj1", "Beach ball")  # the user's name in this version
    offer_names(library, later)
    assert library.display_names(later) == {"char4": "Maya", "obj1": "Beach ball"}
    undo_match(library, later, "char4")
    assert library.display_names(later) == {"obj1": "Beach ball"}
    offer_names(library, later)  # not offered again
    assert library.display_names(later) == {"obj1": "Beach ball"}
    entries = {e.entity_id: (e.name, e.origin) for e in cast_entries(library, later)}
    assert entries == {"char4": ("Maya", "undone"), "obj1": ("Beach ball", "named")}
    with pytest.raises(LibraryError, match="was not named by a match"):
        undo_match(library, later, "obj1")
    # After an undo the user names her herself: the album offers her nothing over it.
    library.set_display_name(later, "char4", "Molly")
    offer_names(library, later)
    assert library.display_names(later) == {"char4": "Molly", "obj1": "Beach ball"}
    library.set_display_name(later, "char4", None)
    # The album keeps its cast when the version the names were given in is deleted.
    library.delete_run(first)
    assert {m.name for m in refresh_cast(library, "Beach")} >= {"Maya", "Red ball"}
    newest = version(library, photos, "BA", [("char9", GIRL)])
    offer_names(library, newest)
    assert library.display_names(newest) == {"char9": "Maya"}


def test_the_bundle_carries_the_cast_and_an_older_bundle_still_imports(
    library: Library, photos: dict[str, Photo], tmp_path: Path
) -> None:
    _named(library, photos)
    later = version(library, photos, "BA", [("char3", GIRL)], prepared=HALF)
    offer_names(library, later)
    dest = export_album(library, "Beach", tmp_path / "beach", run_id=later)
    manifest = json.loads((dest / "bundle.json").read_text())
    assert manifest["version"] == BUNDLE_VERSION == 2
    maya = next(member for member in manifest["cast"] if member["name"] == "Maya")
    in_bundle = {photo["sha256"] for photo in manifest["photos"]}
    assert set(maya["boxes"]) == in_bundle and maya["named_as"] is None
    assert maya["matched"] == [{"entity": "char3", "mean_iou": 1.0, "undone": False}]

    with Library.open(tmp_path / "other") as other:
        imported = import_bundle(other, dest)
        assert {m.name for m in other.cast(imported.album)} == {"Maya", "Red ball"}
        entries = cast_entries(other, imported.run_id or 0)
        assert [(e.entity_id, e.name, e.origin) for e in entries] == [("char3", "Maya", "matched")]
        # The name travels with the album: a version told after the import is offered it.
        there = {p.path.stem[-1]: p for p in other.photos(imported.album)}
        newer = version(other, there, "AB", [("char2", GIRL)])
        offer_names(other, newer)
        assert other.display_names(newer) == {"char2": "Maya"}

    # A version-1 bundle (absolute paths, no cast) still imports; its names become the cast.
    manifest["version"] = 1
    del manifest["cast"]
    for photo in manifest["run"]["photos"]:
        photo["path"] = f"/home/someone/Pictures/{photo['path']}"
    (dest / "bundle.json").write_text(json.dumps(manifest))
    with Library.open(tmp_path / "third") as third:
        imported = import_bundle(third, dest)
        assert third.display_names(imported.run_id or 0) == {"char3": "Maya"}
        assert [m.name for m in refresh_cast(third, imported.album)] == ["Maya"]
