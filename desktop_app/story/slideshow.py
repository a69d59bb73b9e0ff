"""The slideshow: a story as one self-contained HTML file, one frame per screen.

A writer over the display model (``desktop_app.story.display``), like ``render.write_html``: the
same tagged-word highlights and the same boxes over the photo (``render.span_html`` and
``render.frame_photo_html``), laid out as slides instead of one long page. A title slide (album name,
date range), a slide per frame (photo beside its text, above it on a narrow screen), an end
slide. Keyboard (Right/Space/PageDown, Left/PageUp, Home/End, B for boxes), click (left third:
back, elsewhere: forward), swipe and on-screen buttons move through it. Nothing is fetched: the
photos come in as ``src`` values (data: URIs) and the script and styles are inline.
"""

from __future__ import annotations

import html
from collections.abc import Mapping

from desktop_app.story.display import DisplayFrame, StoryDisplay
from desktop_app.story.render import PhotoBox, frame_photo_html, span_html

SLIDESHOW_CSS = """
html, body { margin: 0; height: 100%; overscroll-behavior: none; }
body { font: 20px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1a1a1a;
       background: #f6f3ee; overflow: hidden; -webkit-text-size-adjust: 100%; }
/* a sideways swipe is ours (the next slide), never the browser's "back" */
#show { position: fixed; inset: 0 0 3.25rem 0; touch-action: pan-y pinch-zoom; }
.slide { position: absolute; inset: 0; box-sizing: border-box; padding: 2.5vh 3vw;
         display: none; align-items: center; justify-content: center; gap: 3vw; }
.slide.current { display: flex; }
.card { text-align: center; max-width: 40rem; }
.card h1 { font-size: clamp(2rem, 6vw, 4.5rem); line-height: 1.15; margin: 0 0 .5em; }
.card h2 { font-size: clamp(1.6rem, 4vw, 3rem); margin: 0 0 .4em; }
.card p { font-size: clamp(1.1rem, 2.2vw, 1.6rem); color: #555; margin: .3em 0; }
.card .hint { font-size: 1rem; color: #777; margin-top: 2em; }
.photo { position: relative; flex: none; margin: 0; line-height: 0; border-radius: 4px;
         overflow: hidden; box-shadow: 0 2px 14px rgba(0, 0, 0, .18); }
.photo img { display: block; max-width: 62vw; max-height: calc(100vh - 3.25rem - 5vh);
             width: auto; height: auto; }
.box { position: absolute; box-sizing: border-box; border: 3px solid;
       outline: 1px solid #fff; border-radius: 2px; pointer-events: none; }
.box[hidden] { display: none; }
.box span { position: absolute; left: 0; top: 0; padding: 0 .3em; max-width: 14em;
            overflow: hidden; text-overflow: ellipsis; box-sizing: border-box;
            font: 600 .75rem/1.5 system-ui, sans-serif; color: #fff; white-space: nowrap; }
.slide .text { flex: 0 1 32rem; min-width: 0; max-height: 100%; overflow-y: auto;
               font-size: clamp(18px, 1.9vw, 32px); line-height: 1.55; }
.slide .text p { margin: 0; }
.g { text-decoration-line: underline; text-decoration-thickness: 2px;
     text-underline-offset: 3px; border-radius: 2px; padding: 0 1px; }
.g[tabindex] { cursor: pointer; }
.g:focus-visible { outline: 2px solid #1a1a1a; }
.g.entity { text-decoration-style: solid; }
.g.action { text-decoration-style: wavy; text-decoration-thickness: 1px; }
.g.location { text-decoration-style: double; text-decoration-thickness: 3px; }
.g.unknown { outline: 1px dashed #999; }
nav { position: fixed; left: 0; right: 0; bottom: 0; height: 3.25rem; display: flex;
      align-items: center; justify-content: center; gap: .8rem; background: #ebe6dd;
      border-top: 1px solid #d8d1c4; }
nav button { font: inherit; font-size: 1rem; min-width: 2.75rem; height: 2.5rem;
             border: 1px solid #b9b1a3; border-radius: 6px; background: #fff; color: #1a1a1a;
             cursor: pointer; padding: 0 .8rem; }
nav button[aria-pressed="true"] { background: #1a1a1a; color: #fff; }
nav button:disabled { opacity: .4; cursor: default; }
#where { min-width: 4.5rem; text-align: center; font-size: 1rem; color: #444; }
@media (max-width: 700px), (max-aspect-ratio: 4/5) {
  .slide.frame { flex-direction: column; justify-content: flex-start; align-items: stretch;
                 gap: 1rem; padding: 1rem; overflow-y: auto; }
  .slide.frame .photo { align-self: center; }
  .photo img { max-width: calc(100vw - 2rem); max-height: 56vh; }
  .slide .text { flex: none; max-height: none; overflow: visible; font-size: 18px; }
}
@media print { nav { display: none; } }
"""

# Moves through the slides and shows boxes. Hovering or focusing a tagged word (tapping it on a
# phone) shows its boxes, as on the HTML page; B or the Boxes button shows every box of the
# slide. A click on the left third of the screen goes back, anywhere else forward; a
# horizontal swipe of more than 50 px goes the way it points.
SLIDESHOW_SCRIPT = """
(function () {
  var slides = Array.prototype.slice.call(document.querySelectorAll(".slide"));
  var where = document.getElementById("where");
  var boxesButton = document.getElementById("boxes");
  var at = 0, allBoxes = false;
  function showBoxes(slide, ids) {
    slide.querySelectorAll(".box").forEach(function (box) {
      box.hidden = !(allBoxes || (ids && ids.indexOf(box.dataset.id) >= 0));
      var label = box.querySelector("span");
      if (box.hidden || !label) return;
      // A label that would run off the photo's right edge moves left, just enough.
      label.style.left = "";
      var room = box.parentNode.clientWidth - box.offsetLeft - label.offsetWidth;
      if (room < 0) label.style.left = Math.max(room, -box.offsetLeft) + "px";
    });
  }
  function go(n) {
    at = Math.max(0, Math.min(slides.length - 1, n));
    slides.forEach(function (slide, i) {
      slide.classList.toggle("current", i === at);
      slide.setAttribute("aria-hidden", i === at ? "false" : "true");
    });
    where.textContent = (at + 1) + " / " + slides.length;
    boxesButton.disabled = !slides[at].querySelector(".box");
    showBoxes(slides[at], null);
    document.body.dataset.slide = String(at);
  }
  function toggleBoxes() {
    allBoxes = !allBoxes;
    boxesButton.setAttribute("aria-pressed", allBoxes ? "true" : "false");
    showBoxes(slides[at], null);
  }
  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    var key = event.key;
    if (key === "ArrowRight" || key === " " || key === "PageDown") go(at + 1);
    else if (key === "ArrowLeft" || key === "PageUp") go(at - 1);
    else if (key === "Home") go(0);
    else if (key === "End") go(slides.length - 1);
    else if (key === "b" || key === "B") toggleBoxes();
    else return;
    event.preventDefault();
  });
  document.getElementById("prev").addEventListener("click", function () { go(at - 1); });
  document.getElementById("next").addEventListener("click", function () { go(at + 1); });
  boxesButton.addEventListener("click", toggleBoxes);
  var show = document.getElementById("show");
  show.addEventListener("click", function (event) {
    if (event.target.closest(".g[tabindex]")) return;
    go(event.clientX < window.innerWidth / 3 ? at - 1 : at + 1);
  });
  var startX = null, startY = 0;
  show.addEventListener("touchstart", function (event) {
    startX = event.touches.length === 1 ? event.touches[0].clientX : null;
    startY = event.touches.length === 1 ? event.touches[0].clientY : 0;
  }, { passive: true });
  show.addEventListener("touchend", function (event) {
    if (startX === null || !event.changedTouches.length) return;
    var dx = event.changedTouches[0].clientX - startX;
    var dy = event.changedTouches[0].clientY - startY;
    startX = null;
    if (Math.abs(dx) > 50 && Math.abs(dx) > Math.abs(dy)) {
      go(dx < 0 ? at + 1 : at - 1);
      event.preventDefault();  // no click after a swipe
    }
  });
  document.querySelectorAll(".slide .g[data-ids]").forEach(function (word) {
    var slide = word.closest(".slide");
    var ids = word.dataset.ids.split(" ");
    function hover(on) { showBoxes(slide, on ? ids : null); }
    word.addEventListener("mouseenter", function () { hover(true); });
    word.addEventListener("mouseleave", function () { hover(false); });
    word.addEventListener("focus", function () { hover(true); });
    word.addEventListener("blur", function () { hover(false); });
  });
  go(0);
})();
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def write_slideshow(
    display: StoryDisplay,
    *,
    title: str,
    dates: str = "",
    images: Mapping[int, str] | None = None,
    boxes: Mapping[int, Mapping[str, PhotoBox]] | None = None,
) -> str:
    """The slideshow of ``display``: one HTML file that fetches nothing.

    ``title`` (the album's name) and ``dates`` (its date range, may be empty) make the title
    slide; ``images`` maps a frame to its photo's ``src`` and ``boxes`` each entity's box on
    it as fractions of the photo (``render.PhotoBox``), as for ``render.write_html``.
    """
    images = images or {}
    boxes = boxes or {}
    slides = [_title_slide(title, dates, display.complete)]
    frames = [frame for frame in display.frames if frame.spans or frame.index is not None]
    slides += [_frame_slide(display, frame, images, boxes) for frame in frames]
    slides.append(
        '<section class="slide end"><div class="card"><h2>The end</h2>'
        f"<p>{_e(title)}</p></div></section>"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title><style>{SLIDESHOW_CSS}</style></head><body>\n"
        '<main id="show">\n' + "\n".join(slides) + "\n</main>\n"
        '<nav aria-label="Slides">'
        '<button id="prev" type="button" aria-label="Previous">&#8249;</button>'
        '<span id="where" aria-live="polite"></span>'
        '<button id="boxes" type="button" aria-pressed="false" title="Show boxes (B)">'
        "Boxes</button>"
        '<button id="next" type="button" aria-label="Next">&#8250;</button></nav>\n'
        f"<script>{SLIDESHOW_SCRIPT}</script></body></html>\n"
    )


def _title_slide(title: str, dates: str, complete: bool) -> str:
    parts = [f'<section class="slide title"><div class="card"><h1>{_e(title)}</h1>']
    if dates:
        parts.append(f'<p class="dates">{_e(dates)}</p>')
    if not complete:
        parts.append("<p><em>This story is incomplete.</em></p>")
    parts.append('<p class="hint">&#8594; or swipe to begin</p></div></section>')
    return "".join(parts)


def _frame_slide(
    display: StoryDisplay,
    frame: DisplayFrame,
    images: Mapping[int, str],
    boxes: Mapping[int, Mapping[str, PhotoBox]],
) -> str:
    anchor = f' id="frame-{frame.index}"' if frame.index is not None else ""
    picture, boxed = frame_photo_html(display, frame, images, boxes)
    spans = "".join(span_html(span, boxed) for span in frame.spans)
    return (
        f'<section class="slide frame"{anchor}>{picture}'
        f'<div class="text"><p>{spans}</p></div></section>'
    )
