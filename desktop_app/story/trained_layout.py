"""The trained layout: a parsed story written back in exactly the bytes QwenStoryteller learned.

docs/model-contract.md (section 3) describes the layout StoryReasoning's own writer produced for
every training target. This module is the one place that knows those bytes: ``render_trained`` writes a
``Story`` in them, and the strict-format grammar (``desktop_app.engine.grammar``) builds its
literals from the fragments below, so the two cannot drift apart.

The whole output is::

    <think>\\n{analysis}\\n</think>\\n{story}

where every frame is ``frame_heading(K)``, then ``CHARACTERS_OPEN`` and its rows,
``OBJECTS_OPEN`` and its rows, ``SETTING_OPEN`` and its rows, then ``FRAME_CLOSE``; the analysis
ends with ``NARRATIVE_OPEN`` and the phase rows. Every row is ``table_row(cells)``: cells joined by
`` | `` between ``| `` and `` |\\n``. The story is ``segment_open(K)`` + text + ``SEGMENT_CLOSE``
per frame, joined by ``SEGMENT_SEPARATOR``, with nothing after the last ``</gdi>``.

For text already in this layout ``render_trained(parse_story(text)) == text``. Anything else
(messy cells, spaced boxes, missing tables) comes out normalised: boxes as ``x1,y1,x2,y2``, all
three tables written, cells on one line with ``|`` escaped.
"""

from __future__ import annotations

from collections.abc import Sequence

from desktop_app.story.model import (
    Box,
    Character,
    Frame,
    NarrativePhase,
    Segment,
    SettingRow,
    Span,
    SpanKind,
    Story,
    StoryObject,
    ThinkState,
)

THINK_OPEN = "<think>\n"
THINK_CLOSE = "</think>\n"

CHARACTER_COLUMNS = (
    "Character ID",
    "Name",
    "Description",
    "Emotions",
    "Actions",
    "Narrative Function",
    "Bounding Box",
)
OBJECT_COLUMNS = (
    "Object ID",
    "Description",
    "Function",
    "Interaction",
    "Narrative Function",
    "Bounding Box",
)
SETTING_COLUMNS = ("Setting Element", "Description", "Mood", "Time", "Narrative Function")
NARRATIVE_COLUMNS = ("Narrative Phase", "Description", "Key Events", "Images")

# The separator rows as the trained writer spelled them: one dash run per column, not always as
# long as its header cell ("Narrative Function" gets 19 dashes, "Interaction" 12).
CHARACTER_SEPARATOR = (
    "|--------------|------|-------------|----------|---------|-------------------|--------------|"
)
OBJECT_SEPARATOR = (
    "|-----------|-------------|----------|------------|-------------------|--------------|"
)
SETTING_SEPARATOR = "|-----------------|-------------|------|------|-------------------|"
NARRATIVE_SEPARATOR = "|-----------------|-------------|-----------|--------|"

CELL_OPEN = "| "
CELL_SEPARATOR = " | "
ROW_CLOSE = " |\n"
BOX_SEPARATOR = ","

SETTING_ELEMENTS = (
    "Location",
    "Environment",
    "Lighting",
    "Weather",
    "Time Period",
    "Architecture",
    "Interior Design",
    "Atmosphere",
    "Background",
)
NARRATIVE_PHASES = ("Introduction", "Development", "Conflict", "Turning Point", "Conclusion")


def table_row(cells: Sequence[str]) -> str:
    """One table line, with its newline: ``| a | b | c |\\n``."""
    return CELL_OPEN + CELL_SEPARATOR.join(cells) + ROW_CLOSE


def _table_open(title: str, columns: Sequence[str], separator: str) -> str:
    return f"{title}\n" + table_row(columns) + separator + "\n"


CHARACTERS_OPEN = _table_open("### Characters", CHARACTER_COLUMNS, CHARACTER_SEPARATOR)
# Each table after the first follows an empty line.
OBJECTS_OPEN = "\n" + _table_open("### Objects", OBJECT_COLUMNS, OBJECT_SEPARATOR)
SETTING_OPEN = "\n" + _table_open("### Setting", SETTING_COLUMNS, SETTING_SEPARATOR)
# Two empty lines after a frame's last table (before the next frame or the narrative).
FRAME_CLOSE = "\n\n"
NARRATIVE_OPEN = "## Narrative Structure\n\n" + table_row(NARRATIVE_COLUMNS)
NARRATIVE_OPEN += NARRATIVE_SEPARATOR + "\n"

SEGMENT_CLOSE = "\n</gdi>"
SEGMENT_SEPARATOR = "\n\n"

_TAG_NAMES = {SpanKind.ENTITY: "gdo", SpanKind.ACTION: "gda", SpanKind.LOCATION: "gdl"}


def frame_heading(index: int) -> str:
    """The line that starts frame ``index``'s analysis, and the empty line after it."""
    return f"## Image {index}\n\n"


def segment_open(index: int) -> str:
    """The ``<gdi>`` line that starts frame ``index``'s story segment."""
    return f"<gdi image{index}>\n"


def tag_open(kind: SpanKind, ids: Sequence[str]) -> str:
    """``<gdo char1 char2>`` and the like."""
    name = _TAG_NAMES[kind]
    return f"<{name} {' '.join(ids)}>" if ids else f"<{name}>"


def tag_close(kind: SpanKind) -> str:
    return f"</{_TAG_NAMES[kind]}>"


def box_cell(box: Box) -> str:
    """A box as trained: ``40,31,493,239`` (integral values without a decimal point)."""
    return BOX_SEPARATOR.join(str(value) for value in box.as_list())


def _cell(text: str) -> str:
    # A cell is one line (the parser strips its ends anyway); a bar inside it is escaped so the
    # row keeps its columns. Inner spaces stay as written: they are part of the trained bytes.
    return " ".join(text.splitlines()).strip().replace("|", "\\|")


def _box_text(row: Character | StoryObject) -> str:
    return box_cell(row.box) if row.box is not None else _cell(row.box_text)


def character_row(c: Character) -> str:
    cells = (c.id, c.name, c.description, c.emotions, c.actions, c.narrative_function)
    return table_row([*map(_cell, cells), _box_text(c)])


def object_row(o: StoryObject) -> str:
    cells = (o.id, o.description, o.function, o.interaction, o.narrative_function)
    return table_row([*map(_cell, cells), _box_text(o)])


def setting_row(s: SettingRow) -> str:
    cells = (s.element, s.description, s.mood, s.time, s.narrative_function)
    return table_row([_cell(cell) for cell in cells])


def phase_row(p: NarrativePhase) -> str:
    images = p.images_text if p.images_text.strip() else ", ".join(str(i) for i in p.images)
    return table_row([_cell(cell) for cell in (p.phase, p.description, p.key_events, images)])


def render_frame(frame: Frame) -> str:
    """One ``## Image K`` section with its three tables (also when they have no rows)."""
    return (
        frame_heading(frame.index)
        + CHARACTERS_OPEN
        + "".join(map(character_row, frame.characters))
        + OBJECTS_OPEN
        + "".join(map(object_row, frame.objects))
        + SETTING_OPEN
        + "".join(map(setting_row, frame.settings))
        + FRAME_CLOSE
    )


def render_analysis(story: Story) -> str:
    """The ``<think>`` block, tags included, with the newline after ``</think>``."""
    body = "".join(map(render_frame, story.frames))
    if story.narrative:
        body += NARRATIVE_OPEN + "".join(map(phase_row, story.narrative))
    # The writer joins the analysis lines and puts it between "<think>\n" and "\n</think>":
    # an empty analysis still gets its own (empty) line.
    return THINK_OPEN + (body or "\n") + THINK_CLOSE


def _span_text(span: Span) -> str:
    if span.kind is SpanKind.TEXT:
        return span.text
    return tag_open(span.kind, span.ids) + span.text + tag_close(span.kind)


def render_segment(segment: Segment) -> str:
    """A ``<gdi imageK>`` block; text outside any block is written as it was, untagged."""
    body = "".join(map(_span_text, segment.spans))
    if segment.image is None:
        return body
    return segment_open(segment.image) + body + SEGMENT_CLOSE


def render_story_text(story: Story) -> str:
    """The story after ``</think>``: the segments separated by one empty line."""
    return SEGMENT_SEPARATOR.join(map(render_segment, story.segments))


def render_trained(story: Story) -> str:
    """The whole output in the trained layout: analysis (if any) then the story."""
    has_analysis = story.think is not ThinkState.ABSENT or story.frames or story.narrative
    analysis = render_analysis(story) if has_analysis else ""
    return analysis + render_story_text(story)
