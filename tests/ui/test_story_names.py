"""PDF (the app's rich text) and the HTML page name entities and show literals the same way."""

from __future__ import annotations

import html
import re

from desktop_app.story.display import display_story
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
    rich = render_story(display_story(story)).html  # the app's view (PDF is the same without links)
    assert f"obj1 · {name}" in html.unescape(page)
    assert f'who/what: {name}"' in html.unescape(rich)


def test_tag_like_literals_read_the_same_in_pdf_and_html() -> None:
    story = parse_story(RAW)
    pdf = _visible(render_story(display_story(story), links=False, image_width=0).html)
    page = _visible(render_html(story, []))
    assert "The boat drifted off into the rain." in pdf
    assert "The boat drifted off into the rain." in page  # ids only in the tooltip
    assert "xxxx" not in pdf and "xxxx" not in page


TWO = """<think>
## Image 1

### Characters
| Character ID | Name | Description | Emotions | Actions | Narrative Function | Bounding Box |
|---|---|---|---|---|---|---|
| char1 | Maya | A girl in a red coat | Glad | Runs | Protagonist | 10,10,60,90 |
| char2 | Joe | An old man | Calm | Walks | Helper | 70,10,120,90 |

### Objects
| Object ID | Description | Function | Interaction | Narrative Function | Bounding Box |
|---|---|---|---|---|---|
| obj1 | A red kite | Toy | Flown by Maya | Catalyst | 1,2,10,12 |

### Setting
| Setting Element | Description | Mood | Time | Narrative Function |
|---|---|---|---|---|
</think>
<gdi image1>
<gdo char1>Maya</gdo> <gda char1>ran</gda> with <gdo obj1>the kite</gdo> while <gdo char2>Joe</gdo> watched.
</gdi>
"""


def test_every_writer_names_the_same_entities_with_the_same_names_and_colours() -> None:
    import json

    from desktop_app.app.exports import write_export

    display = display_story(parse_story(TWO), (), {"char1": "Ana"})
    colours = {i: display.colour(i) for i in ("char1", "char2", "obj1")}
    assert len(set(colours.values())) == 3
    text = write_export("text", display)
    markdown = write_export("markdown", display)
    page = write_export("html", display)
    data = json.loads(write_export("json", display))
    rich = render_story(display).html  # the story view
    printed = render_story(display, links=False).html  # the PDF
    words = _visible(page)  # ids are only in tooltips
    for written in (text, markdown, words, _visible(rich), _visible(printed)):
        assert "Ana ran with the kite while Joe watched." in written
        assert "Maya ran" not in written
    assert data["display_names"] == {"char1": "Ana"}
    assert "| char1 | Ana |" in markdown and "| char2 | Joe |" in markdown
    for entity_id, colour in colours.items():
        assert f'data-ids="{entity_id}"' in page
        assert f"text-decoration-color: {colour}" in page  # the page's underline
        assert f"color:{colour}" in rich and f"color:{colour}" in printed  # the app's text
    assert [member.name for member in display.cast] == ["Ana", "Joe"]
    assert 'title="who/what: Ana"' in html.unescape(rich)  # the tooltip: no internal id
    assert "char1 · Ana" in html.unescape(page)
