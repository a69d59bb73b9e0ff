"""Photos prepared in the background while an album is open, on the real llama.cpp backend.

The tiny model through real llama.cpp, a photo's encode held at a gate as in the stop tests:
Generate cancels a preparation without waiting for the photo in the vision encoder (the run files
that photo itself), a finished preparation is what the run reuses (only the prompt's last token is
evaluated again, no photo encoded again), the status bar says what is being prepared and, when a run
waits for a photo a preparation left in the encoder, which photo and for at most how long; the
setting switches it off. The battery check reads a power-supply tree as Linux lays it out.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ui_helpers import session_album

from desktop_app.app import preparation
from desktop_app.engine import llama_prompt, photo_encoder
from desktop_app.engine.api import Detail
from desktop_app.engine.llama_backend import LlamaCppBackend
from desktop_app.ui.generation import GenerationController
from desktop_app.ui.preparation import PreparationController

pytestmark = pytest.mark.slow


@pytest.fixture
def backend(tiny_model: Any, tmp_path: Path) -> Iterator[LlamaCppBackend]:
    engine = LlamaCppBackend(
        tiny_model.text_gguf,
        tiny_model.mmproj_gguf,
        cache_dir=tmp_path / "embeddings",
        prompt_cache_dir=tmp_path / "prompts",
        manifest=tiny_model.manifest,
    )
    yield engine
    engine.close()


class Gate:
    """Holds the ``held``-th vision encode (1-based) until ``open``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, held: int) -> None:
        self.opened = threading.Event()
        self.entered = threading.Event()
        self.calls = 0
        real = llama_prompt.encode

        def encode(*args: object) -> np.ndarray:
            self.calls += 1
            if self.calls == held:
                self.entered.set()
                assert self.opened.wait(60), "the test never opened the gate"
            return real(*args)

        monkeypatch.setattr(photo_encoder.llama_prompt, "encode", encode)

    def open(self) -> None:
        self.opened.set()


def preparing_session(
    make_session: Callable[..., Any], backend: LlamaCppBackend, photos: list[Path]
) -> tuple[Any, PreparationController, GenerationController, list[str]]:
    session = make_session(backend=backend)
    session.settings = session.settings.replace(max_tokens=8)
    preparation_ = PreparationController(session, settle_ms=0)
    generation = GenerationController(session)
    messages: list[str] = []
    session.status_message.connect(messages.append)
    session.run_progressed.connect(lambda live: messages.append(live.phase_text))
    session_album(session, photos)  # opening it and adding photos schedules a preparation
    return session, preparation_, generation, messages


def test_generate_cancels_a_preparation_without_waiting_for_the_photo_in_the_encoder(
    qtbot: Any,
    make_session: Callable[..., Any],
    backend: LlamaCppBackend,
    sample_photos: list[Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    photos = sample_photos[:3]
    gate = Gate(monkeypatch, held=2)
    _session, prep, generation, messages = preparing_session(make_session, backend, photos)
    qtbot.waitUntil(gate.entered.is_set, timeout=30_000)
    qtbot.waitUntil(lambda: "Preparing photo 2 of 3…" in messages)
    generation.generate()
    # The preparation ends while photo 2 is still in the encoder: Generate did not wait for it.
    qtbot.waitUntil(lambda: not prep.is_preparing(), timeout=10_000)
    assert not gate.opened.is_set() and generation.is_generating()
    # The run reaches photo 2 and says that it waits for it, and at most how long.
    qtbot.waitUntil(lambda: finishing("Finishing photo 2, prepared in the background", messages))
    assert not any(m.startswith("Encoding photo 2") for m in messages)
    gate.open()  # the run needs photo 2: it files the encode the preparation left
    qtbot.waitUntil(lambda: not generation.is_generating(), timeout=60_000)
    assert backend.photos_encoded == 3  # each photo once: photo 1 by the preparation
    assert gate.calls == 3


def finishing(text: str, messages: list[str]) -> bool:
    """Whether the status bar said ``text (≤ N s)…`` with a bound N of at least 1 s."""
    prefix = text + " (≤ "
    return any(
        m.startswith(prefix) and int(m[len(prefix) :].split(" s)")[0]) >= 1 for m in messages
    )


def test_a_run_at_another_detail_says_it_finishes_the_old_details_photo(
    qtbot: Any,
    make_session: Callable[..., Any],
    backend: LlamaCppBackend,
    sample_photos: list[Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    photos = sample_photos[:2]
    gate = Gate(monkeypatch, held=2)
    session, prep, generation, messages = preparing_session(make_session, backend, photos)
    qtbot.waitUntil(gate.entered.is_set, timeout=30_000)
    assert session.choices.detail is Detail.AS_TRAINED
    session.set_choices(dataclasses.replace(session.choices, detail=Detail.MORE))
    generation.generate()
    # Photo 2 at "as trained" is of no use to this run, but the encoder is busy with it until
    # it is done: the run says so while it waits, then goes on.
    qtbot.waitUntil(lambda: finishing("Finishing a photo prepared for the old detail", messages))
    assert not gate.opened.is_set() and generation.is_generating()
    gate.open()
    qtbot.waitUntil(lambda: not generation.is_generating(), timeout=60_000)
    assert not prep.is_preparing() and session.library.runs(session.album_id)
    assert backend.photos_encoded == 4  # 2 at the old detail (one filed unseen), 2 at the new


def test_a_finished_preparation_is_what_generate_reuses(
    qtbot: Any,
    make_session: Callable[..., Any],
    backend: LlamaCppBackend,
    sample_photos: list[Path],
) -> None:
    photos = sample_photos[:2]
    session, prep, generation, messages = preparing_session(make_session, backend, photos)
    qtbot.waitUntil(lambda: "Photos prepared: Generate starts at once" in messages, timeout=60_000)
    assert "Preparing photo 1 of 2…" in messages and "Preparing photo 2 of 2…" in messages
    assert not prep.is_preparing() and backend.photos_encoded == 2
    read = backend.prompt_tokens_read
    generation.generate()
    qtbot.waitUntil(lambda: not generation.is_generating(), timeout=60_000)
    assert backend.photos_encoded == 2
    assert backend.prompt_tokens_read - read == 1  # only the last token, as Generate again
    assert session.library.runs(session.album_id)  # and the story was told


def test_the_setting_switches_it_off(
    qtbot: Any,
    make_session: Callable[..., Any],
    backend: LlamaCppBackend,
    sample_photos: list[Path],
) -> None:
    session = make_session(backend=backend)
    session.settings = session.settings.replace(prepare_in_background=False)
    prep = PreparationController(session, settle_ms=0)
    session_album(session, sample_photos[:1])
    qtbot.wait(200)
    prep.start()
    assert not prep.is_preparing() and backend.photos_encoded == 0


def power_supply(root: Path, name: str, **files: str) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    for key, value in files.items():
        (folder / key).write_text(value + "\n")


def test_on_battery_only_when_a_battery_discharges_and_no_mains_is_online(tmp_path: Path) -> None:
    laptop = tmp_path / "laptop"
    power_supply(laptop, "BAT0", type="Battery", status="Discharging")
    power_supply(laptop, "AC", type="Mains", online="0")
    assert preparation._linux_on_battery(laptop)
    (laptop / "AC" / "online").write_text("1\n")
    assert not preparation._linux_on_battery(laptop)
    desktop = tmp_path / "desktop"
    power_supply(desktop, "AC", type="Mains", online="1")
    assert not preparation._linux_on_battery(desktop)
    assert not preparation._linux_on_battery(tmp_path / "none")  # no power-supply class
