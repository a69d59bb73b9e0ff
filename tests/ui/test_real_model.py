"""The GUI with real llama.cpp: the tiny fixture model tells a (random) story of one photo, and
the time estimate beside the cost counts only what the next run will not find cached."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from ui_helpers import drop_urls, session_album

from desktop_app import paths
from desktop_app.app.settings import Settings
from desktop_app.engine import device, speeds
from desktop_app.engine.api import Detail
from desktop_app.engine.speeds import Speeds
from desktop_app.library.records import RunStatus
from desktop_app.ui.startup import gui_backend


def tiny_settings(tiny_model: Any) -> Settings:
    """The tiny model at low detail, 40 tokens, a fixed seed."""
    return Settings(
        model_path=tiny_model.text_gguf,
        mmproj_path=tiny_model.mmproj_gguf,
        n_threads=2,
        detail=Detail.LOW,
        max_tokens=40,
        seed=7,
    )


def generate_seeing_phases(qtbot: Any, status_bar: Any, generation: Any) -> list[str]:
    """Generate and wait for the end; every phase line ``status_bar`` showed meanwhile, in
    order."""
    phases: list[str] = []
    phase_label = status_bar.phase_label
    set_phase = phase_label.setText
    phase_label.setText = lambda text: (phases.append(text), set_phase(text))[1]
    try:
        generation.generate()
        qtbot.waitUntil(lambda: not generation.is_generating(), timeout=120_000)
    finally:
        phase_label.setText = set_phase
    return phases


@pytest.mark.end_to_end
@pytest.mark.slow
def test_generate_with_the_tiny_model_through_llama_cpp(
    qtbot: Any, make_window: Callable[..., Any], library: Any, tiny_model: Any, tiny_image: Path
) -> None:
    settings = tiny_settings(tiny_model)
    window = make_window(settings=settings, backend_factory=gui_backend)
    album = window.sidebar.new_album("Tiny", edit=False)
    drop_urls(window.filmstrip.view.viewport(), [tiny_image])
    qtbot.waitUntil(lambda: window.photo_model.rowCount() == 1, timeout=10_000)
    # Before this model's first run here, the time comes from its size and says so.
    assert "under a minute (estimate)" in window.filmstrip.cost_label.text()
    phases = generate_seeing_phases(qtbot, window.status_bar, window.generation)
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


@pytest.mark.slow
def test_after_a_run_the_estimate_counts_only_the_writing_until_the_prompt_changes(
    qtbot: Any,
    make_session: Callable[..., Any],
    host: Callable[[Any], Any],
    tiny_model: Any,
    tiny_image: Path,
) -> None:
    from PySide6.QtWidgets import QWidget

    from desktop_app.ui.actions import WindowActions
    from desktop_app.ui.filmstrip import Filmstrip
    from desktop_app.ui.generation import GenerationController
    from desktop_app.ui.status_bar import StatusBar
    from desktop_app.ui.story_toolbar import StoryToolbar

    settings = tiny_settings(tiny_model)
    # This machine once measured a slow vision encoder and prompt reading, fast writing.
    slow = Speeds(
        encode_s_per_token=20.0,
        prefill_tokens_per_s=0.5,
        decode_tokens_per_s=1000.0,
        tokens_per_photo=10.0,
        measured=True,
        runs=1,
    )
    key = speeds.model_key(tiny_model.text_gguf, device.accelerator(settings.n_gpu_layers))
    paths.speeds_file().parent.mkdir(parents=True, exist_ok=True)
    paths.speeds_file().write_text(json.dumps({"format": 1, "models": {key: asdict(slow)}}))
    session = make_session(settings=settings, backend_factory=gui_backend)
    owner = QWidget()
    actions = WindowActions(owner)
    toolbar = StoryToolbar(session, actions["generate"], actions["stop"], owner)
    strip = Filmstrip(session, actions, owner)
    status_bar = StatusBar(session, owner)
    generation = GenerationController(session)
    host(owner)
    session_album(session, [tiny_image], name="Tiny")
    label = strip.cost_label
    # 24 image tokens x 20 s + (128 + 24 + 2) cells / 0.5 per s + 40 tokens / 1000 per s: 788 s.
    assert label.text().endswith("about 13 min")

    def generate() -> list[str]:
        phases = generate_seeing_phases(qtbot, status_bar, generation)
        return [t for t in phases if t.endswith(" left")]

    cold = generate()
    assert cold and "about 13 min left" in cold[0], cold
    # The photo's embedding and the prompt's state are cached: only the 40 tokens are left.
    assert label.text().endswith("under a minute · photos and prompt cached"), label.text()
    again = generate()
    assert again and all(text.endswith("under a minute left") for text in again), again
    # Another instruction is another prompt: the photo stays cached, the prompt is read again
    # (at the rate the run measured, averaged with the slow one: still well under a minute).
    combo = toolbar.instruction_combo
    ran_with = combo.currentText()
    combo.setEditText("What happens here?")
    assert label.text().endswith("under a minute · photos cached"), label.text()
    combo.setEditText(ran_with)
    assert label.text().endswith("under a minute · photos and prompt cached"), label.text()
