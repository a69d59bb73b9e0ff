"""The grounded-story format: parse (incrementally), validate and render QwenStoryteller output.

Pure Python; imports nothing else of ours. The main entry points are re-exported here.
"""

from __future__ import annotations

from desktop_app.story.model import (
    Box,
    Character,
    Frame,
    Issue,
    NarrativePhase,
    Segment,
    SettingRow,
    Severity,
    Span,
    SpanKind,
    Story,
    StoryObject,
    ThinkState,
)
from desktop_app.story.parser import StoryStreamParser, parse_story
from desktop_app.story.render import (
    render_html,
    render_markdown,
    render_text,
    story_to_dict,
)
from desktop_app.story.trained_layout import render_trained
from desktop_app.story.validate import ISSUE_CODES, validate

__all__ = [
    "ISSUE_CODES",
    "Box",
    "Character",
    "Frame",
    "Issue",
    "NarrativePhase",
    "Segment",
    "SettingRow",
    "Severity",
    "Span",
    "SpanKind",
    "Story",
    "StoryObject",
    "StoryStreamParser",
    "ThinkState",
    "parse_story",
    "render_html",
    "render_markdown",
    "render_text",
    "render_trained",
    "story_to_dict",
    "validate",
]
