"""Streaming: the view of a half-written output is the parse of that prefix, however it arrived.

Cuts at every position of realistic outputs, plus hypothesis properties over arbitrary text and
arbitrary chunkings.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desktop_app.story import (
    StoryStreamParser,
    parse_story,
    render_html,
    render_markdown,
    render_text,
    story_to_dict,
    validate,
)

RAW_DIR = Path(__file__).parent / "golden" / "raw"
# Anything a reader would recognise as a story tag, in any case, with any attributes.
TAG_RE = re.compile(r"<\s*/?\s*(gd[ioal]|think)(?=[\s>/])[^<>]*>", re.IGNORECASE)


def _stream_and_check_every_prefix(text: str) -> None:
    parser = StoryStreamParser()
    for end in range(1, len(text) + 1):
        parser.feed(text[end - 1])
        assert parser.snapshot() == parse_story(text[:end]), f"prefix of {end} characters"
    assert parser.text == text


@pytest.mark.parametrize("name", ["multi_id_tags", "stray_text", "messy_cells"])
def test_snapshot_after_every_character_equals_parsing_that_prefix(name: str) -> None:
    _stream_and_check_every_prefix((RAW_DIR / f"{name}.txt").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_snapshot_equals_prefix_parse_at_every_cut_of_a_five_frame_story() -> None:
    _stream_and_check_every_prefix((RAW_DIR / "clean_5_frames.txt").read_text(encoding="utf-8"))


def test_every_prefix_renders_and_validates() -> None:
    text = (RAW_DIR / "multi_id_tags.txt").read_text(encoding="utf-8")
    parser = StoryStreamParser()
    for end in range(0, len(text), 7):
        parser.feed(text[end : end + 7])
        story = parser.snapshot()
        issues = validate(story, frame_count=3)
        assert TAG_RE.search(render_text(story)) is None
        render_markdown(story)
        render_html(story, issues)
        story_to_dict(story, issues)


def test_streamed_view_grows_sensibly() -> None:
    """What the GUI shows mid-stream: partial rows, open blocks, partial spans, no half tags."""
    parser = StoryStreamParser()
    parser.feed("<think>\n## Image 1\n### Characters\n| Character ID | Name | Description |\n")
    parser.feed("|---|---|---|\n| char1 | Ma")
    row = parser.snapshot().frames[0].characters[0]
    assert (row.id, row.name) == ("char1", "Ma")
    parser.feed("ya | A girl |\n</think>\n<gdi image1>\n<gdo char1>Ma")
    story = parser.snapshot()
    assert story.think.value == "closed"
    segment = story.segments[0]
    assert (segment.image, segment.closed) == (1, False)
    assert segment.spans[-1].text == "Ma" and segment.spans[-1].ids == ("char1",)
    assert story.truncated and not story.complete
    parser.feed("ya</gdo> <gda ch")
    story = parser.snapshot()
    assert story.ends_mid_tag
    assert render_text(story) == "Maya\n"
    parser.feed("ar1>waves</gda>.\n</gdi>\n")
    story = parser.snapshot()
    assert story.complete and not story.truncated
    assert render_text(story) == "Maya waves.\n"


def test_snapshot_without_new_text_is_the_same_object() -> None:
    parser = StoryStreamParser()
    parser.feed("<think>\n## Image 1\n")
    assert parser.snapshot() is parser.snapshot()
    assert parser.text == "<think>\n## Image 1\n"


# ---- properties -----------------------------------------------------------------------------

# Pieces of real outputs, so random text often forms (and breaks) tables and tags.
FRAGMENTS = [
    "<think>",
    "</think>",
    "\n",
    "## Image 1\n",
    "## Image 2",
    "### Characters\n",
    "### Objects\n",
    "## Narrative Structure\n",
    "| Character ID | Name | Bounding Box |\n",
    "| Object ID | Description | Bounding Box |\n",
    "|---|---|---|\n",
    "| char1 | Maya | 40, 88, 210, 400 |\n",
    "| obj1 | boat | [1.5, 2, 3, 4] |",
    "| bg1 |",
    "<gdi image1>",
    "<gdi image2>",
    "</gdi>",
    "<gdo char1>",
    "<gdo char1 char2>",
    "<gda char1>",
    "<gdl bg1>",
    "</gdo>",
    "</gda>",
    "</gdl>",
    "<gd",
    "<",
    ">",
    "/",
    "|",
    " ",
    "Maya",
    "Zoë 美咲",
]
outputs = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=6)), max_size=40).map(
    "".join
)
PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(st.one_of(outputs, st.text(max_size=300)))
def test_parsing_never_raises_and_everything_renders(text: str) -> None:
    story = parse_story(text)
    issues = validate(story, frame_count=2, image_sizes={1: (100, 100)})
    story_to_dict(story, issues)
    render_markdown(story, names={"char1": "Ana"})
    render_html(story, issues, names={"char1": "<b>Ana</b>"}, images={1: "data:,x"})
    assert {issue.code for issue in issues} <= set(_codes())


@PROPERTY_SETTINGS
@given(outputs, st.lists(st.integers(min_value=1, max_value=12), max_size=60))
def test_feeding_in_random_chunks_equals_parsing_whole(text: str, sizes: list[int]) -> None:
    parser = StoryStreamParser()
    position = 0
    for size in sizes:
        parser.feed(text[position : position + size])
        parser.snapshot()
        position += size
    parser.feed(text[position:])
    assert parser.snapshot() == parse_story(text)


@PROPERTY_SETTINGS
@given(st.one_of(outputs, st.text(max_size=300)))
def test_plain_text_rendering_contains_no_tag(text: str) -> None:
    rendered = render_text(parse_story(text), names={"char1": "Ana"})
    assert TAG_RE.search(rendered) is None


def _codes() -> list[str]:
    from desktop_app.story.validate import ISSUE_CODES

    return list(ISSUE_CODES)
