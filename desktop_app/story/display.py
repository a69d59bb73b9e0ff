"""One display model of a story, below every way it is shown.

``StoryDisplay`` is what a reader sees of a parsed story, decided once: each frame's text as
spans that carry their entities, kind, colour and display names (the user's names applied, tag
literals removed), the cast, and the issues. Every output is a thin writer over it: the app's
story view and the PDF (Qt rich text, ``desktop_app.ui.story_html``), the HTML page, Markdown,
plain text and JSON (``desktop_app.story.render``). Two renderers that each decide names and
colours drift; these cannot.

Photos are not part of this module (it stays free of Pillow and Qt): a writer gets each frame's
picture from the one photo decoder (``desktop_app.imaging.fitted_image``) by frame number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from desktop_app.story.model import Character, Issue, Segment, SpanKind, Story
from desktop_app.story.names import display_name, entity_colours, shown_text, strip_tags

UNKNOWN_COLOUR = "#777777"  # a grounded span whose id no table defines


@dataclass(frozen=True)
class DisplaySpan:
    """A piece of a frame's text as it reads: ``text`` with display names applied; for a
    grounded span its ``ids``, their display ``names`` and the first one's ``colour``."""

    text: str
    kind: SpanKind = SpanKind.TEXT
    ids: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    colour: str = ""
    known: bool = True  # every id is defined by the analysis

    @property
    def grounded(self) -> bool:
        """True for a tagged span that points at something (plain text and id-less tags are
        read as text)."""
        return self.kind is not SpanKind.TEXT and bool(self.ids)


@dataclass(frozen=True)
class DisplayFrame:
    """One frame of the story: its number (None: text outside any frame), heading and text."""

    index: int | None
    heading: str
    spans: tuple[DisplaySpan, ...]
    closed: bool = True  # False while the model is still writing it

    def plain(self) -> str:
        """The frame's text as one paragraph: whitespace collapsed, no tags."""
        return " ".join("".join(span.text for span in self.spans).split())


@dataclass(frozen=True)
class CastMember:
    """Someone the analysis names, as every view lists them."""

    id: str
    name: str  # display name: the user's, else the model's
    model_name: str  # what the model called them
    description: str
    colour: str
    frames: tuple[int, ...]

    @property
    def renamed(self) -> bool:
        return self.name != self.model_name


@dataclass(frozen=True)
class StoryDisplay:
    """A parsed story as every view and export shows it."""

    story: Story
    frames: tuple[DisplayFrame, ...]
    cast: tuple[CastMember, ...]
    issues: tuple[Issue, ...]
    colours: Mapping[str, str]
    names: Mapping[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.story.complete

    def colour(self, entity_id: str) -> str:
        """The entity's colour (the same in every view)."""
        return self.colours.get(entity_id, UNKNOWN_COLOUR)

    def name(self, entity_id: str) -> str:
        """What every view calls the entity."""
        return display_name(entity_id, self.story, self.names)


def frame_heading(index: int | None) -> str:
    """The heading of a frame's text in every view ("Frame 2"; "Story" outside any frame)."""
    return f"Frame {index}" if index is not None else "Story"


def display_story(
    story: Story, issues: Iterable[Issue] = (), names: Mapping[str, str] | None = None
) -> StoryDisplay:
    """Decide once how ``story`` reads under the user's ``names``."""
    names = dict(names or {})
    colours = entity_colours(story)
    defined = story.defined_ids()
    frames = tuple(_frame(segment, story, names, colours, defined) for segment in story.segments)
    cast = tuple(
        CastMember(
            id=character.id,
            name=display_name(character.id, story, names),
            model_name=_model_name(character),
            description=character.description,
            colour=colours.get(character.id, UNKNOWN_COLOUR),
            frames=story.frames_of(character.id),
        )
        for character in story.cast()
    )
    return StoryDisplay(story, frames, cast, tuple(issues), colours, names)


def _model_name(character: Character) -> str:
    return character.name.strip() or character.id


def _frame(
    segment: Segment,
    story: Story,
    names: Mapping[str, str],
    colours: Mapping[str, str],
    defined: frozenset[str],
) -> DisplayFrame:
    spans = []
    for span in segment.spans:
        if span.kind is SpanKind.TEXT:
            spans.append(DisplaySpan(strip_tags(span.text)))
            continue
        spans.append(
            DisplaySpan(
                text=shown_text(span, story, names),
                kind=span.kind,
                ids=tuple(span.ids),
                names=tuple(display_name(i, story, names) for i in span.ids),
                colour=colours.get(span.ids[0], UNKNOWN_COLOUR) if span.ids else UNKNOWN_COLOUR,
                known=bool(span.ids) and all(i in defined for i in span.ids),
            )
        )
    return DisplayFrame(segment.image, frame_heading(segment.image), tuple(spans), segment.closed)
