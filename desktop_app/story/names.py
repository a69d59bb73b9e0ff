"""What every view calls an entity, how its text reads, and its colour.

One source for the exported pages, Markdown, text, the app's story panel and PDF, so the same
story reads the same everywhere. ``names`` maps an entity id to the display name the user chose
(a renamed character keeps its id).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from desktop_app.story.model import Character, Span, SpanKind, Story

# Anything that still looks like a story tag in text the parser kept literally (a tag broken
# over a line, an overlong one): every rendering strips it.
_TAG_LIKE_RE = re.compile(r"<\s*/?\s*(?:gd[ioal]|think)(?=[\s>/])[^<>]*>", re.IGNORECASE)
_POSSESSIVES = ("'s", "’s", "'", "’")
# A description standing in for a name (objects, unnamed characters) is cut to this length.
NAME_MAX_CHARS = 40

# One colour per entity, shared by every view (the app's story and analysis panels use these
# too, so an entity has the same colour on screen and in an export). Okabe–Ito hues (told apart
# with the common colour-vision deficiencies), darkened where needed so that coloured text has a
# contrast of at least 4.5:1 on white (WCAG AA for body text), then a few more distinct dark hues.
ENTITY_PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#C05500",  # vermillion, darkened (#D55E00 is 3.9:1)
    "#008561",  # bluish green, darkened (#009E73 is 3.4:1)
    "#A16084",  # reddish purple, darkened (#CC79A7 is 3.1:1)
    "#8E7100",  # dark yellow, darkened (#9A7B00 is 4.0:1)
    "#6A3D9A",  # purple
    "#8C564B",  # brown
    "#117A8B",  # teal
    "#C0392B",  # red
    "#4B5D73",  # slate
)


def strip_tags(text: str) -> str:
    """``text`` without anything that looks like a story tag."""
    previous = None
    while previous != text:
        previous, text = text, _TAG_LIKE_RE.sub("", text)
    return text


def display_name(entity_id: str, story: Story, names: Mapping[str, str] | None = None) -> str:
    """What to call an entity: the user's name, else the model's name, else its description
    (at most ``NAME_MAX_CHARS`` characters), else its id."""
    if names and names.get(entity_id):
        return names[entity_id]
    entity = story.entity(entity_id)
    if entity is None:
        return entity_id
    if isinstance(entity, Character) and entity.name.strip():
        return entity.name.strip()
    description = entity.description.strip()
    if not description:
        return entity_id
    if len(description) <= NAME_MAX_CHARS:
        return description
    return description[: NAME_MAX_CHARS - 3] + "..."


def span_display_text(span: Span, story: Story, names: Mapping[str, str] | None) -> str:
    """The span's text, with the model's name for a renamed character replaced by the new one.

    Only where a tagged mention is exactly the model's name for that id ("Maya", "Maya's", or the
    first word of a longer name); any other mention ("she", "the girl") stays as the model wrote it.
    """
    if not names or span.kind is not SpanKind.ENTITY or len(span.ids) != 1:
        return span.text
    display = names.get(span.ids[0])
    entity = story.entity(span.ids[0])
    if not display or not isinstance(entity, Character) or not entity.name.strip():
        return span.text
    core = span.text.strip()
    lead = span.text[: len(span.text) - len(span.text.lstrip())]
    trail = span.text[len(span.text.rstrip()) :]
    model_name = entity.name.strip()
    candidates = [model_name]
    if " " in model_name:
        candidates.append(model_name.split()[0])
    for candidate in candidates:
        for suffix in ("", *_POSSESSIVES):
            if core.casefold() == (candidate + suffix).casefold():
                return lead + display + core[len(candidate) :] + trail
    return span.text


def shown_text(span: Span, story: Story, names: Mapping[str, str] | None) -> str:
    """The span as every rendering shows it: display names applied, tag-like literals removed."""
    return strip_tags(span_display_text(span, story, names))


def entity_colours(story: Story) -> dict[str, str]:
    """One colour per id: defined ids in order of definition, then ids only the story uses."""
    order: dict[str, None] = {}
    for frame in story.frames:
        for row in (*frame.characters, *frame.objects):
            if row.id:
                order.setdefault(row.id, None)
    for segment in story.segments:
        for span in segment.spans:
            for entity_id in span.ids:
                order.setdefault(entity_id, None)
    return {entity_id: ENTITY_PALETTE[i % len(ENTITY_PALETTE)] for i, entity_id in enumerate(order)}
