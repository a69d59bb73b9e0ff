"""The story and analysis panels on real-world shaped outputs: messy, truncated, multi-id, unicode.

Uses the story package's golden raw outputs, so every shape the parser is tested on is also
shown by the GUI without an error, with model text escaped and every grounded word answering.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import ui_sample

from desktop_app.app.stored_story import FrameGeometry
from desktop_app.story.parser import parse_story
from desktop_app.story.validate import validate
from desktop_app.ui.analysis import AnalysisPanel
from desktop_app.ui.story_panel import StoryPanel

GOLDEN_RAW = Path(__file__).resolve().parent.parent / "story" / "golden" / "raw"
GOLDEN = sorted(GOLDEN_RAW.glob("*.txt"))


def frame_photos(photos: list[Path], count: int = 20) -> dict[int, FrameGeometry]:
    return {i: FrameGeometry(i, photos[(i - 1) % len(photos)]) for i in range(1, count + 1)}


@pytest.mark.skipif(not GOLDEN, reason="the story package's golden outputs are not there")
@pytest.mark.parametrize("golden", GOLDEN, ids=lambda p: p.stem)
def test_every_golden_output_renders_and_every_word_answers(
    qtbot: Any, golden: Path, sample_photos: list[Path]
) -> None:
    text = golden.read_text(encoding="utf-8")
    story = parse_story(text)
    issues = validate(story)
    panel = StoryPanel()
    qtbot.addWidget(panel)
    panel.resize(1000, 700)
    panel.set_frame_photos(frame_photos(sample_photos))
    panel.set_story(story, issues=issues)
    shown = panel.browser.toPlainText()
    assert "<gdo" not in shown and "<gdi" not in shown and "<think>" not in shown
    assert panel.issues_list.count() == len(issues)
    for href in panel.spans:
        panel.show_span(href)  # hovering any word never fails
    for row in range(panel.issues_list.count()):
        panel.issues_list.itemClicked.emit(panel.issues_list.item(row))
    analysis = AnalysisPanel()
    qtbot.addWidget(analysis)
    analysis.set_frame_photos(frame_photos(sample_photos))
    analysis.set_story(story, {})
    assert analysis.frame_tabs.count() == len(story.frames)
    assert analysis.cast_list.count() == len(analysis.cast_ids(story))


def test_markup_in_model_text_is_shown_as_text_not_interpreted(
    qtbot: Any, sample_photos: list[Path]
) -> None:
    text = ui_sample.story_text().replace(
        "creaked and watched.", 'creaked <b>and</b> watched. <img src="x"> & <a href="y">z</a>'
    )
    panel = StoryPanel()
    qtbot.addWidget(panel)
    panel.set_frame_photos(frame_photos(sample_photos, 4))
    panel.set_story(parse_story(text))
    shown = panel.browser.toPlainText()
    assert '<b>and</b> watched. <img src="x"> & <a href="y">z</a>' in shown
    assert all(href.startswith("span:") for href in panel.spans)
