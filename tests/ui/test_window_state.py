"""What the window keeps between sessions: its layout, the open album and the story choices."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from desktop_app.app.settings import Settings, load_settings


@pytest.mark.end_to_end
def test_window_layout_album_and_story_choices_come_back_next_time(
    qtbot: Any, make_window: Callable[..., Any], library: Any
) -> None:
    from desktop_app.engine.api import Detail, Preset

    window = make_window(settings=Settings())
    window.sidebar.new_album("First", edit=False)
    second = window.sidebar.new_album("Second", edit=False)
    window.story_toolbar.preset_combo.setCurrentIndex(1)  # creative
    window.story_toolbar.detail_combo.setCurrentIndex(2)  # high
    window.story_toolbar.seed_spin.setValue(42)
    window.session.remember_choices()
    window.main_splitter.setSizes([400, 1040])
    sizes = window.main_splitter.sizes()
    window.close()
    again = make_window(settings=load_settings())
    assert again.current_album_id == second.id
    assert again.main_splitter.sizes() == sizes
    assert (
        again.story_toolbar.preset(),
        again.story_toolbar.detail(),
        again.story_toolbar.seed(),
    ) == (Preset.CREATIVE, Detail.HIGH, 42)
