"""The toolbar speaks the training's terms: detail levels and the instruction before the photos."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget
from ui_helpers import session_album, tell_and_wait

from desktop_app.app.settings import Settings
from desktop_app.engine.api import TRAINED_INSTRUCTIONS, Detail
from desktop_app.story.ids import entity_kind
from desktop_app.ui.actions import WindowActions
from desktop_app.ui.compare import run_header_html
from desktop_app.ui.filmstrip import Filmstrip
from desktop_app.ui.generation import GenerationController
from desktop_app.ui.story_toolbar import StoryToolbar
from desktop_app.ui.trained_choices import NO_INSTRUCTION


def _toolbar_and_strip(session: Any, host: Callable[[Any], Any]) -> tuple[Any, Any]:
    owner = QWidget()
    actions = WindowActions(owner)
    toolbar = StoryToolbar(session, actions["generate"], actions["stop"], owner)
    strip = Filmstrip(session, actions, owner)
    host(owner)
    return toolbar, strip


def test_detail_levels_are_named_by_what_the_model_saw(
    qtbot: Any,
    make_session: Callable[..., Any],
    host: Callable[[Any], Any],
    sample_photos: list[Path],
) -> None:
    session = make_session(settings=Settings())
    toolbar, strip = _toolbar_and_strip(session, host)
    combo = toolbar.detail_combo
    labels = [combo.itemText(i) for i in range(combo.count())]
    assert labels == [
        "As trained (256 tokens/photo)",
        "More detail (512 tokens/photo)",
        "Most detail (1024 tokens/photo)",
    ]
    assert toolbar.detail() is Detail.AS_TRAINED  # the default
    tips = [combo.itemData(i, Qt.ItemDataRole.ToolTipRole) for i in range(combo.count())]
    assert "closest to the training" in tips[0]
    assert all("beyond the training resolution" in tip for tip in tips[1:])
    session_album(session, sample_photos[:2])
    assert "(detail: As trained, at most 256 tokens per photo)" in strip.cost_label.toolTip()
    combo.setCurrentIndex(2)  # the strip's estimate follows the choice through the session
    assert "(detail: Most detail, at most 1024 tokens per photo)" in strip.cost_label.toolTip()


def test_the_instruction_is_a_trained_one_none_or_the_user_s_own(
    qtbot: Any,
    make_session: Callable[..., Any],
    host: Callable[[Any], Any],
    sample_photos: list[Path],
    library: Any,
) -> None:
    session = make_session(settings=Settings())
    toolbar, _strip = _toolbar_and_strip(session, host)
    generation = GenerationController(session)
    combo = toolbar.instruction_combo
    assert [combo.itemData(i) for i in range(combo.count())] == list(TRAINED_INSTRUCTIONS)
    assert combo.instruction() == "Create a story based on these images."
    assert "trained with" in combo.toolTip()
    combo.setCurrentIndex(combo.findText(NO_INSTRUCTION))
    assert combo.instruction() == "" and not combo.is_custom()
    combo.setEditText("Tell the story of our trip to Lisbon.")
    assert combo.is_custom() and "beyond training" in combo.toolTip()
    album = session_album(session, sample_photos[:2])
    tell_and_wait(qtbot, generation)
    (run,) = library.runs(album.id)
    stored = library.run(run.id).parameters
    assert stored["instruction"] == "Tell the story of our trip to Lisbon."
    assert (stored["detail"], stored["token_budget"]) == ("trained", 256)


def test_runs_stored_with_the_old_detail_names_keep_their_recorded_detail(
    make_session: Callable[..., Any], sample_photos: list[Path], library: Any
) -> None:
    from desktop_app.library.records import RunSpec

    session = make_session(settings=Settings())
    album = session_album(session, sample_photos[:1])
    photo_ids = tuple(p.id for p in session.photo_model.photos())
    # What the first releases stored: the GUI wrote only the name, the CLI the budget too.
    old_gui = library.start_run(
        album.id, RunSpec(photo_ids=photo_ids, parameters={"detail": "normal"})
    )
    old_cli = library.start_run(
        album.id,
        RunSpec(photo_ids=photo_ids, parameters={"detail": "high", "token_budget": 1024}),
    )
    headers = [run_header_html(library.run(run_id)) for run_id in (old_gui, old_cli)]
    assert "More detail, 512 tokens/photo" in headers[0]
    assert "Most detail, 1024 tokens/photo" in headers[1]
    assert library.run(old_gui).parameters == {"detail": "normal"}  # stored as it was


def test_the_cast_gallery_says_what_kind_each_id_names(story_tabs: Any) -> None:
    gallery = story_tabs.analysis_panel.cast_list
    tips = {gallery.item(i).toolTip().split("\n")[0] for i in range(gallery.count())}
    assert "Maya (character)" in tips
    assert any(tip.endswith("(place)") for tip in tips)
    assert not any("char1" in tip or "bg1" in tip for tip in tips)  # no internal ids
    assert entity_kind("lm2").noun == "landmark" and entity_kind("lm2").is_place
    assert entity_kind("Maya") is None
