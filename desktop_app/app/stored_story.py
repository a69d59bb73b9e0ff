"""A told story ready to show or export: parsed and checked once, with names and frame geometry.

Every view of a run (story panel, analysis, compare, exports, the CLI's output) starts from a
``StoredStory`` instead of parsing the raw output itself, so a run is parsed once and every view
agrees on its issues, its names and where each frame's photo is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desktop_app.engine.images import map_box_to_original
from desktop_app.library.records import StoryRun
from desktop_app.library.storyjson import parse_and_validate
from desktop_app.story.display import StoryDisplay, display_story
from desktop_app.story.model import Box, Issue, Story
from desktop_app.story.render import story_to_dict


def box_on_photo(
    box: Box, prepared_size: tuple[int, int], original_size: tuple[int, int]
) -> tuple[float, float, float, float]:
    """``box`` (prepared-image pixels) on the upright photo, clamped, as ``(x1, y1, x2, y2)``
    with x1 <= x2 and y1 <= y2."""
    x1, y1, x2, y2 = map_box_to_original(
        (box.x1, box.y1, box.x2, box.y2), prepared_size, original_size
    )
    return min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)


@dataclass(frozen=True)
class FrameGeometry:
    """The photo of one frame: where it is and the two sizes boxes are mapped between.

    ``original_size`` is the upright photo's size, ``prepared_size`` the pixels the model saw
    (its boxes are in these); either is None when the run did not record it.
    """

    index: int
    path: Path
    original_size: tuple[int, int] | None = None
    prepared_size: tuple[int, int] | None = None

    def box_on_photo(self, box: Box) -> tuple[float, float, float, float] | None:
        """``box`` on this frame's upright photo (see ``box_on_photo``); None when the sizes
        are not known."""
        if self.original_size is None or self.prepared_size is None:
            return None
        return box_on_photo(box, self.prepared_size, self.original_size)


def frames_of(run: StoryRun) -> tuple[FrameGeometry, ...]:
    """The frames of a stored run: each photo's path and the sizes the run recorded."""
    return tuple(
        FrameGeometry(photo.index, photo.path, photo.original_size, photo.prepared_size)
        for photo in run.photos
    )


@dataclass(frozen=True)
class StoredStory:
    """A run's story, its validation issues, the user's names and its frames' photos."""

    story: Story
    issues: tuple[Issue, ...]
    frames: tuple[FrameGeometry, ...]
    names: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(
        cls,
        raw_output: str,
        frames: Sequence[FrameGeometry],
        names: Mapping[str, str] | None = None,
    ) -> StoredStory:
        """Parse and check ``raw_output`` told about ``frames`` (frame 1 first)."""
        story, issues = parse_and_validate(raw_output, [frame.prepared_size for frame in frames])
        return cls(story, tuple(issues), tuple(frames), dict(names or {}))

    @classmethod
    def of_run(cls, run: StoryRun, names: Mapping[str, str] | None = None) -> StoredStory:
        """The story of a stored run (its photo paths follow relinks)."""
        return cls.parse(run.raw_output, frames_of(run), names)

    def with_names(self, names: Mapping[str, str]) -> StoredStory:
        """The same story under the user's (new) display names; nothing is parsed again."""
        return StoredStory(self.story, self.issues, self.frames, dict(names))

    def frame(self, index: int) -> FrameGeometry | None:
        """The geometry of frame ``index`` (1-based), if the run had that many photos."""
        return next((frame for frame in self.frames if frame.index == index), None)

    def photos(self) -> dict[int, Path]:
        """Frame number -> its photo file."""
        return {frame.index: frame.path for frame in self.frames}

    def display(self) -> StoryDisplay:
        """The story as every view and export shows it (names, colours, spans decided once)."""
        return display_story(self.story, self.issues, self.names)

    def to_json(self) -> dict[str, Any]:
        """The story JSON contract (what the library stores and ``--format json`` prints)."""
        return story_to_dict(self.story, self.issues)
