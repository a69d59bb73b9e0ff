"""Helpers for the library tests: a small story in the model's format, generated photos."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

# A two-frame story in the model's format (docs/model-contract.md, section 3), small enough to stream fast.
STORY_TEXT = """<think>
## Image 1

### Characters
| Character ID | Name | Description | Emotions | Actions | Narrative Function | Bounding Box |
|---|---|---|---|---|---|---|
| char1 | Maya | Girl in a yellow raincoat | Curious | Kneels by the water | Protagonist | 4, 8, 21, 30 |

### Objects
| Object ID | Description | Function | Interaction | Narrative Function | Bounding Box |
|---|---|---|---|---|---|
| obj1 | Paper boat | Toy | Held by char1 | Catalyst | 12, 10, 19, 15 |

### Setting
| Setting Element | Description | Mood | Time | Narrative Function |
|---|---|---|---|---|
| Weather | Light rain | Quiet | Afternoon | Sets the tone |

## Image 2

### Characters
| Character ID | Name | Description | Emotions | Actions | Narrative Function | Bounding Box |
|---|---|---|---|---|---|---|
| char1 | Maya | Girl in a yellow raincoat | Happy | Watches the boat sail | Protagonist | 2, 6, 20, 28 |

### Objects
| Object ID | Description | Function | Interaction | Narrative Function | Bounding Box |
|---|---|---|---|---|---|
| obj1 | Paper boat | Toy | Floats away | Resolution | 20, 12, 30, 18 |

### Setting
| Setting Element | Description | Mood | Time | Narrative Function |
|---|---|---|---|---|
| Location | Puddle in a park | Bright | Afternoon | Stage |

## Narrative Structure
| Narrative Phase | Description | Key Events | Images |
|---|---|---|---|
| Introduction | Maya launches a boat | The boat touches water | 1 |
| Conclusion | The boat sails | Maya smiles | 2 |
</think>
<gdi image1>
<gdo char1>Maya</gdo> <gda char1>set the boat down</gda> on the puddle and held her breath.
</gdi>
<gdi image2>
<gdo obj1>The paper boat</gdo> drifted off, and <gdo char1>she</gdo> laughed.
</gdi>
"""


def make_photo(
    path: Path,
    *,
    size: tuple[int, int] = (40, 30),
    color: tuple[int, int, int] = (200, 40, 40),
    captured_at: str | None = None,
    orientation: int | None = None,
    fmt: str = "JPEG",
) -> Path:
    """Write a small real image; ``captured_at`` as EXIF ``YYYY:MM:DD HH:MM:SS``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", size, color)
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    if captured_at is not None:
        exif.get_ifd(0x8769)[0x9003] = captured_at
    if fmt == "JPEG":
        image.save(path, fmt, exif=exif.tobytes(), quality=90)
    else:
        image.save(path, fmt)
    return path


def distinct_photos(folder: Path, count: int, *, prefix: str = "photo") -> list[Path]:
    """``count`` photos with different content (and so different hashes)."""
    return [
        make_photo(folder / f"{prefix}{index:02d}.jpg", color=(index * 7 % 256, 90, 200 - index))
        for index in range(1, count + 1)
    ]
