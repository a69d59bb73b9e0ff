"""Hand-made reference sets: StoryReasoning-style outputs and parquet files the tests write."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

CHARACTERS = (
    "### Characters\n"
    "| Character ID | Name | Description | Emotions | Actions | Narrative Function | Bounding Box |\n"
    "|--------------|------|-------------|----------|---------|-------------------|--------------|\n"
)
OBJECTS = (
    "### Objects\n"
    "| Object ID | Description | Function | Interaction | Narrative Function | Bounding Box |\n"
    "|-----------|-------------|----------|------------|-------------------|--------------|\n"
)


def analysis(frames: Sequence[tuple[Sequence[str], Sequence[tuple[str, str]]]]) -> str:
    """The ``<think>`` content for frames of (character boxes, (description, box) objects)."""
    parts = []
    for index, (characters, objects) in enumerate(frames, start=1):
        rows = "".join(
            f"| char{k} | Maya | Girl | Calm | Waves | Hero | {box} |\n"
            for k, box in enumerate(characters, 1)
        )
        things = "".join(
            f"| obj{k} | {d} | Toy | Held | Prop | {box} |\n"
            for k, (d, box) in enumerate(objects, 1)
        )
        parts.append(f"## Image {index}\n\n{CHARACTERS}{rows}\n{OBJECTS}{things}\n")
    return "\n".join(parts)


def story(frames: int, text: str = "Maya sets the paper boat down on the puddle.") -> str:
    return "\n\n".join(f"<gdi image{i}>\n{text}\n</gdi>" for i in range(1, frames + 1))


def output(
    frames: Sequence[tuple[Sequence[str], Sequence[tuple[str, str]]]], text: str | None = None
) -> str:
    """A whole model output: analysis, then one story segment per frame."""
    body = story(len(frames)) if text is None else story(len(frames), text)
    return f"<think>\n{analysis(frames)}\n</think>\n{body}"


def png(size: tuple[int, int], colour: tuple[int, int, int] = (90, 120, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def write_split(path: Path, rows: Sequence[tuple[str, Sequence[bytes], str, str]]) -> Path:
    """A parquet file shaped like the StoryReasoning split: (story_id, frames, analysis, story).

    ``images`` is a list of {bytes, path} structs, as Hugging Face's Image feature stores it.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    table = pa.table(
        {
            "story_id": pa.array([r[0] for r in rows], pa.string()),
            "images": pa.array(
                [[{"bytes": b, "path": None} for b in r[1]] for r in rows], pa.list_(image)
            ),
            "frame_count": pa.array([len(r[1]) for r in rows], pa.int64()),
            "chain_of_thought": pa.array([r[2] for r in rows], pa.string()),
            "story": pa.array([r[3] for r in rows], pa.string()),
        }
    )
    pq.write_table(table, path)
    return path
