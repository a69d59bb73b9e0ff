"""A small sample album for GUI tests and screenshots: four drawn photos and a matching story.

The photos are simple drawings (a girl, her dog, a red kite, her grandfather, a tree, a bench)
so that the boxes in the story visibly land on something. The story is written the way
QwenStoryteller writes: a ``<think>`` analysis with per-frame tables whose boxes are in pixels of
the image as the model saw it (the prepared size for the chosen detail level), then grounded
story text. Boxes are computed from the same rectangles the drawings use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from desktop_app.engine.api import Detail
from desktop_app.engine.images import prepared_size_for
from desktop_app.engine.replay_backend import ReplayBackend

PHOTO_SIZE = (896, 672)  # original pixels of every sample photo
DETAIL = Detail.NORMAL
PREPARED_SIZE = prepared_size_for(PHOTO_SIZE, DETAIL.token_budget)

Rect = tuple[int, int, int, int]


@dataclass(frozen=True)
class Scene:
    """What one photo shows: entity id -> rectangle in original pixels."""

    name: str
    sky: str
    ground: str
    boxes: dict[str, Rect]


SCENES: tuple[Scene, ...] = (
    Scene(
        "01-park-morning.jpg",
        "#a8d8f0",
        "#6bb04a",
        {
            "bg1": (600, 90, 860, 560),  # the old oak
            "char1": (250, 200, 390, 560),  # Maya
            "obj1": (390, 210, 500, 340),  # the red kite in her hand
            "char2": (90, 420, 250, 560),  # Biscuit the dog
        },
    ),
    Scene(
        "02-running.jpg",
        "#9fd0ee",
        "#62a843",
        {
            "obj1": (560, 60, 680, 190),  # the kite in the air
            "char1": (300, 230, 440, 580),
            "char2": (110, 450, 270, 590),
            "bg2": (0, 470, 896, 672),  # the hill
        },
    ),
    Scene(
        "03-stuck-in-tree.jpg",
        "#b7cfe0",
        "#5f9e46",
        {
            "bg1": (470, 40, 860, 600),
            "obj1": (600, 120, 700, 230),  # kite caught in the branches
            "char1": (250, 250, 380, 600),
            "char3": (60, 170, 220, 600),  # Grandpa Joe
            "obj2": (200, 110, 232, 520),  # his walking stick
        },
    ),
    Scene(
        "04-sunset-bench.jpg",
        "#f4a460",
        "#4f8a3c",
        {
            "obj3": (200, 430, 720, 560),  # the bench
            "char3": (230, 230, 390, 540),
            "char1": (450, 300, 570, 540),
            "obj1": (470, 400, 560, 480),  # the kite on her lap
            "char2": (600, 470, 760, 600),
        },
    ),
)


def _person(
    draw: ImageDraw.ImageDraw, rect: Rect, coat: str, hair: str, sitting: bool = False
) -> None:
    x1, y1, x2, y2 = rect
    w, h = x2 - x1, y2 - y1
    head = w * 0.32
    cx = (x1 + x2) / 2
    draw.ellipse(
        (cx - head, y1, cx + head, y1 + 2 * head), fill="#f1c27d", outline="#5a3d1e", width=3
    )
    draw.chord((cx - head, y1 - 4, cx + head, y1 + head * 1.2), 180, 360, fill=hair)
    body_top = y1 + 2 * head
    body_bottom = y1 + h * (0.8 if sitting else 0.68)
    draw.rounded_rectangle(
        (x1 + w * 0.12, body_top, x2 - w * 0.12, body_bottom),
        18,
        fill=coat,
        outline="#333",
        width=3,
    )
    leg = "#30302e"
    draw.line((cx - w * 0.15, body_bottom, cx - w * 0.2, y2), fill=leg, width=12)
    draw.line((cx + w * 0.15, body_bottom, cx + w * 0.2, y2), fill=leg, width=12)
    draw.ellipse(
        (cx - head * 0.45, y1 + head * 0.8, cx - head * 0.2, y1 + head * 1.05), fill="#222"
    )
    draw.ellipse(
        (cx + head * 0.2, y1 + head * 0.8, cx + head * 0.45, y1 + head * 1.05), fill="#222"
    )
    draw.arc(
        (cx - head * 0.4, y1 + head * 1.1, cx + head * 0.4, y1 + head * 1.6),
        20,
        160,
        fill="#7a2b1d",
        width=3,
    )


def _dog(draw: ImageDraw.ImageDraw, rect: Rect) -> None:
    x1, y1, x2, y2 = rect
    w, h = x2 - x1, y2 - y1
    draw.ellipse(
        (x1 + w * 0.1, y1 + h * 0.3, x2 - w * 0.15, y1 + h * 0.75),
        fill="#a0522d",
        outline="#4a2510",
        width=3,
    )
    draw.ellipse((x2 - w * 0.38, y1, x2, y1 + h * 0.45), fill="#a0522d", outline="#4a2510", width=3)
    draw.ellipse((x2 - w * 0.36, y1 + h * 0.05, x2 - w * 0.26, y1 + h * 0.35), fill="#5c2e12")
    draw.ellipse((x2 - w * 0.12, y1 + h * 0.15, x2 - w * 0.06, y1 + h * 0.22), fill="#111")
    for fx in (0.2, 0.35, 0.6, 0.72):
        draw.line((x1 + w * fx, y1 + h * 0.68, x1 + w * fx, y2), fill="#4a2510", width=9)
    draw.line((x1 + w * 0.12, y1 + h * 0.45, x1, y1 + h * 0.2), fill="#4a2510", width=7)


def _kite(draw: ImageDraw.ImageDraw, rect: Rect, string_to: tuple[int, int] | None) -> None:
    x1, y1, x2, y2 = rect
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    top, bottom = (cx, y1), (cx, y2 - (y2 - y1) * 0.25)
    draw.polygon(
        [top, (x2, cy - (y2 - y1) * 0.1), bottom, (x1, cy - (y2 - y1) * 0.1)],
        fill="#d62828",
        outline="#5a0000",
    )
    draw.line((top, bottom), fill="#5a0000", width=2)
    draw.line((bottom[0], bottom[1], bottom[0] - 10, y2), fill="#333", width=2)
    for i in range(3):
        by = bottom[1] + 8 + i * 9
        draw.polygon(
            [(bottom[0] - 6, by), (bottom[0] + 6, by - 4), (bottom[0] + 6, by + 4)], fill="#f7b801"
        )
    if string_to is not None:
        draw.line((bottom[0], bottom[1], *string_to), fill="#222", width=2)


def _tree(draw: ImageDraw.ImageDraw, rect: Rect) -> None:
    x1, y1, x2, y2 = rect
    w, h = x2 - x1, y2 - y1
    draw.rectangle((x1 + w * 0.42, y1 + h * 0.45, x1 + w * 0.58, y2), fill="#6b4423")
    for dx, dy, r in ((0.5, 0.28, 0.34), (0.28, 0.38, 0.24), (0.72, 0.38, 0.24), (0.5, 0.12, 0.22)):
        cx, cy, rr = x1 + w * dx, y1 + h * dy, w * r
        draw.ellipse((cx - rr, cy - rr, cx + rr, cy + rr), fill="#2e7d32")


def _bench(draw: ImageDraw.ImageDraw, rect: Rect) -> None:
    x1, y1, x2, y2 = rect
    h = y2 - y1
    draw.rectangle((x1, y1, x2, y1 + h * 0.25), fill="#8b5a2b", outline="#3e2411", width=3)
    draw.rectangle(
        (x1, y1 + h * 0.45, x2, y1 + h * 0.62), fill="#8b5a2b", outline="#3e2411", width=3
    )
    for fx in (0.06, 0.94):
        lx = x1 + (x2 - x1) * fx
        draw.rectangle((lx - 8, y1 + h * 0.6, lx + 8, y2), fill="#3e2411")


def draw_scene(scene: Scene) -> Image.Image:
    """The photo of ``scene`` at ``PHOTO_SIZE``."""
    image = Image.new("RGB", PHOTO_SIZE, scene.sky)
    draw = ImageDraw.Draw(image)
    horizon = int(PHOTO_SIZE[1] * 0.62)
    draw.rectangle((0, horizon, PHOTO_SIZE[0], PHOTO_SIZE[1]), fill=scene.ground)
    if scene.name.startswith("04"):
        draw.ellipse((60, 250, 200, 390), fill="#ffdd57")
    else:
        draw.ellipse((40, 30, 130, 120), fill="#fff4b0")
    if "bg2" in scene.boxes:
        draw.ellipse((-200, horizon - 60, 1100, horizon + 400), fill="#7cc257")
    boxes = scene.boxes
    if "bg1" in boxes:
        _tree(draw, boxes["bg1"])
    if "obj3" in boxes:
        _bench(draw, boxes["obj3"])
    if "char3" in boxes:
        _person(draw, boxes["char3"], "#1f4e99", "#dddddd", sitting=scene.name.startswith("04"))
    if "obj2" in boxes:
        x1, y1, x2, y2 = boxes["obj2"]
        draw.line(((x1 + x2) / 2, y1, (x1 + x2) / 2, y2), fill="#5d3a1a", width=10)
    if "char1" in boxes:
        _person(draw, boxes["char1"], "#f2c12e", "#3b2314", sitting=scene.name.startswith("04"))
    if "char2" in boxes:
        _dog(draw, boxes["char2"])
    if "obj1" in boxes:
        hand = None
        if scene.name.startswith("02"):
            x1, y1, x2, _ = boxes["char1"]
            hand = (x2 - 10, y1 + 150)
        _kite(draw, boxes["obj1"], hand)
    return image


def write_photos(folder: Path) -> list[Path]:
    """Write the four sample photos into ``folder``; return their paths in story order."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for scene in SCENES:
        path = folder / scene.name
        draw_scene(scene).save(path, quality=90)
        paths.append(path)
    return paths


def prepared_box(rect: Rect) -> tuple[int, int, int, int]:
    """``rect`` (original pixels) in the pixels of the prepared image the model saw."""
    sx = PREPARED_SIZE[0] / PHOTO_SIZE[0]
    sy = PREPARED_SIZE[1] / PHOTO_SIZE[1]
    x1, y1, x2, y2 = rect
    return round(x1 * sx), round(y1 * sy), round(x2 * sx), round(y2 * sy)


def _box(frame: int, entity_id: str) -> str:
    return ", ".join(str(v) for v in prepared_box(SCENES[frame - 1].boxes[entity_id]))


def story_text() -> str:
    """A realistic QwenStoryteller output for the four sample photos."""
    b = _box
    return f"""<think>
## Image 1

### Characters
| Character ID | Name | Description | Emotions | Actions | Narrative Function | Bounding Box |
|---|---|---|---|---|---|---|
| char1 | Maya | Girl in a yellow raincoat with dark hair | Excited, hopeful | Holds up a red kite | Protagonist | {b(1, "char1")} |
| char2 | Biscuit | Small brown dog | Playful | Sits beside char1, wagging its tail | Companion | {b(1, "char2")} |

### Objects
| Object ID | Description | Function | Interaction | Narrative Function | Bounding Box |
|---|---|---|---|---|---|
| obj1 | Red diamond kite with a yellow tail | Toy | Held by char1 | Central object of desire | {b(1, "obj1")} |
| bg1 | Large old oak tree | Landmark | Stands behind char1 | Foreshadows the obstacle | {b(1, "bg1")} |

### Setting
| Setting Element | Description | Mood | Time | Narrative Function |
|---|---|---|---|---|
| Location | A grassy park | Open, cheerful | Morning | Establishes the place of play |
| Weather | Clear sky with a light breeze | Promising | Morning | Makes kite flying possible |

## Image 2

### Characters
| Character ID | Name | Description | Emotions | Actions | Narrative Function | Bounding Box |
|---|---|---|---|---|---|---|
| char1 | Maya | Girl in a yellow raincoat | Joyful | Runs across the hill, pulling the kite string | Protagonist | {b(2, "char1")} |
| char2 | Biscuit | Small brown dog | Excited | Chases after char1 | Companion | {b(2, "char2")} |

### Objects
| Object ID | Description | Function | Interaction | Narrative Function | Bounding Box |
|---|---|---|---|---|---|
| obj1 | Red kite high in the air | Toy | Flown by char1 | Symbol of freedom | {b(2, "obj1")} |
| bg2 | Gentle green hill | Terrain | char1 and char2 run over it | Stage for the action | {b(2, "bg2")} |

### Setting
| Setting Element | Description | Mood | Time | Narrative Function |
|---|---|---|---|---|
| Environment | Open hillside in the park | Lively | Late morning | Gives room to run |

## Image 3

### Characters
| Character ID | Name | Description | Emotions | Actions | Narrative Function | Bounding Box |
|---|---|---|---|---|---|---|
| char1 | Maya | Girl in a yellow raincoat | Worried | Looks up at the tree | Protagonist | {b(3, "char1")} |
| char3 | Grandpa Joe | Older man with grey hair in a blue jacket | Calm, kind | Arrives with a long walking stick | Helper | {b(3, "char3")} |

### Objects
| Object ID | Description | Function | Interaction | Narrative Function | Bounding Box |
|---|---|---|---|---|---|
| obj1 | Red kite caught in the branches | Toy | Stuck out of char1's reach | The problem | {b(3, "obj1")} |
| obj2 | Long wooden walking stick | Tool | Held by char3 | Means of rescue | {b(3, "obj2")} |
| bg1 | Large old oak tree | Obstacle | Holds obj1 in its branches | Antagonist force | {b(3, "bg1")} |

### Setting
| Setting Element | Description | Mood | Time | Narrative Function |
|---|---|---|---|---|
| Location | Under the old oak | Tense | Midday | Place of the conflict |
| Lighting | Clouds passing over the sun | Uncertain | Midday | Mirrors char1's worry |

## Image 4

### Characters
| Character ID | Name | Description | Emotions | Actions | Narrative Function | Bounding Box |
|---|---|---|---|---|---|---|
| char3 | Grandpa Joe | Older man in a blue jacket | Content | Sits on the bench | Helper | {b(4, "char3")} |
| char1 | Maya | Girl in a yellow raincoat | Happy, tired | Sits holding the kite on her lap | Protagonist | {b(4, "char1")} |
| char2 | Biscuit | Small brown dog | Sleepy | Lies at the end of the bench | Companion | {b(4, "char2")} |

### Objects
| Object ID | Description | Function | Interaction | Narrative Function | Bounding Box |
|---|---|---|---|---|---|
| obj3 | Wooden park bench | Seat | char1 and char3 sit on it | Place of rest | {b(4, "obj3")} |
| obj1 | Red kite, a little torn | Toy | Resting on char1's lap | Sign of the adventure | {b(4, "obj1")} |

### Setting
| Setting Element | Description | Mood | Time | Narrative Function |
|---|---|---|---|---|
| Lighting | Warm orange sunset | Peaceful | Evening | Closes the day |

## Narrative Structure
| Narrative Phase | Description | Key Events | Images |
|---|---|---|---|
| Introduction | Maya and Biscuit bring a new kite to the park | The kite is ready to fly | 1 |
| Development | The kite climbs into the sky | Maya runs, Biscuit chases | 2 |
| Conflict | The kite is caught in the old oak | Maya cannot reach it; Grandpa Joe arrives | 3 |
| Conclusion | The kite is rescued and the day ends together | They rest on the bench at sunset | 4 |
</think>
<gdi image1>
On the first windy morning of spring, <gdo char1>Maya</gdo> <gda char1>held her new red kite high</gda> above her head. <gdo obj1>The kite</gdo> rattled in the breeze as if it could not wait. Beside her, <gdo char2>Biscuit</gdo> <gda char2>thumped his tail</gda> against the grass, and behind them <gdl bg1>the old oak</gdl> creaked and watched.
</gdi>
<gdi image2>
<gdo char1>Maya</gdo> <gda char1>ran down the hill</gda> with the string singing in her fingers, and <gdo obj1>the kite</gdo> leapt into the sky. <gdo char2>Biscuit</gdo> <gda char2>bounded after her</gda>, barking at the red shape that swooped over <gdl bg2>the hill</gdl>.
</gdi>
<gdi image3>
Then the wind turned. <gdo obj1>The kite</gdo> dived and tangled itself in the branches of <gdl bg1>the old oak</gdl>. <gdo char1>Maya</gdo> <gda char1>stared up</gda>, her chin trembling. That was when <gdo char3>Grandpa Joe</gdo> <gda char3>came walking over</gda>, tapping <gdo obj2>his long stick</gdo> on the path. "Let's see what we can do," he said, and <gda char3>reached up with the stick</gda>.
</gdi>
<gdi image4>
By sunset the three of them sat together on <gdo obj3>the bench</gdo>. <gdo char1>Maya</gdo> <gda char1>smoothed the torn corner</gda> of <gdo obj1>her kite</gdo> on her lap, <gdo char3>Grandpa Joe</gdo> <gda char3>hummed an old song</gda>, and <gdo char2>Biscuit</gdo> <gda char2>fell asleep</gda> at their feet, dreaming of red things in the sky.
</gdi>"""


def scripted_backend(output: str, token_delay_s: float = 0.0) -> ReplayBackend:
    """A backend replaying ``output``; photos are 'prepared' to the sample's prepared size."""
    return ReplayBackend(output, token_delay_s=token_delay_s, prepared_size=PREPARED_SIZE)
