"""The PDF export read back with a real PDF reader (pypdf): every frame's photo is on the same
page as its text, a frame is never split, and the paper follows the locale (Letter or A4)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pypdf  # the test extra's PDF reader
import pytest
import ui_sample
from PIL import Image, ImageDraw
from PySide6.QtCore import QLocale

from desktop_app.app.stored_story import FrameGeometry, StoredStory
from desktop_app.ui.exporting import export_story

THUMB = (24, 18)  # photos are compared at this size: enough to tell the test photos apart


@pytest.fixture
def default_locale() -> Iterator[None]:
    """Restore the application's default locale after a test that sets it."""
    before = QLocale()
    yield
    QLocale.setDefault(before)


def _sample_story(photos: list[Path]) -> StoredStory:
    frames = [
        FrameGeometry(i, path, ui_sample.PHOTO_SIZE, ui_sample.PREPARED_SIZE)
        for i, path in enumerate(photos, start=1)
    ]
    return StoredStory.parse(ui_sample.story_text(), frames)


def _long_story(folder: Path, count: int) -> StoredStory:
    """``count`` frames whose photos are told apart by colour and whose texts differ in length
    (one to nine sentences), so page breaks fall at different places within a page."""
    folder.mkdir()
    frames, blocks = [], []
    for index in range(1, count + 1):
        hue = (index * 47) % 256
        image = Image.new("HSV", (640, 480), (hue, 200, 230)).convert("RGB")
        ImageDraw.Draw(image).rectangle(
            (40 * (index % 8), 60, 40 * (index % 8) + 200, 300), "white"
        )
        path = folder / f"{index:02d}.jpg"
        image.save(path, quality=92)
        frames.append(FrameGeometry(index, path, (640, 480), (644, 476)))
        sentences = " ".join(
            f"Sentence {n} of frame {index} walks on through the long afternoon light."
            for n in range(1, 2 + (index * 5) % 9)
        )
        blocks.append(
            f"<gdi image{index}>\nWord{index}start <gdo char1>Maya</gdo> "
            f"<gda char1>ran</gda> on. {sentences} Word{index}end.\n</gdi>"
        )
    analysis = "".join(
        f"## Image {i}\n\n### Characters\n"
        "| Character ID | Name | Description | Emotions | Actions | Narrative Function | "
        "Bounding Box |\n|---|---|---|---|---|---|---|\n"
        f"| char1 | Maya | A girl | Glad | Runs | Hero | 10, 10, 200, 300 |\n\n"
        for i in range(1, count + 1)
    )
    raw = f"<think>\n{analysis}</think>\n" + "\n".join(blocks)
    return StoredStory.parse(raw, frames)


def _squash(text: str) -> str:
    """Text without whitespace, ligatures spelled out: a PDF reader puts line breaks where
    the layout wrapped and reads "fi" as the one glyph the font drew."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def _thumb(image: Image.Image) -> bytes:
    return image.convert("RGB").resize(THUMB, Image.Resampling.BILINEAR).tobytes()


def _distance(a: bytes, b: bytes) -> float:
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)


def _read_pages(pdf: Path, stored: StoredStory) -> list[tuple[str, list[int]]]:
    """Each page's text (whitespace removed) and the frames whose photos are drawn on it,
    each image told by the nearest of the story's photos."""
    references = {frame.index: _thumb(Image.open(frame.path)) for frame in stored.frames}
    pages = []
    for page in pypdf.PdfReader(pdf).pages:
        shown = []
        for picture in page.images:
            thumb = _thumb(picture.image)
            shown.append(min(references, key=lambda i: _distance(thumb, references[i])))
        pages.append((_squash(page.extract_text()), shown))
    return pages


def _assert_frames_whole_beside_their_photos(pdf: Path, stored: StoredStory) -> int:
    """Every frame's heading, whole text and photo on one page, in order; returns the pages."""
    pages = _read_pages(pdf, stored)
    display = stored.display()
    where: dict[int, int] = {}
    for frame in display.frames:
        assert frame.index is not None
        text = _squash(frame.plain())
        holding = [n for n, (page_text, _) in enumerate(pages) if text in page_text]
        assert len(holding) == 1, f"frame {frame.index}'s text is not whole on one page"
        page_number = holding[0]
        page_text, photos = pages[page_number]
        assert _squash(frame.heading) in page_text
        assert frame.index in photos, (
            f"frame {frame.index}'s text is on page {page_number + 1} but its photo is not "
            f"(that page shows the photos of frames {photos})"
        )
        where[frame.index] = page_number
    assert list(where.values()) == sorted(where.values())  # frames in story order
    shown = [index for _, photos in pages for index in photos]
    assert shown == sorted(where)  # each photo once, nothing else drawn
    return len(pages)


def test_each_sample_frame_is_on_one_page_with_its_photo(
    qapp: Any, tmp_path: Path, sample_photos: list[Path]
) -> None:  # qapp: Qt lays out the text with the application's fonts
    stored = _sample_story(sample_photos)
    pdf = export_story("pdf", tmp_path / "kite-day.pdf", stored, "Kite day")
    _assert_frames_whole_beside_their_photos(pdf, stored)
    first = _squash(pypdf.PdfReader(pdf).pages[0].extract_text())
    assert first.startswith("Kiteday")  # the title heads the first page


def test_a_longer_story_breaks_pages_between_frames_only(qapp: Any, tmp_path: Path) -> None:
    stored = _long_story(tmp_path / "photos", 12)
    pdf = export_story("pdf", tmp_path / "long.pdf", stored, "A long day")
    pages = _assert_frames_whole_beside_their_photos(pdf, stored)
    assert pages >= 3
    reader = pypdf.PdfReader(pdf)
    for number, page in enumerate(reader.pages, start=1):
        assert re.search(rf"\b{number}\s*/\s*{len(reader.pages)}\s*$", page.extract_text())


def test_a_frame_longer_than_a_page_goes_on_over_the_next(qapp: Any, tmp_path: Path) -> None:
    photo = tmp_path / "one.jpg"
    Image.new("RGB", (640, 480), "#3070c0").save(photo)
    words = " ".join(f"line{n} goes on and on about the weather." for n in range(400))
    raw = f"<gdi image1>\nFirststart {words} Lastend.\n</gdi>"
    stored = StoredStory.parse(raw, [FrameGeometry(1, photo, (640, 480), (644, 476))])
    pdf = export_story("pdf", tmp_path / "long-frame.pdf", stored, "Weather")
    reader = pypdf.PdfReader(pdf)
    assert len(reader.pages) >= 3
    text = _squash("".join(page.extract_text() for page in reader.pages))
    for n in range(400):  # nothing lost or cut between pages
        assert f"line{n}goesonandonabouttheweather." in text
    assert len(reader.pages[0].images) == 1


@pytest.mark.parametrize(
    ("locale", "size_pt"),
    [
        ("en_US", (612, 792)),
        ("fr_CA", (612, 792)),
        ("de_DE", (595, 842)),
        ("en_GB", (595, 842)),
    ],
)
def test_the_paper_follows_the_locale(
    qapp: Any,
    tmp_path: Path,
    sample_photos: list[Path],
    default_locale: None,
    locale: str,
    size_pt: tuple[int, int],
) -> None:
    QLocale.setDefault(QLocale(locale))
    pdf = export_story("pdf", tmp_path / "story.pdf", _sample_story(sample_photos), "Kite day")
    for page in pypdf.PdfReader(pdf).pages:
        box = page.mediabox
        assert (round(float(box.width)), round(float(box.height))) == size_pt
