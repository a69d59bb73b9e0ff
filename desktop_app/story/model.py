"""The structured view of one QwenStoryteller output: analysis tables, narrative, grounded story.

Everything here is an immutable record, so a parsed story can be shared between threads (the GUI
renders snapshots of a stream while the parser keeps reading) and compared in tests. Line numbers
are 1-based lines of the raw output text; they let the validator say where a problem is.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import cached_property


@dataclass(frozen=True)
class Box:
    """A bounding box in pixels of the image as the model saw it (the prepared image)."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    def as_list(self) -> list[float]:
        """``[x1, y1, x2, y2]``, integral values as ``int`` (what the JSON contract prints)."""
        return [
            int(v) if float(v).is_integer() else v for v in (self.x1, self.y1, self.x2, self.y2)
        ]


@dataclass(frozen=True)
class Character:
    """One row of a frame's Characters table. ``box`` is None when ``box_text`` does not parse."""

    id: str
    name: str
    description: str
    emotions: str
    actions: str
    narrative_function: str
    box: Box | None
    box_text: str
    line: int | None = None


@dataclass(frozen=True)
class StoryObject:
    """One row of a frame's Objects table: objects ``objK``, background regions ``bgK`` and
    landmarks ``lmK`` (see ``desktop_app.story.ids``)."""

    id: str
    description: str
    function: str
    interaction: str
    narrative_function: str
    box: Box | None
    box_text: str
    line: int | None = None


@dataclass(frozen=True)
class SettingRow:
    """One row of a frame's Setting table."""

    element: str
    description: str
    mood: str
    time: str
    narrative_function: str
    line: int | None = None


Entity = Character | StoryObject


@dataclass(frozen=True)
class Frame:
    """The analysis of one photo (``## Image N``); ``index`` counts from 1 as the model does."""

    index: int
    characters: tuple[Character, ...] = ()
    objects: tuple[StoryObject, ...] = ()
    settings: tuple[SettingRow, ...] = ()
    line: int | None = None

    def entity(self, entity_id: str) -> Entity | None:
        """The row of this frame that defines ``entity_id``, if any."""
        for row in (*self.characters, *self.objects):
            if row.id == entity_id:
                return row
        return None


@dataclass(frozen=True)
class NarrativePhase:
    """One row of the Narrative Structure table; ``images`` lists the frame numbers it covers."""

    phase: str
    description: str
    key_events: str
    images: tuple[int, ...]
    images_text: str = ""
    line: int | None = None


class SpanKind(str, enum.Enum):
    """What a piece of story text is: plain, or grounded by a ``<gdo>``/``<gda>``/``<gdl>`` tag.

    A ``str`` enum: ``span.kind == "entity"`` holds, as in the JSON contract.
    """

    TEXT = "text"
    ENTITY = "entity"  # <gdo ids>: a mention of a character or object
    ACTION = "action"  # <gda ids>: an action, ids are who performs it
    LOCATION = "location"  # <gdl ids>: a place, ids name background regions or landmarks


@dataclass(frozen=True)
class Span:
    """A run of story text; ``ids`` are the entity ids of a tagged span (empty for plain text)."""

    text: str
    kind: SpanKind = SpanKind.TEXT
    ids: tuple[str, ...] = ()
    line: int | None = None  # line of the opening tag (None for plain text)


@dataclass(frozen=True)
class Segment:
    """The story text of one ``<gdi imageN>`` block.

    ``image`` is None for text written outside any ``<gdi>`` block (or in one without a number).
    ``closed`` is False while the block is still being written (or was never closed).
    """

    image: int | None
    spans: tuple[Span, ...]
    closed: bool = True
    line: int | None = None

    @property
    def text(self) -> str:
        """The segment's text with tags stripped, as the model wrote it."""
        return "".join(span.text for span in self.spans)


class ThinkState(enum.Enum):
    """Whether the output has a ``<think>`` analysis block and whether it was closed."""

    ABSENT = "absent"
    OPEN = "open"
    CLOSED = "closed"


class Severity(str, enum.Enum):
    """How bad an issue is; a ``str`` enum, so ``issue.severity == "error"`` holds."""

    ERROR = "error"
    WARNING = "warning"


_ERROR = Severity.ERROR
_WARNING = Severity.WARNING

# Every code an Issue can have, with its severity and meaning (the README lists the same). The
# parser reports the structural ones, validate() the rest.
ISSUE_CODES: dict[str, tuple[Severity, str]] = {
    "empty-output": (_ERROR, "the output is empty"),
    "missing-think": (_ERROR, "there is no <think> analysis block before the story"),
    "unclosed-think": (_ERROR, "<think> is never closed by </think>"),
    "truncated": (_ERROR, "the output stops mid-way (inside the analysis, a <gdi> block or a tag)"),
    "no-story": (_ERROR, "the analysis is closed but no story follows it"),
    "empty-analysis": (_WARNING, "the <think> block holds no per-image tables"),
    "missing-frame": (_ERROR, "a photo of the album has no <gdi> story segment"),
    "extra-frame": (_WARNING, "a story segment or analysis names a photo the album does not have"),
    "missing-analysis": (_WARNING, "a photo of the album has no '## Image N' analysis"),
    "duplicate-frame": (_WARNING, "a photo has two story segments or two analyses"),
    "out-of-order": (_WARNING, "story segments are not in photo order"),
    "empty-segment": (_WARNING, "a <gdi> block holds no text"),
    "unknown-id": (_WARNING, "a story tag names an id that no Characters/Objects table defines"),
    "missing-id": (_WARNING, "a Characters/Objects row has no id"),
    "bad-box": (_WARNING, "a box is missing, does not parse, is empty or lies outside the image"),
    "unclosed-tag": (_WARNING, "a <gdi>, <gdo>, <gda> or <gdl> tag is never closed"),
    "mismatched-tag": (_WARNING, "a closing tag does not match the open tag it closes"),
    "stray-tag": (_WARNING, "a closing tag with nothing to close, or <think> inside the story"),
    "bad-tag": (_WARNING, "a <gdi> tag without an image number"),
    "stray-text": (_WARNING, "text outside any <gdi> block (kept as an unnumbered segment)"),
}


@dataclass(frozen=True)
class Issue:
    """A problem found in an output, with a stable ``code`` (see README, "story JSON contract")."""

    code: str
    severity: Severity
    message: str
    frame: int | None = None
    id: str | None = None
    line: int | None = None

    @classmethod
    def for_code(
        cls,
        code: str,
        message: str,
        *,
        frame: int | None = None,
        entity_id: str | None = None,
        line: int | None = None,
    ) -> Issue:
        """An issue with ``code``'s severity from ``ISSUE_CODES`` (an unknown code is a bug)."""
        return cls(code, ISSUE_CODES[code][0], message, frame=frame, id=entity_id, line=line)


@dataclass(frozen=True)
class Story:
    """Everything parsed from one output (or from the part of a stream received so far).

    ``frames``, ``narrative`` and ``segments`` are in the order the model wrote them.
    ``complete`` is True when the output has a closed analysis, at least one closed ``<gdi>``
    segment, and does not end inside a tag or an unclosed block. ``truncated`` is True when the
    text stops mid-way: inside the analysis, inside a ``<gdi>`` block or tag, or mid-tag.
    ``parse_issues`` are structural problems the parser met (unclosed tags, stray text...);
    ``validate()`` reports them together with its own checks.
    """

    frames: tuple[Frame, ...] = ()
    narrative: tuple[NarrativePhase, ...] = ()
    segments: tuple[Segment, ...] = ()
    complete: bool = False
    think: ThinkState = ThinkState.ABSENT
    truncated: bool = False
    ends_mid_tag: bool = False
    empty: bool = True
    parse_issues: tuple[Issue, ...] = ()
    end_line: int = 1  # the line the text ends on (where a truncated output stops)

    @cached_property
    def _first_definitions(self) -> dict[str, Entity]:
        first: dict[str, Entity] = {}
        for frame in self.frames:
            for row in (*frame.characters, *frame.objects):
                if row.id and row.id not in first:
                    first[row.id] = row
        return first

    def entity(self, entity_id: str) -> Entity | None:
        """The first table row (in frame order) that defines ``entity_id``, or None."""
        return self._first_definitions.get(entity_id)

    def defined_ids(self) -> frozenset[str]:
        """Every id some Characters or Objects table defines."""
        return frozenset(self._first_definitions)

    def cast(self) -> tuple[Character, ...]:
        """Each character once, as first defined, in order of first appearance."""
        return tuple(row for row in self._first_definitions.values() if isinstance(row, Character))

    def boxes_for(self, entity_id: str) -> dict[int, Box]:
        """Frame index -> the entity's box in that frame (first parsable one per frame)."""
        boxes: dict[int, Box] = {}
        for frame in self.frames:
            if frame.index in boxes:
                continue
            for row in (*frame.characters, *frame.objects):
                if row.id == entity_id and row.box is not None:
                    boxes[frame.index] = row.box
                    break
        return boxes

    def frames_of(self, entity_id: str) -> tuple[int, ...]:
        """Frame indexes whose tables define ``entity_id``, in order, without repeats."""
        seen: dict[int, None] = {}
        for frame in self.frames:
            if frame.entity(entity_id) is not None:
                seen.setdefault(frame.index, None)
        return tuple(seen)

    def frame(self, index: int) -> Frame | None:
        """The first analysis of frame ``index``, or None."""
        for frame in self.frames:
            if frame.index == index:
                return frame
        return None

    def segment(self, image: int) -> Segment | None:
        """The first story segment for frame ``image``, or None."""
        for segment in self.segments:
            if segment.image == image:
                return segment
        return None

    @property
    def analysis_closed(self) -> bool:
        return self.think is ThinkState.CLOSED
