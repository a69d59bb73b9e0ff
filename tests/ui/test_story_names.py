"""PDF (the app's rich text) and the HTML page name entities and show literals the same way."""

from __future__ import annotations

import html
import re

from desktop_app.story.names import display_name
from desktop_app.story.parser import parse_story
from desktop_app.story.render import render_html
from desktop_app.ui.story_html import render_story

LONG = "A very long paper boat folded from yesterday's newspaper"
RAW = f"""<think>
## Image 1

### Characters
| Character ID | Name | Description | Emotions | Actions | Narrative Function | Bounding Box |
|---|---|---|---|---|---|---|

### Objects
| Object ID | Description | Function | Interaction | Narrative Function | Bounding Box |
|---|---|---|---|---|---|
| obj1 | {LONG} | Toy | Floats | Catalyst | 1,2,10,12 |

### Setting
| Setting Element | Description | Mood | Time | Narrative Function |
|---|---|---|---|---|
</think>
<gdi image1>
<gdo obj1>The boat</gdo> drifted <gda obj1 {"x" * 210}> off into the rain.
</gdi>
"""


def _visible(markup: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def test_an_unnamed_object_is_named_the_same_in_pdf_and_html() -> None:
    story = parse_story(RAW)
    name = display_name("obj1", story)
    assert name == LONG[:37] + "..."  # one rule: descriptions stand in for names, cut at 40
    page = render_html(story, [])
    rich = render_story(story).html  # the app's view (PDF is the same without links)
    assert f"obj1 · {name}" in html.unescape(page)
    assert f"{name} (obj1)" in html.unescape(rich)


def test_tag_like_literals_read_the_same_in_pdf_and_html() -> None:
    story = parse_story(RAW)
    pdf = _visible(render_story(story, links=False, image_width=0).html)
    page = _visible(render_html(story, []))
    assert "The boat drifted off into the rain." in pdf
    assert "The boat obj1 drifted off into the rain." in page  # the page adds ids after words
    assert "xxxx" not in pdf and "xxxx" not in page
