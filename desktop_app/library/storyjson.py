"""A run's raw output as the story JSON contract (desktop_app.story), with validation issues."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from desktop_app.story.model import Issue, Story
from desktop_app.story.parser import parse_story
from desktop_app.story.render import story_to_dict
from desktop_app.story.validate import validate

FrameSizes = Sequence[tuple[int, int] | None]  # frame N's prepared size at N-1; None: not known


def parse_and_validate(raw_output: str, prepared_sizes: FrameSizes) -> tuple[Story, list[Issue]]:
    """The parsed story and its validation issues, for a run over ``len(prepared_sizes)`` photos.

    Boxes are checked against each photo's prepared size (the size the model saw) when known.
    """
    story = parse_story(raw_output)
    image_sizes = {
        index: size for index, size in enumerate(prepared_sizes, start=1) if size is not None
    }
    issues = validate(
        story, frame_count=len(prepared_sizes) or None, image_sizes=image_sizes or None
    )
    return story, issues


def parse_story_json(raw_output: str, prepared_sizes: FrameSizes) -> dict[str, Any] | None:
    """The story JSON contract for ``raw_output``; None without text."""
    if not raw_output.strip():
        return None
    return story_to_dict(*parse_and_validate(raw_output, prepared_sizes))
