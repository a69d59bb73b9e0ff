"""Writers over the display model (``desktop_app.story.display``): the JSON contract, plain text,
Markdown and a standalone HTML page.

Each ``write_*`` takes a ``StoryDisplay``, where names, colours and the text of every span are
decided once; ``render_*`` are the same writers for a parsed story and the user's ``names`` (an
entity id -> the display name the user chose; a renamed character keeps its id).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence

from desktop_app.story.display import (
    CastMember,
    DisplayFrame,
    DisplaySpan,
    StoryDisplay,
    display_story,
)
from desktop_app.story.model import (
    Character,
    Frame,
    Issue,
    NarrativePhase,
    SettingRow,
    SpanKind,
    Story,
    StoryObject,
)
from desktop_app.story.names import (
    display_name,
    entity_colours,
    span_display_text,
    strip_tags,
)

# An entity's box on a photo, as fractions of the photo's width and height:
# (left, top, right, bottom), each in 0..1.
PhotoBox = tuple[float, float, float, float]

__all__ = [  # names' helpers are re-exported: callers render and name through one module
    "PhotoBox",
    "box_html",
    "display_name",
    "entity_colours",
    "render_html",
    "render_markdown",
    "render_text",
    "span_display_text",
    "span_html",
    "story_to_dict",
    "strip_tags",
    "write_html",
    "write_markdown",
    "write_text",
]


def story_to_dict(story: Story, issues: Iterable[Issue]) -> dict[str, object]:
    """The public JSON shape of a parsed story (documented in README, "story JSON contract")."""
    return {
        "complete": story.complete,
        "frames": [_frame_to_dict(frame) for frame in story.frames],
        "narrative": [_phase_to_dict(phase) for phase in story.narrative],
        "story": [
            {
                "image": segment.image,
                "spans": [
                    {"text": span.text, "kind": span.kind.value, "ids": list(span.ids)}
                    for span in segment.spans
                ],
            }
            for segment in story.segments
        ],
        "issues": [
            {
                "code": issue.code,
                "severity": issue.severity.value,
                "message": issue.message,
                "frame": issue.frame,
                "id": issue.id,
                "line": issue.line,
            }
            for issue in issues
        ],
    }


def _frame_to_dict(frame: Frame) -> dict[str, object]:
    return {
        "index": frame.index,
        "characters": [
            {
                "id": c.id,
                "name": c.name,
                "description": c.description,
                "emotions": c.emotions,
                "actions": c.actions,
                "narrative_function": c.narrative_function,
                "box": c.box.as_list() if c.box is not None else None,
                "box_text": c.box_text,
            }
            for c in frame.characters
        ],
        "objects": [
            {
                "id": o.id,
                "description": o.description,
                "function": o.function,
                "interaction": o.interaction,
                "narrative_function": o.narrative_function,
                "box": o.box.as_list() if o.box is not None else None,
                "box_text": o.box_text,
            }
            for o in frame.objects
        ],
        "settings": [
            {
                "element": s.element,
                "description": s.description,
                "mood": s.mood,
                "time": s.time,
                "narrative_function": s.narrative_function,
            }
            for s in frame.settings
        ],
    }


def _phase_to_dict(phase: NarrativePhase) -> dict[str, object]:
    return {
        "phase": phase.phase,
        "description": phase.description,
        "key_events": phase.key_events,
        "images": list(phase.images),
    }


# ---- shared helpers ------------------------------------------------------------------------


def _collapse(text: str) -> str:
    return " ".join(text.split())


# The analysis tables as Markdown and HTML print them: the same columns, each in its own markup.
_CHARACTER_HEADERS = (
    "Id",
    "Name",
    "Description",
    "Emotions",
    "Actions",
    "Narrative function",
    "Box",
)
_OBJECT_HEADERS = ("Id", "Description", "Function", "Interaction", "Narrative function", "Box")
_SETTING_HEADERS = ("Element", "Description", "Mood", "Time", "Narrative function")
_NARRATIVE_HEADERS = ("Phase", "Description", "Key events", "Images")


def _character_details(c: Character) -> tuple[str, ...]:
    """A Characters row's cells after its id and name."""
    return (c.description, c.emotions, c.actions, c.narrative_function, c.box_text)


def _object_details(o: StoryObject) -> tuple[str, ...]:
    """An Objects row's cells after its id."""
    return (o.description, o.function, o.interaction, o.narrative_function, o.box_text)


def _setting_cells(s: SettingRow) -> tuple[str, ...]:
    return (s.element, s.description, s.mood, s.time, s.narrative_function)


def _phase_cells(p: NarrativePhase) -> tuple[str, ...]:
    return (p.phase, p.description, p.key_events, ", ".join(str(i) for i in p.images))


# ---- plain text ----------------------------------------------------------------------------


def write_text(display: StoryDisplay) -> str:
    """The story as plain prose, tags stripped, one paragraph per frame."""
    body = "\n\n".join(p for p in (frame.plain() for frame in display.frames) if p)
    return body + "\n" if body else ""


def render_text(story: Story, names: Mapping[str, str] | None = None) -> str:
    """``write_text`` of ``story`` under ``names``."""
    return write_text(display_story(story, (), names))


# ---- Markdown ------------------------------------------------------------------------------

_MD_SPECIAL_RE = re.compile(r"([\\`*_\[\]<>#|~])")


def _md(text: str) -> str:
    return _MD_SPECIAL_RE.sub(r"\\\1", _collapse(strip_tags(text)))


def _md_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines.extend("| " + " | ".join(_md(cell) for cell in row) + " |" for row in rows)
    return lines


def render_markdown(story: Story, names: Mapping[str, str] | None = None) -> str:
    """``write_markdown`` of ``story`` under ``names``."""
    return write_markdown(display_story(story, (), names))


def write_markdown(display: StoryDisplay, *, title: str | None = None) -> str:
    """The story (tags stripped, one section per frame), the cast and the analysis tables."""
    story, names = display.story, display.names
    heading = _MD_SPECIAL_RE.sub(r"\\\1", title or "Story")
    out: list[str] = [f"# {heading}", ""]
    for frame in display.frames:
        text = frame.plain()
        if not text:
            continue
        out += [f"## {frame.heading}", "", _MD_SPECIAL_RE.sub(r"\\\1", text), ""]
    if display.cast:
        out += ["## Cast", ""]
        out += _md_table(
            ("Id", "Name", "Description", "Appears in"),
            (
                (c.id, c.name, c.description, ", ".join(str(i) for i in c.frames))
                for c in display.cast
            ),
        )
        out.append("")
    if story.frames or story.narrative:
        out += ["## Analysis", ""]
    for frame in story.frames:
        out += [f"### Image {frame.index}", ""]
        if frame.characters:
            out += ["**Characters**", ""]
            out += _md_table(
                _CHARACTER_HEADERS,
                (
                    (c.id, names.get(c.id, c.name) if names else c.name, *_character_details(c))
                    for c in frame.characters
                ),
            )
            out.append("")
        if frame.objects:
            out += ["**Objects**", ""]
            out += _md_table(_OBJECT_HEADERS, ((o.id, *_object_details(o)) for o in frame.objects))
            out.append("")
        if frame.settings:
            out += ["**Setting**", ""]
            out += _md_table(_SETTING_HEADERS, map(_setting_cells, frame.settings))
            out.append("")
    if story.narrative:
        out += ["### Narrative structure", ""]
        out += _md_table(_NARRATIVE_HEADERS, map(_phase_cells, story.narrative))
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


# ---- HTML ----------------------------------------------------------------------------------

_KIND_WORDS = {
    SpanKind.ENTITY: "mention",
    SpanKind.ACTION: "action",
    SpanKind.LOCATION: "place",
}

_CSS = """
body { font: 16px/1.6 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1a1a1a;
       background: #fff; margin: 0; overflow-wrap: break-word; }
main { max-width: 60rem; margin: 0 auto; padding: 1rem 1.5rem 4rem; }
h1 { font-size: 1.8rem; }
.frame { display: flex; gap: 1.2rem; align-items: flex-start; margin: 1.5rem 0; }
.frame .text { min-width: 0; flex: 1; }
.photo { position: relative; flex: none; margin: 0; line-height: 0; overflow: hidden;
         border-radius: 4px; }
.photo img { display: block; max-width: 16rem; max-height: 16rem; }
.box { position: absolute; box-sizing: border-box; border: 3px solid;
       outline: 1px solid #fff; border-radius: 2px; pointer-events: none; }
.box[hidden] { display: none; }
.box span { position: absolute; left: 0; top: 0; padding: 0 .3em;
            font: 600 .75rem/1.5 system-ui, sans-serif; color: #fff; white-space: nowrap; }
.frame h2 { font-size: 1rem; margin: 0 0 .3rem; color: #555; }
.g { text-decoration-line: underline; text-decoration-thickness: 2px;
     text-underline-offset: 3px; border-radius: 2px; padding: 0 1px; }
.g[tabindex] { cursor: pointer; }
.g:focus-visible { outline: 2px solid #1a1a1a; }
.g.entity { text-decoration-style: solid; }
.g.action { text-decoration-style: wavy; text-decoration-thickness: 1px; }
.g.location { text-decoration-style: double; text-decoration-thickness: 3px; }
.g.unknown { outline: 1px dashed #999; }
.legend span.g { margin-right: 1.2rem; }
.table { overflow-x: auto; }
table { border-collapse: collapse; margin: .5rem 0 1.2rem; font-size: .9rem; width: 100%; }
th, td { border: 1px solid #ccc; padding: .25rem .45rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.id { font-family: ui-monospace, monospace; white-space: nowrap; }
.swatch { display: inline-block; width: .8em; height: .8em; border-radius: 2px;
          margin-right: .3em; vertical-align: middle; }
.issues li.error { color: #a40000; }
.model-name { color: #666; font-size: .85em; }
details { margin: 1.5rem 0; }
summary { cursor: pointer; }
summary h2 { display: inline; font-size: 1.3rem; }
.hint { color: #666; }
@media (max-width: 40rem) {
  main { padding: .5rem 1rem 3rem; }
  .frame { flex-direction: column; gap: .6rem; }
  .photo { align-self: stretch; }
  .photo img { width: 100%; height: auto; max-width: none; max-height: none; }
}
@media print { .frame { break-inside: avoid; } .box { display: none; } }
"""

# Hovering (or focusing: keyboard and touch) a tagged word shows the boxes of its ids on its
# frame's photo; leaving it hides them. The boxes are in the page, hidden until then.
_SCRIPT = """
document.querySelectorAll(".frame .g[data-ids]").forEach(function (word) {
  var photo = word.closest(".frame").querySelector(".photo");
  if (!photo) return;
  var ids = word.dataset.ids.split(" ");
  function show(on) {
    photo.querySelectorAll(".box").forEach(function (box) {
      box.hidden = !(on && ids.indexOf(box.dataset.id) >= 0);
    });
  }
  word.addEventListener("mouseenter", function () { show(true); });
  word.addEventListener("mouseleave", function () { show(false); });
  word.addEventListener("focus", function () { show(true); });
  word.addEventListener("blur", function () { show(false); });
});
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def span_html(span: DisplaySpan, boxed: frozenset[str] = frozenset()) -> str:
    """A span as it reads: a tagged one is marked by its kind's underline in its id's colour,
    its ids and names in the tooltip only; one with a box on the photo takes the focus."""
    text = _e(span.text)
    if span.kind is SpanKind.TEXT:
        return text
    labels = [f"{i} · {name}" for i, name in zip(span.ids, span.names, strict=True)]
    title = f"{_KIND_WORDS[span.kind]}: " + ("; ".join(labels) if labels else "no id")
    unknown = "" if span.known else " unknown"
    style = f"text-decoration-color: {span.colour}; background: {span.colour}1f"
    focus = ' tabindex="0"' if boxed.intersection(span.ids) else ""
    return (
        f'<span class="g {span.kind.value}{unknown}" data-ids="{_e(" ".join(span.ids))}" '
        f'title="{_e(title)}" style="{style}"{focus}>{text}</span>'
    )


def _html_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A table from already-escaped cell HTML."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return (
        f'<div class="table"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def _id_cell(entity_id: str, colours: Mapping[str, str]) -> str:
    colour = colours.get(entity_id, "#777")
    return (
        f'<span class="swatch" style="background: {colour}"></span>'
        f'<span class="id">{_e(entity_id)}</span>'
    )


def _name_cell(character: Character, names: Mapping[str, str] | None) -> str:
    chosen = names.get(character.id) if names else None
    if chosen and chosen != character.name:
        return f'{_e(chosen)} <span class="model-name">(model: {_e(character.name)})</span>'
    return _e(character.name)


def _cast_name_cell(member: CastMember) -> str:
    """The name in its colour's swatch (the id in the tooltip), and the model's if renamed."""
    swatch = f'<span class="swatch" style="background: {member.colour}"></span>'
    name = f'<span title="{_e(member.id)}">{_e(member.name)}</span>'
    if member.renamed:
        return f'{swatch}{name} <span class="model-name">(model: {_e(member.model_name)})</span>'
    return swatch + name


def render_html(
    story: Story,
    issues: Sequence[Issue],
    *,
    names: Mapping[str, str] | None = None,
    images: Mapping[int, str] | None = None,
    boxes: Mapping[int, Mapping[str, PhotoBox]] | None = None,
    title: str | None = None,
) -> str:
    """``write_html`` of ``story`` with its ``issues`` under ``names``."""
    return write_html(display_story(story, issues, names), images=images, boxes=boxes, title=title)


def write_html(
    display: StoryDisplay,
    *,
    images: Mapping[int, str] | None = None,
    boxes: Mapping[int, Mapping[str, PhotoBox]] | None = None,
    title: str | None = None,
) -> str:
    """A self-contained HTML page (one file, nothing fetched): the grounded story, a legend,
    issues, cast and analysis.

    Tagged spans are coloured per id and also readable without colour: each kind has its own
    underline style; ids and names are in the tooltip, not in the text. ``images`` maps a
    frame index to an image ``src`` (e.g. a data: URI) shown beside that frame's text (above
    it on a narrow screen). ``boxes`` maps a frame index to each entity's box on that photo
    as fractions of its width and height (``PhotoBox``); hovering or focusing a tagged word
    shows its boxes over the photo.
    """
    story, names, colours = display.story, display.names, display.colours
    images = images or {}
    boxes = boxes or {}
    page_title = title or "Story"
    parts: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(page_title)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>{_e(page_title)}</h1>",
    ]
    if not display.complete:
        parts.append("<p><em>This story is incomplete.</em></p>")
    parts.append('<section class="story">')
    for frame in display.frames:
        parts.append(_frame_text_html(display, frame, images, boxes))
    parts.append("</section>")
    parts.append(
        '<section class="legend"><h2>Legend</h2><p>'
        '<span class="g entity" style="text-decoration-color: #444">someone or something</span>'
        '<span class="g action" style="text-decoration-color: #444">an action</span>'
        '<span class="g location" style="text-decoration-color: #444">a place</span>'
        "</p><p>Each one has its own colour. Point at a marked word (or tab to it) to see who "
        "or what it is and, where the photo shows it, its box on the photo.</p>"
        "</section>"
    )
    if display.cast:
        parts.append('<section class="cast"><h2>Cast</h2>')
        parts.append(
            _html_table(
                ("Name", "Description", "In photos"),
                (
                    (
                        _cast_name_cell(c),
                        _e(c.description),
                        _e(", ".join(str(i) for i in c.frames)),
                    )
                    for c in display.cast
                ),
            )
        )
        parts.append("</section>")
    # What the model noted (its ids, its tables) and what the checks found: folded away, a
    # click from the reader who wants them.
    if display.issues:
        items = "".join(
            f'<li class="{_e(i.severity.value)}"><strong>{_e(i.severity.value)}</strong> '
            f'<span class="id">{_e(i.code)}</span>: {_e(i.message)}'
            + (f" (line {i.line})" if i.line is not None else "")
            + "</li>"
            for i in display.issues
        )
        parts.append(
            '<details class="issues"><summary><h2>Problems found</h2> '
            f'<span class="hint">({len(display.issues)})</span></summary>'
            f"<ul>{items}</ul></details>"
        )
    if story.frames or story.narrative:
        parts.append(
            '<details class="analysis"><summary><h2>Analysis</h2> '
            '<span class="hint">how the model saw each photo</span></summary>'
        )
        for frame in story.frames:
            parts.append(_frame_html(frame, names, colours))
        if story.narrative:
            parts.append("<h3>Narrative structure</h3>")
            parts.append(
                _html_table(
                    _NARRATIVE_HEADERS,
                    (tuple(map(_e, _phase_cells(p))) for p in story.narrative),
                )
            )
        parts.append("</details>")
    parts.append(f"</main><script>{_SCRIPT}</script></body></html>")
    return "\n".join(parts) + "\n"


def frame_photo_html(
    display: StoryDisplay,
    frame: DisplayFrame,
    images: Mapping[int, str],
    boxes: Mapping[int, Mapping[str, PhotoBox]],
) -> tuple[str, frozenset[str]]:
    """The frame's photo as a figure with its boxes drawn over it (empty when the frame has no
    photo), and the ids of the entities boxed there (their words can show their box)."""
    image = images.get(frame.index) if frame.index is not None else None
    if not image:
        return "", frozenset()
    on_photo = boxes.get(frame.index, {}) if frame.index is not None else {}
    drawn = "".join(
        box_html(entity_id, box, display.colour(entity_id), display.name(entity_id))
        for entity_id, box in on_photo.items()
    )
    picture = (
        f'<figure class="photo"><img src="{_e(image)}" alt="{_e(frame.heading)}">{drawn}</figure>'
    )
    return picture, frozenset(on_photo)


def _frame_text_html(
    display: StoryDisplay,
    frame: DisplayFrame,
    images: Mapping[int, str],
    boxes: Mapping[int, Mapping[str, PhotoBox]],
) -> str:
    anchor = f' id="image-{frame.index}"' if frame.index is not None else ""
    picture, boxed = frame_photo_html(display, frame, images, boxes)
    spans = "".join(span_html(span, boxed) for span in frame.spans)
    return (
        f'<article class="frame"{anchor}>{picture}<div class="text"><h2>{_e(frame.heading)}</h2>'
        f"<p>{spans}</p></div></article>"
    )


def box_html(entity_id: str, box: PhotoBox, colour: str, name: str) -> str:
    """A hidden box over the photo: ``box`` (fractions) as percentages of the photo."""
    left, top, right, bottom = (100 * max(0.0, min(1.0, v)) for v in box)
    style = (
        f"left: {left:.3f}%; top: {top:.3f}%; width: {right - left:.3f}%; "
        f"height: {bottom - top:.3f}%; border-color: {colour}"
    )
    return (
        f'<div class="box" data-id="{_e(entity_id)}" style="{style}" hidden>'
        f'<span style="background: {colour}">{_e(name)}</span></div>'
    )


def _frame_html(frame: Frame, names: Mapping[str, str] | None, colours: Mapping[str, str]) -> str:
    parts = [f'<h3 id="analysis-{frame.index}">Image {frame.index}</h3>']
    if frame.characters:
        parts.append("<h4>Characters</h4>")
        parts.append(
            _html_table(
                _CHARACTER_HEADERS,
                (
                    (
                        _id_cell(c.id, colours),
                        _name_cell(c, names),
                        *map(_e, _character_details(c)),
                    )
                    for c in frame.characters
                ),
            )
        )
    if frame.objects:
        parts.append("<h4>Objects</h4>")
        parts.append(
            _html_table(
                _OBJECT_HEADERS,
                ((_id_cell(o.id, colours), *map(_e, _object_details(o))) for o in frame.objects),
            )
        )
    if frame.settings:
        parts.append("<h4>Setting</h4>")
        parts.append(
            _html_table(
                _SETTING_HEADERS, (tuple(map(_e, _setting_cells(s))) for s in frame.settings)
            )
        )
    return "".join(parts)
