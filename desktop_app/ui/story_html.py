"""The story as Qt rich text (the app's story view, the comparison and the PDF): a writer over the
display model (``desktop_app.story.display``), as the HTML page is.

One section per frame, its photo beside its text, spans as links. Everything that comes from the
model is escaped first; only our own markup is added. Each grounded span becomes an
``<a href="span:N">`` whose colour is its entity's (the display model's) and whose style comes
from its kind (entity bold, action italic, location underlined) so that the meaning does not
depend on colour alone. ``SpanRef`` records what each link points at.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass

from desktop_app.story.display import DisplaySpan, StoryDisplay

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


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _span_html(href: str, span: DisplaySpan, selected_id: str | None, link: bool = True) -> str:
    style = f"color:{span.colour};text-decoration:none;" + KIND_STYLE.get(span.kind.value, "")
    if selected_id and selected_id in span.ids:
        style += "background-color:#fff2a8;"
    who = ", ".join(span.names)  # what the user calls them; ids are the model's bookkeeping
    title = f"{KIND_LABEL.get(span.kind.value, span.kind.value)}: {who}"
    if not link:  # printed or exported: styled text, no link to follow
        return f'<span style="{style}">{_esc(span.text)}</span>'
    return f'<a href="{href}" style="{style}" title="{_esc(title)}">{_esc(span.text)}</a>'


def render_story(
    display: StoryDisplay,
    *,
    frame_images: Mapping[int, str] | None = None,
    selected_id: str | None = None,
    frame_count: int | None = None,
    live: bool = False,
    image_width: int = 180,
    links: bool = True,
    headings: bool = True,
    font_size_pt: float = 11,
) -> RenderedStory:
    """Write ``display`` (the display model of a story) as Qt rich text.

    ``frame_images`` maps a frame number to an image URL registered with the document;
    ``live`` adds a progress line for a story still being written; ``links=False`` renders
    spans as styled text (print, PDF, presentation); ``headings=False`` leaves out the "Frame N"
    headings (presentation mode shows one frame at a time); ``font_size_pt`` is the type's size
    (whole points: Qt's rich text reads no fractions).
    """
    spans: dict[str, SpanRef] = {}
    parts: list[str] = [f'<div style="font-size:{round(font_size_pt)}pt;">']
    if not display.frames:
        parts.append(_analysis_progress_html(display, frame_count, live))
    for frame in display.frames:
        text_parts: list[str] = []
        for span in frame.spans:
            if not span.grounded:
                text_parts.append(_esc(span.text).replace("\n", "<br>"))
                continue
            href = f"span:{len(spans)}"
            spans[href] = SpanRef(frame.index, span.ids, span.kind.value, span.text)
            text_parts.append(_span_html(href, span, selected_id, links))
        empty = "…" if live else "(no text)"  # "…" only while more may come
        body = "".join(text_parts).strip() or f'<span style="color:#888;">{empty}</span>'
        index = frame.index
        image = (frame_images or {}).get(index) if index is not None else None
        image_cell = (
            f'<img src="{_esc(image)}" width="{image_width}">'
            if image
            else f'<span style="color:#888;">{"photo " + str(index) if index else ""}</span>'
        )
        if headings:
            parts.append(
                f'<a name="frame{index or 0}"></a>'
                f'<h3 style="margin-top:14px;margin-bottom:4px;">{_esc(frame.heading)}</h3>'
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
    if live and display.frames:
        parts.append('<p style="color:#888;">writing…</p>')
    parts.append("</div>")
    return RenderedStory("".join(parts), spans)


def _analysis_progress_html(display: StoryDisplay, frame_count: int | None, live: bool) -> str:
    """While the model is still analysing (no story text yet): who and what it found so far."""
    frames = list(display.story.frames)
    if not frames:
        if live:
            return '<p style="color:#666;">The model is looking at your photos…</p>'
        return '<p style="color:#666;">This version has no story text.</p>'
    total = f"/{frame_count}" if frame_count else ""
    out = [
        f'<p style="color:#666;">Analysing frame {len(frames)}{total}: the story follows the '
        "analysis.</p>"
        if live
        else f'<p style="color:#666;">No story text: the model analysed {len(frames)}'
        f"{total.replace('/', ' of ')} photos before it ended.</p>"
    ]
    for frame in frames:
        items: list[str] = []
        for entity in [*frame.characters, *frame.objects]:
            # Names only: ids are the model's bookkeeping, not the reader's (issue 21, A.19).
            items.append(
                f'<span style="color:{display.colour(entity.id)};font-weight:600;">'
                f"{_esc(display.name(entity.id))}</span>"
            )
        settings = [row.description for row in frame.settings if getattr(row, "description", "")]
        line = ", ".join(items) if items else ("…" if live else "nothing found")
        if settings:
            line += f'<br><span style="color:#666;">{_esc("; ".join(settings[:3]))}</span>'
        out.append(f"<p><b>Frame {frame.index}</b>: {line}</p>")
    return "".join(out)
