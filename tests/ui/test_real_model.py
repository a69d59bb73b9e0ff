"""The GUI with real llama.cpp: the tiny fixture model tells a (random) story of one photo."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ui_helpers import drop_urls

from desktop_app.app.settings import Settings
from desktop_app.engine.events import Detail
from desktop_app.library.records import RunStatus
from desktop_app.ui.app import gui_backend


@pytest.mark.slow
def test_generate_with_the_tiny_model_through_llama_cpp(
    qtbot: Any, make_window: Callable[..., Any], library: Any, tiny_model: Any, tiny_image: Path
) -> None:
    settings = Settings(
        model_path=tiny_model.text_gguf,
        mmproj_path=tiny_model.mmproj_gguf,
        n_threads=2,
        detail=Detail.LOW,
        max_tokens=40,
        seed=7,
    )
    window = make_window(settings=settings, backend_factory=lambda: gui_backend(settings))
    album = window.sidebar.new_album("Tiny", edit=False)
    drop_urls(window.filmstrip.view.viewport(), [tiny_image])
    qtbot.waitUntil(lambda: window.photo_model.rowCount() == 1, timeout=10_000)
    # Before this model's first run here, the time comes from its size and says so.
    assert "under a minute (estimate)" in window.filmstrip.cost_label.text()
    phases: list[str] = []
    phase_label = window.story_toolbar.phase_label
    set_phase = phase_label.setText
    phase_label.setText = lambda text: (phases.append(text), set_phase(text))[1]
    window.generation.generate()
    qtbot.waitUntil(lambda: not window.generation.is_generating(), timeout=120_000)
    assert any(text.endswith("under a minute left (estimate)") for text in phases), phases
    # The run measured this machine: the estimate is now its own.
    qtbot.waitUntil(lambda: "(estimate)" not in window.filmstrip.cost_label.text(), timeout=5_000)
    assert "under a minute" in window.filmstrip.cost_label.text()

    (run,) = library.runs(album.id)
    assert run.status is RunStatus.COMPLETE, run.error
    assert run.raw_output  # the random model says something
    assert "llama.cpp" in run.backend
    (photo,) = run.photos
    assert photo.prepared_size is not None and photo.original_size == (168, 112)
    assert "llama.cpp" in window.status_bar.backend_label.text()
    assert "tokens/s" in window.status_bar.speed_label.text()
    assert window.current_run.id == run.id
