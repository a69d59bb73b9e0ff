"""Stop while a photo is in the vision encoder: the replay backend held at its encoding gate,
as llama.cpp's backend holds a run there (tests/engine/test_engine_replay_contract.py).

The run ends without waiting for the encode, with no token written, and the zero-token rule
decides what is kept: a run that wrote nothing, stopped or failed, is not kept as a version, and
the status bar says why.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ui_helpers import album_with_photos, session_album
from ui_sample import PREPARED_SIZE

from desktop_app.engine.replay_backend import EncodingGate, ReplayBackend
from desktop_app.ui.generation import GenerationController
from desktop_app.ui.session import EndedRun


def held_backend(story_output: str) -> tuple[ReplayBackend, EncodingGate]:
    """A replay of the sample story whose photo encodes wait for the returned gate."""
    gate = EncodingGate()
    return ReplayBackend(story_output, prepared_size=PREPARED_SIZE, encoding_gate=gate), gate


def stop_while_photo_1_encodes(
    qtbot: Any, session: Any, generation: Any, gate: EncodingGate, photos: int
) -> None:
    """Press Generate, then Stop once photo 1 is in the encoder; return when the run has ended,
    which it must before the encode does (the gate is opened afterwards)."""
    generation.generate()
    qtbot.waitUntil(gate.reached.is_set, timeout=10_000)
    encoding = f"Encoding photo 1/{photos}"
    qtbot.waitUntil(
        lambda: session.live is not None and session.live.phase_text.startswith(encoding)
    )
    generation.stop()
    qtbot.waitUntil(lambda: not generation.is_generating(), timeout=10_000)
    assert not gate.is_open()  # the run ended while the photo was still "encoding"
    gate.open()


def test_stop_while_a_photo_encodes_ends_the_run_without_waiting_for_the_encode(
    qtbot: Any,
    make_session: Callable[..., Any],
    library: Any,
    sample_photos: list[Path],
    story_output: str,
) -> None:
    backend, gate = held_backend(story_output)
    session = make_session(backend=backend)
    generation = GenerationController(session)
    album = session_album(session, sample_photos)
    ended: list[EndedRun] = []
    session.run_ended.connect(ended.append)
    messages: list[str] = []
    session.status_message.connect(messages.append)
    stop_while_photo_1_encodes(qtbot, session, generation, gate, len(sample_photos))
    (end,) = ended
    assert end.live is not None and end.live.tokens == 0 and not end.failed
    # The zero-token rule: no version is kept, and the user is told why.
    assert end.run is None and library.runs(album.id) == []
    assert any("stopped" in message.lower() for message in messages)
    assert not generation.is_stopping() and session.live is None


@pytest.mark.end_to_end
def test_a_run_stopped_while_a_photo_encodes_is_not_kept_and_the_status_bar_says_why(
    qtbot: Any,
    make_window: Callable[..., Any],
    library: Any,
    sample_photos: list[Path],
    story_output: str,
) -> None:
    backend, gate = held_backend(story_output)
    window = make_window(backend)
    album = album_with_photos(qtbot, window, sample_photos)
    stop_while_photo_1_encodes(qtbot, window.session, window.generation, gate, len(sample_photos))
    assert window.acts["generate"].isEnabled() and not window.acts["stop"].isEnabled()
    assert library.runs(album.id) == []
    assert window.run_model.rowCount() == 0
    assert "stopped" in window.status_bar.currentMessage().lower()
