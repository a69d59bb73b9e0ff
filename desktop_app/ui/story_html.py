"""The story as Qt rich text: one section per frame, its photo beside its text, spans as links.

Everything that comes from the model is escaped first; only our own markup is added. Each
grounded span becomes an ``<a href="span:N">`` whose colour comes from its entity id and whose
style comes from its kind (entity bold, action italic, location underlined) so that the meaning
does not depend on colour alone. ``SpanRef`` records what each link points at.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass

from desktop_app.story.model import Span, SpanKind, Story
from desktop_app.story.names import display_name, entity_colours, shown_text, strip_tags

KIND_STYLE = {
    "entity": "font-weight:600;",
    "action": "font-style:italic;",
    "location": "text-decoration:underline;",
}
KIND_LABEL = {"entity": "who/what", "action": "action", "location": "place"}


@dataclass(frozen=True)
class SpanRef:
    """What a link in the story points at."""

    frame: int | None  # 1-based frame (image) number; None for text outside any <gdi> block
    ids: tuple[str, ...]
    kind: str
    text: str


@dataclass(frozen=True)
class RenderedStory:
    html: str
    spans: dict[str, SpanRef]  # anchor href -> span


def kind_value(kind: SpanKind | str) -> str:
    """A SpanKind enum (or plain string) as its value."""
    return str(getattr(kind, "value", kind))


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _span_html(
    href: str,
    span: Span,
    kind: str,
    colors: Mapping[str, str],
    story: Story,
    names: Mapping[str, str] | None,
    selected_id: str | None,
    link: bool = True,
) -> str:
    first = span.ids[0] if span.ids else ""
    color = colors.get(first, "#333333")
    style = f"color:{color};text-decoration:none;" + KIND_STYLE.get(kind, "")
    if selected_id and selected_id in span.ids:
        style += "background-color:#fff2a8;"
    who = ", ".join(f"{display_name(i, story, names)} ({i})" for i in span.ids)
    title = f"{KIND_LABEL.get(kind, kind)}: {who}"
    text = shown_text(span, story, names)
    if not link:  # printed or exported: styled text, no link to follow
        return f'<span style="{style}">{_esc(text)}</span>'
    return f'<a href="{href}" style="{style}" title="{_esc(title)}">{_esc(text)}</a>'


def render_story(
    story: Story,
    *,
    names: Mapping[str, str] | None = None,
    frame_images: Mapping[int, str] | None = None,
    selected_id: str | None = None,
    frame_count: int | None = None,
    live: bool = False,
    image_width: int = 180,
    links: bool = True,
) -> RenderedStory:
    """Render ``story`` (a ``desktop_app.story`` Story) to Qt rich text.

    ``frame_images`` maps a frame number to an image URL registered with the document;
    ``live`` adds a progress line for a story still being written; ``links=False`` renders
    spans as styled text (print, PDF).
    """
    colors = entity_colours(story)
    spans: dict[str, SpanRef] = {}
    parts: list[str] = ['<div style="font-size:11pt;">']
    segments = list(story.segments)
    if not segments:
        parts.append(_analysis_progress_html(story, names, colors, frame_count, live))
    for segment in segments:
        frame = segment.image
        text_parts: list[str] = []
        for span in segment.spans:
            kind = kind_value(span.kind)
            if kind == "text" or not span.ids:
                text_parts.append(_esc(strip_tags(span.text)).replace("\n", "<br>"))
                continue
            href = f"span:{len(spans)}"
            spans[href] = SpanRef(frame, tuple(span.ids), kind, span.text)
            text_parts.append(
                _span_html(href, span, kind, colors, story, names, selected_id, links)
            )
        body = "".join(text_parts).strip() or '<span style="color:#888;">…</span>'
        image = (frame_images or {}).get(frame) if frame is not None else None
        image_cell = (
            f'<img src="{_esc(image)}" width="{image_width}">'
            if image
            else f'<span style="color:#888;">{"photo " + str(frame) if frame else ""}</span>'
        )
        heading = f"Frame {frame}" if frame is not None else "Story"
        parts.append(
            f'<a name="frame{frame or 0}"></a>'
            f'<h3 style="margin-top:14px;margin-bottom:4px;">{heading}</h3>'
        )
        if image_width <= 0:
            parts.append(f'<p style="line-height:140%;">{body}</p>')
            continue
        parts.append(
            '<table width="100%" cellspacing="0" cellpadding="6"><tr>'
            f'<td width="{image_width + 12}" valign="top">{image_cell}</td>'
            f'<td valign="top" style="line-height:140%;">{body}</td>'
            "</tr></table>"
        )
    if live and segments:
        parts.append('<p style="color:#888;">writing…</p>')
    parts.append("</div>")
    return RenderedStory("".join(parts), spans)


def _analysis_progress_html(
    story: Story,
    names: Mapping[str, str] | None,
    colors: Mapping[str, str],
    frame_count: int | None,
    live: bool,
) -> str:
    """While the model is still analysing (no story text yet): who and what it found so far."""
    frames = list(story.frames)
    if not frames:
        if live:
            return '<p style="color:#666;">The model is looking at your photos…</p>'
        return '<p style="color:#666;">This version has no story text.</p>'
    total = f"/{frame_count}" if frame_count else ""
    out = [
        f'<p style="color:#666;">{"Analysing" if live else "Analysed"} '
        f"frame {len(frames)}{total}: the story follows the analysis.</p>"
    ]
    for frame in frames:
        items: list[str] = []
        for entity in [*frame.characters, *frame.objects]:
            color = colors.get(entity.id, "#333")
            items.append(
                f'<span style="color:{color};font-weight:600;">'
                f"{_esc(display_name(entity.id, story, names))}</span>"
                f' <span style="color:#888;">({_esc(entity.id)})</span>'
            )
        settings = [row.description for row in frame.settings if getattr(row, "description", "")]
        line = ", ".join(items) if items else "…"
        if settings:
            line += f'<br><span style="color:#666;">{_esc("; ".join(settings[:3]))}</span>'
        out.append(f"<p><b>Frame {frame.index}</b>: {line}</p>")
    return "".join(out)
