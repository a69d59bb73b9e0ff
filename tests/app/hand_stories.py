"""Hand-written stories in the model's layout, and photos that show where their boxes are."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw

Box = tuple[int, int, int, int]
RED = (230, 20, 20)
GREY = (128, 128, 128)


@dataclass(frozen=True)
class HandFrame:
    """One frame: characters ``(id, name, box)``, objects ``(id, description, box)`` and the
    story's text for it (tags written around the first mention of each id)."""

    characters: Sequence[tuple[str, str, Box]] = ()
    objects: Sequence[tuple[str, str, Box]] = ()
    text: str = ""
    extra_ids: Sequence[str] = field(default_factory=tuple)


def _box(box: Box) -> str:
    return ",".join(str(v) for v in box)


def story_text(frames: Sequence[HandFrame]) -> str:
    """The raw output of a story with these frames (``## Image N`` tables, then ``<gdi>``)."""
    lines = ["<think>"]
    for index, frame in enumerate(frames, 1):
        lines += [
            f"## Image {index}",
            "",
            "### Characters",
            "| Character ID | Name | Description | Emotions | Actions | Narrative Function "
            "| Bounding Box |",
            "|---|---|---|---|---|---|---|",
        ]
        for cid, name, box in frame.characters:
            lines.append(
                f"| {cid} | {name} | {name} in a coat | Calm | Stands | Lead | {_box(box)} |"
            )
        lines += [
            "",
            "### Objects",
            "| Object ID | Description | Function | Interaction | Narrative Function "
            "| Bounding Box |",
            "|---|---|---|---|---|---|",
        ]
        for oid, description, box in frame.objects:
            lines.append(f"| {oid} | {description} | Toy | Held | Prop | {_box(box)} |")
        lines += [
            "",
            "### Setting",
            "| Setting Element | Description | Mood | Time | Narrative Function |",
            "|---|---|---|---|---|",
            "",
        ]
    lines.append("</think>")
    for index, frame in enumerate(frames, 1):
        lines.append(f"<gdi image{index}>")
        lines.append(frame.text or f"Frame {index} happens.")
        lines.append("</gdi>")
    return "\n".join(lines) + "\n"


def photo_with_boxes(
    path: Path,
    size: tuple[int, int],
    boxes: Sequence[Box],
    *,
    orientation: int = 1,
    exif_extra: dict[int, object] | None = None,
    gps: bool = False,
) -> Path:
    """A JPEG that looks ``size`` (upright) with a red rectangle at each box (upright pixels).

    With ``orientation`` 6 its pixels are stored turned a quarter to the left, so a reader that
    applies the orientation shows the upright picture; ``gps`` adds a GPS position.
    """
    upright = Image.new("RGB", size, GREY)
    draw = ImageDraw.Draw(upright)
    for box in boxes:
        draw.rectangle(box, fill=RED)
    stored = upright
    if orientation == 6:
        stored = upright.transpose(Image.Transpose.ROTATE_90)  # undone by the reader's 270
    elif orientation != 1:
        raise ValueError("only orientations 1 and 6 are drawn")
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "TestCam"  # Make: a tag that must survive
    for tag, value in (exif_extra or {}).items():
        exif[tag] = value
    if gps:  # Pillow writes a sub-directory given as a dict
        exif[0x8825] = {1: "N", 2: (51.0, 30.0, 12.0), 3: "W", 4: (0.0, 7.0, 39.0)}
    path.parent.mkdir(parents=True, exist_ok=True)
    stored.save(path, "JPEG", quality=95, exif=exif)
    return path
