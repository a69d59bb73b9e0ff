"""The story JSON contract read back into a ``Story``: the inverse of ``render.story_to_dict``.

With ``trained_layout.render_trained`` this turns a ``story.json`` (from ``storyteller parse``, an
export or a bundle, possibly edited by hand) back into model text in the trained layout, e.g. to
reuse a corrected story as a training example. What the contract does not carry is rebuilt:
line numbers are unknown, and a story is complete when it has analysis frames and segments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

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


class StoryJsonError(ValueError):
    """The JSON is not a story in the contract's shape; the message says what is wrong."""


def looks_like_story_json(data: object) -> bool:
    """True for a mapping with the contract's top-level keys."""
    return isinstance(data, Mapping) and {"frames", "story"} <= set(data)


def story_from_dict(data: Mapping[str, Any]) -> Story:
    """The ``Story`` a story JSON describes; raises ``StoryJsonError`` when it cannot be one."""
    if not looks_like_story_json(data):
        raise StoryJsonError("not a story JSON: it needs 'frames' and 'story' lists")
    try:
        frames = tuple(_frame(f) for f in _list(data, "frames"))
        narrative = tuple(_phase(p) for p in _list(data, "narrative"))
        segments = tuple(_segment(s) for s in _list(data, "story"))
    except (KeyError, TypeError, ValueError) as err:
        raise StoryJsonError(f"the story JSON is malformed ({err})") from None
    has_analysis = bool(frames or narrative)
    return Story(
        frames=frames,
        narrative=narrative,
        segments=segments,
        complete=bool(data.get("complete", has_analysis and segments)),
        think=ThinkState.CLOSED if has_analysis else ThinkState.ABSENT,
        empty=not (frames or narrative or segments),
    )


def _list(data: Mapping[str, Any], key: str) -> Sequence[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise TypeError(f"'{key}' is not a list")
    return value


def _text(row: Mapping[str, Any], key: str) -> str:
    value = row.get(key, "")
    return "" if value is None else str(value)


def _box(row: Mapping[str, Any]) -> tuple[Box | None, str]:
    box = row.get("box")
    parsed = Box(*(float(v) for v in box)) if isinstance(box, list) and len(box) == 4 else None
    text = _text(row, "box_text")
    if parsed is not None and not text:
        text = ",".join(str(v) for v in parsed.as_list())
    return parsed, text


def _frame(data: Mapping[str, Any]) -> Frame:
    characters = []
    for c in data.get("characters", []):
        box, box_text = _box(c)
        cells = ("id", "name", "description", "emotions", "actions", "narrative_function")
        characters.append(Character(*(_text(c, k) for k in cells), box, box_text))
    objects = []
    for o in data.get("objects", []):
        box, box_text = _box(o)
        cells = ("id", "description", "function", "interaction", "narrative_function")
        objects.append(StoryObject(*(_text(o, k) for k in cells), box, box_text))
    settings = [
        SettingRow(
            *(_text(s, k) for k in ("element", "description", "mood", "time")),
            _text(s, "narrative_function"),
        )
        for s in data.get("settings", [])
    ]
    return Frame(int(data["index"]), tuple(characters), tuple(objects), tuple(settings))


def _phase(data: Mapping[str, Any]) -> NarrativePhase:
    images = tuple(int(i) for i in data.get("images", []))
    return NarrativePhase(
        _text(data, "phase"),
        _text(data, "description"),
        _text(data, "key_events"),
        images,
        ", ".join(map(str, images)),
    )


def _segment(data: Mapping[str, Any]) -> Segment:
    image = data.get("image")
    spans = tuple(
        Span(_text(s, "text"), SpanKind(s.get("kind", "text")), tuple(map(str, s.get("ids", []))))
        for s in data.get("spans", [])
    )
    return Segment(None if image is None else int(image), spans)
