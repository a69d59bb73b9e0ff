"""Reference sets: the stories model outputs are scored against, with their frames.

Two layouts are read:
- the StoryReasoning split as distributed: one parquet file, or a folder of them (columns
  ``story_id``, ``images``, ``frame_count``, ``chain_of_thought``, ``story``; ``images`` holds
  the encoded frames, as Hugging Face's Image feature stores them or as plain bytes);
- a folder of reference texts ``{story_id}.txt`` (a full output: ``<think>`` analysis, then the
  story), each optionally with its frames as image files in a folder ``{story_id}/``, in name
  order.

A reference's boxes are in pixels of its frames, so the frames' sizes are read (from the image
headers only) whenever frames are there. Stories are read one batch at a time: a split with its
images is hundreds of megabytes, and only one story's frames are needed at once.
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from desktop_app.errors import StorytellerError
from desktop_app.imaging import upright_size

PARQUET_COLUMNS = ("story_id", "images", "frame_count", "chain_of_thought", "story")
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
_BATCH_ROWS = 8  # a few stories' frames in memory at a time


class EvalError(StorytellerError):
    """A reference set or a run folder cannot be used; the message says what to do."""


@dataclass(frozen=True)
class ReferenceFrame:
    """One frame of a reference story: its size, and where its image is (bytes or a file)."""

    size: tuple[int, int]
    data: bytes | None = None
    path: Path | None = None


@dataclass(frozen=True)
class ReferenceStory:
    """A reference output (``<think>`` analysis, then story) and its frames, in order.

    ``frames`` is empty when the reference set has no images; ``frame_count`` is the number of
    photos the story has, when known.
    """

    story_id: str
    text: str
    frames: tuple[ReferenceFrame, ...] = ()
    frame_count: int | None = None

    @property
    def frame_sizes(self) -> tuple[tuple[int, int], ...] | None:
        return tuple(frame.size for frame in self.frames) if self.frames else None


def reference_text(chain_of_thought: str, story: str) -> str:
    """The dataset row as the model was trained to write it (docs/model-contract.md 3.1; the authors' join)."""
    return f"<think>\n{chain_of_thought}\n</think>\n{story}"


def _natural_key(path: Path) -> list[Any]:
    """ "frame2" before "frame10"."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def _image_size(source: bytes | Path, where: str) -> tuple[int, int]:
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            return upright_size(image)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as err:
        raise EvalError(
            f"{where} is not a readable image ({err}): replace the file, or download the "
            "reference set again"
        ) from None


# Hugging Face names a split's shards "test-00000-of-00001.parquet".
_SHARD_RE = re.compile(r"^(?P<split>[A-Za-z_]+)-\d+-of-\d+\.parquet$")


def _refuse_mixed_splits(folder: Path, files: list[Path]) -> None:
    """A dataset's data/ folder holds every split: scoring train and test together is a mistake."""
    splits = {m["split"] for f in files if (m := _SHARD_RE.match(f.name))}
    if len(splits) > 1:
        example = next(f for f in files if f.name.startswith("test")) if "test" in splits else None
        hint = f", e.g. {example}" if example else ""
        raise EvalError(
            f"{folder} holds the {', '.join(sorted(splits))} splits: give one split's "
            f"parquet file{hint}"
        )


class ReferenceSet:
    """A reference set on disk; iterate it for its stories, in the order they are stored.

    ``limit`` keeps only the first stories (a quick comparison need not tell all 626).
    """

    def __init__(self, path: Path, *, limit: int | None = None) -> None:
        if limit is not None and limit < 1:
            raise EvalError("the story limit must be at least 1")
        self.limit = limit
        path = Path(path).expanduser()
        if not path.exists():
            raise EvalError(
                f"{path} does not exist: give the StoryReasoning test split's parquet file (or "
                "its folder), or a folder of {story_id}.txt reference texts"
            )
        self.path = path
        if path.is_file():
            if path.suffix.lower() != ".parquet":
                raise EvalError(
                    f"{path} is not a parquet file: give the split's .parquet file, or a folder "
                    "of {story_id}.txt reference texts"
                )
            self._parquet: list[Path] = [path]
        else:
            self._parquet = sorted(path.glob("*.parquet"))
            _refuse_mixed_splits(path, self._parquet)
        self._texts: list[Path] = [] if self._parquet else sorted(path.glob("*.txt"))
        if not self._parquet and not self._texts:
            raise EvalError(
                f"{path} holds no .parquet files and no .txt reference texts: give the "
                "StoryReasoning split's parquet files, or a folder of {story_id}.txt texts"
            )
        self._files = [self._open_parquet(p) for p in self._parquet]

    @property
    def kind(self) -> str:
        return "parquet" if self._parquet else "texts"

    def __len__(self) -> int:
        if self._parquet:
            count = sum(file.metadata.num_rows for file in self._files)
        else:
            count = len(self._texts)
        return count if self.limit is None else min(count, self.limit)

    @staticmethod
    def _open_parquet(path: Path) -> Any:
        try:
            import pyarrow.parquet as pq
        except ModuleNotFoundError:
            raise EvalError(
                "reading parquet files needs pyarrow: install the eval extra "
                "(pip install 'storyteller[eval]'; the double-click app does not include it)"
            ) from None
        try:
            file = pq.ParquetFile(path)
        except Exception as err:  # pyarrow raises ArrowInvalid/OSError variants for bad files
            raise EvalError(
                f"{path} is not a readable parquet file ({err}): download it again"
            ) from None
        names = set(file.schema_arrow.names)
        missing = [c for c in PARQUET_COLUMNS if c not in names]
        if missing:
            raise EvalError(
                f"{path} has no column {', '.join(missing)}: it is not a StoryReasoning split "
                f"(expected columns {', '.join(PARQUET_COLUMNS)})"
            )
        return file

    def stories(self, *, with_images: bool = False) -> Iterator[ReferenceStory]:
        """Every story; ``with_images`` keeps each frame's encoded bytes (for generation)."""
        stories = self._all_stories(with_images)
        yield from (stories if self.limit is None else itertools.islice(stories, self.limit))

    def _all_stories(self, with_images: bool) -> Iterator[ReferenceStory]:
        if self._parquet:
            for path, file in zip(self._parquet, self._files, strict=True):
                yield from self._parquet_stories(path, file, with_images)
        else:
            for text_path in self._texts:
                yield self._text_story(text_path)

    def _parquet_stories(
        self, path: Path, file: Any, with_images: bool
    ) -> Iterator[ReferenceStory]:
        try:
            batches = file.iter_batches(batch_size=_BATCH_ROWS, columns=list(PARQUET_COLUMNS))
            for batch in batches:
                for row in batch.to_pylist():
                    yield self._parquet_story(path, row, with_images)
        except EvalError:
            raise
        except Exception as err:  # a truncated or corrupt file fails part-way through
            raise EvalError(f"{path} is corrupt ({err}): download it again") from None

    @staticmethod
    def _parquet_story(path: Path, row: dict[str, Any], with_images: bool) -> ReferenceStory:
        story_id = str(row["story_id"])
        frames = []
        for index, item in enumerate(row["images"] or [], start=1):
            data = item.get("bytes") if isinstance(item, dict) else item
            where = f"{path.name}, story {story_id}, frame {index}"
            if not isinstance(data, bytes | bytearray):
                raise EvalError(f"{where} holds no image bytes: download the split again")
            size = _image_size(bytes(data), where)
            frames.append(ReferenceFrame(size, bytes(data) if with_images else None))
        count = row["frame_count"]
        return ReferenceStory(
            story_id=story_id,
            text=reference_text(row["chain_of_thought"] or "", row["story"] or ""),
            frames=tuple(frames),
            frame_count=int(count) if count is not None else len(frames) or None,
        )

    @staticmethod
    def _text_story(text_path: Path) -> ReferenceStory:
        story_id = text_path.stem
        try:
            text = text_path.read_bytes().decode("utf-8", errors="replace")
        except OSError as err:
            raise EvalError(
                f"{text_path} cannot be read ({err.strerror or err}): check its permissions"
            ) from None
        frame_dir = text_path.with_suffix("")
        images = (
            sorted(
                (p for p in frame_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
                key=_natural_key,
            )
            if frame_dir.is_dir()
            else []
        )
        frames = tuple(ReferenceFrame(_image_size(p, str(p)), path=p) for p in images)
        return ReferenceStory(story_id, text, frames, len(frames) or None)
