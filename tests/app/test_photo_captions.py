"""Captions and people for photo managers: XMP sidecars and captioned copies, read back with
the real exiftool (tests/conftest.py's ``exiftool`` fixture)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from hand_stories import GREY, RED, HandFrame, photo_with_boxes, story_text
from PIL import Image

from desktop_app.app.captions import (
    SharingError,
    SidecarNaming,
    write_captioned_copies,
    write_sidecars,
)
from desktop_app.app.stored_story import FrameGeometry, StoredStory

JOE = (40, 30, 120, 180)
BALL = (200, 120, 260, 180)
JOE_2 = (30, 150, 110, 280)
MAYA = (120, 20, 190, 120)
FRAMES = [
    HandFrame(
        characters=[("char1", "Joe", JOE)],
        objects=[("obj1", "red ball", BALL)],
        text="<gdo char1>Joe</gdo> throws the <gdo obj1>ball</gdo> by the sea.",
    ),
    HandFrame(
        characters=[("char1", "Joe", JOE_2), ("char2", "Maya", MAYA)],
        text="<gdo char2>Maya</gdo> laughs at <gdo char1>Joe</gdo>.",
    ),
]
TEXTS = ["Grandpa Joe throws the ball by the sea.", "Maya laughs at Grandpa Joe."]


def _story(folder: Path) -> StoredStory:
    """Frame 1 a landscape photo; frame 2 a portrait one stored sideways (EXIF orientation 6)."""
    first = photo_with_boxes(folder / "beach.jpg", (300, 200), [JOE])
    second = photo_with_boxes(folder / "portrait.jpg", (200, 300), [JOE_2, MAYA], orientation=6)
    frames = [
        FrameGeometry(1, first, (300, 200), (300, 200)),
        FrameGeometry(2, second, (200, 300), (200, 300)),
    ]
    return StoredStory.parse(story_text(FRAMES), frames, {"char1": "Grandpa Joe"})


def _hashes(paths: list[Path]) -> list[str]:
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]


def _regions(meta: dict[str, Any]) -> list[dict[str, Any]]:
    return list(meta.get("RegionInfo", {}).get("RegionList", []))


def _assert_regions_land_on_the_people(meta: dict[str, Any], photo: Path) -> None:
    """Each Face region, read as MWG defines it (the stored grid, centre + size), covers red
    pixels of the stored picture, and the pixels just outside it are not red."""
    info = meta["RegionInfo"]
    with Image.open(photo) as image:
        stored = image.convert("RGB")  # the pixels as stored: no orientation applied
    assert (info["AppliedToDimensions"]["W"], info["AppliedToDimensions"]["H"]) == stored.size
    assert info["AppliedToDimensions"]["Unit"] == "pixel"
    width, height = stored.size
    for region in _regions(meta):
        area = region["Area"]
        assert area["Unit"] == "normalized"
        x1 = (area["X"] - area["W"] / 2) * width
        x2 = (area["X"] + area["W"] / 2) * width
        y1 = (area["Y"] - area["H"] / 2) * height
        y2 = (area["Y"] + area["H"] / 2) * height
        for px, py in [((x1 + x2) / 2, (y1 + y2) / 2), (x1 + 3, y1 + 3), (x2 - 3, y2 - 3)]:
            assert _close(stored.getpixel((int(px), int(py))), RED), (region["Name"], px, py)
        if x1 > 6:
            assert _close(stored.getpixel((int(x1 - 5), int((y1 + y2) / 2))), GREY)


def _close(pixel: Any, colour: tuple[int, int, int]) -> bool:
    return all(abs(a - b) < 40 for a, b in zip(pixel, colour, strict=True))


def test_sidecars_beside_the_originals_carry_text_people_and_regions(
    tmp_path: Path, exiftool: Any
) -> None:
    stored = _story(tmp_path / "photos")
    originals = [frame.path for frame in stored.frames]
    before = _hashes(originals)
    report = write_sidecars(stored)
    sidecars = [tmp_path / "photos" / "beach.jpg.xmp", tmp_path / "photos" / "portrait.jpg.xmp"]
    assert list(report.written) == sidecars
    assert _hashes(originals) == before  # originals are never written
    first, second = exiftool(*sidecars)
    assert [first["Description"], second["Description"]] == TEXTS
    assert first["PersonInImage"] == ["Grandpa Joe"]
    assert second["PersonInImage"] == ["Grandpa Joe", "Maya"]
    assert [(r["Name"], r["Type"]) for r in _regions(first)] == [("Grandpa Joe", "Face")]
    assert [(r["Name"], r["Type"]) for r in _regions(second)] == [
        ("Grandpa Joe", "Face"),
        ("Maya", "Face"),
    ]
    # The objects get no region at all, so none can be taken for a face.
    assert all("ball" not in r["Name"] for m in (first, second) for r in _regions(m))
    # Geometry against the story: frame 1 as drawn; frame 2 on the stored (sideways) grid.
    joe = _regions(first)[0]["Area"]
    assert (joe["X"], joe["Y"], joe["W"], joe["H"]) == pytest.approx(
        ((40 + 120) / 2 / 300, (30 + 180) / 2 / 200, 80 / 300, 150 / 200), abs=1e-5
    )
    assert second["RegionInfo"]["AppliedToDimensions"]["W"] == 300  # stored 300x200
    maya = _regions(second)[1]["Area"]
    # Upright (u, v) on a 200x300 portrait is stored at (v, 200 - u) under orientation 6.
    assert (maya["X"], maya["Y"], maya["W"], maya["H"]) == pytest.approx(
        ((20 + 120) / 2 / 300, (200 - (120 + 190) / 2) / 200, 100 / 300, 70 / 200), abs=1e-5
    )
    _assert_regions_land_on_the_people(first, originals[0])
    _assert_regions_land_on_the_people(second, originals[1])


def test_an_existing_sidecar_keeps_its_keyword_and_face_region(
    tmp_path: Path, exiftool: Any
) -> None:
    stored = _story(tmp_path / "photos")
    sidecar = tmp_path / "photos" / "beach.jpg.xmp"
    sidecar.write_text(USER_SIDECAR, encoding="utf-8")
    write_sidecars(stored)
    write_sidecars(stored)  # twice: our regions are replaced, never piled up
    (meta,) = exiftool(sidecar)
    assert meta["Subject"] == ["Holiday"]
    assert meta["Rating"] == 4
    assert meta["TagsList"] == ["People/Aunt May"]  # digiKam's own namespace survives
    assert meta["Description"] == TEXTS[0]
    assert meta["PersonInImage"] == ["Aunt May", "Grandpa Joe"]
    assert [(r["Name"], r["Type"]) for r in _regions(meta)] == [
        ("Aunt May", "Face"),
        ("Grandpa Joe", "Face"),
    ]
    assert _regions(meta)[0]["Area"]["X"] == pytest.approx(0.8)
    text = sidecar.read_text(encoding="utf-8")
    assert 'xmlns:digiKam="http://www.digikam.org/ns/1.0/"' in text  # prefixes kept


def test_a_sidecar_can_be_named_photo_xmp(tmp_path: Path, exiftool: Any) -> None:
    stored = _story(tmp_path / "photos")
    report = write_sidecars(stored, naming=SidecarNaming.STEM)
    assert [p.name for p in report.written] == ["beach.xmp", "portrait.xmp"]
    assert exiftool(report.written[0])[0]["Description"] == TEXTS[0]


def test_a_folder_of_copies_with_sidecars(tmp_path: Path, exiftool: Any) -> None:
    stored = _story(tmp_path / "photos")
    report = write_sidecars(stored, tmp_path / "for Immich")
    names = sorted(p.name for p in (tmp_path / "for Immich").iterdir())
    assert names == ["beach.jpg", "beach.jpg.xmp", "portrait.jpg", "portrait.jpg.xmp"]
    assert len(report.written) == 4
    meta = exiftool(tmp_path / "for Immich" / "portrait.jpg.xmp")[0]
    assert meta["Description"] == TEXTS[1]
    _assert_regions_land_on_the_people(meta, tmp_path / "for Immich" / "portrait.jpg")
    with pytest.raises(SharingError, match="already exists"):
        write_sidecars(stored, tmp_path / "for Immich")


def test_captioned_copies_embed_the_xmp_and_leave_the_pixels_alone(
    tmp_path: Path, exiftool: Any
) -> None:
    stored = _story(tmp_path / "photos")
    before = _hashes([frame.path for frame in stored.frames])
    write_captioned_copies(stored, tmp_path / "copies")
    copies = [tmp_path / "copies" / "beach.jpg", tmp_path / "copies" / "portrait.jpg"]
    first, second = exiftool(*copies)
    assert [first["Description"], second["Description"]] == TEXTS
    assert second["PersonInImage"] == ["Grandpa Joe", "Maya"]
    assert second["Orientation"] == 6 and second["Make"] == "TestCam"
    _assert_regions_land_on_the_people(second, copies[1])
    assert _hashes([frame.path for frame in stored.frames]) == before
    for frame, copy in zip(stored.frames, copies, strict=True):
        with Image.open(frame.path) as a, Image.open(copy) as b:
            assert a.tobytes() == b.tobytes()  # the same picture, not re-encoded


USER_SIDECAR = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:digiKam="http://www.digikam.org/ns/1.0/"
    xmlns:mwg-rs="http://www.metadataworkinggroup.com/schemas/regions/"
    xmlns:stDim="http://ns.adobe.com/xap/1.0/sType/Dimensions#"
    xmlns:stArea="http://ns.adobe.com/xmp/sType/Area#"
    xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
   xmp:Rating="4">
   <dc:subject>
    <rdf:Bag>
     <rdf:li>Holiday</rdf:li>
    </rdf:Bag>
   </dc:subject>
   <digiKam:TagsList>
    <rdf:Seq>
     <rdf:li>People/Aunt May</rdf:li>
    </rdf:Seq>
   </digiKam:TagsList>
   <Iptc4xmpExt:PersonInImage>
    <rdf:Bag>
     <rdf:li>Aunt May</rdf:li>
    </rdf:Bag>
   </Iptc4xmpExt:PersonInImage>
   <mwg-rs:Regions rdf:parseType="Resource">
    <mwg-rs:AppliedToDimensions stDim:w="300" stDim:h="200" stDim:unit="pixel"/>
    <mwg-rs:RegionList>
     <rdf:Bag>
      <rdf:li>
       <rdf:Description mwg-rs:Name="Aunt May" mwg-rs:Type="Face">
        <mwg-rs:Area stArea:x="0.8" stArea:y="0.3" stArea:w="0.1" stArea:h="0.2"
          stArea:unit="normalized"/>
       </rdf:Description>
      </rdf:li>
     </rdf:Bag>
    </mwg-rs:RegionList>
   </mwg-rs:Regions>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>
"""
