"""The GUI tells a story the way the CLI does (app.telling), the generation controller with a
session: what a GUI-told version records, and that it is parsed once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest.mock import Mock

from disk_filling import FillsTheDiskAfterItsFirstToken
from ui_helpers import close_error_dialogs, session_album, tell_and_wait
from ui_sample import PREPARED_SIZE

from desktop_app.app.settings import Settings
from desktop_app.engine.api import Event, ShouldStop, StoryRequest
from desktop_app.engine.replay_backend import ReplayBackend
from desktop_app.errors import StorytellerError
from desktop_app.ui.generation import GenerationController


class _FailingModelBackend(ReplayBackend):
    """An embedded-looking backend (named after its device, with model files) that fails after
    writing a few tokens."""

    def __init__(self, output: str, model_path: Path) -> None:
        super().__init__(output, prepared_size=PREPARED_SIZE)
        self.model_path = model_path
        self.mmproj_path = model_path.with_name("tiny-mmproj.gguf")

    @property
    def description(self) -> str:
        return "llama.cpp (CPU)"

    def generate(self, request: StoryRequest, *, should_stop: ShouldStop) -> Iterator[Event]:
        for count, event in enumerate(super().generate(request, should_stop=should_stop)):
            if count == 20:
                raise StorytellerError("the model ran out of memory: choose a lower detail")
            yield event


def test_a_gui_version_records_strict_format_seed_backend_and_model_files_even_if_it_fails(
    qtbot: Any,
    make_session: Callable[..., Any],
    library: Any,
    tmp_path: Path,
    sample_photos: list[Path],
    story_output: str,
) -> None:
    model = tmp_path / "tiny.gguf"
    model.write_bytes(b"GGUF" + b"\0" * 60)
    backend = _FailingModelBackend(story_output, model)
    session = make_session(backend, settings=Settings(strict_format=True, seed=3))
    generation = GenerationController(session)
    album = session_album(session, sample_photos[:2])
    tell_and_wait(qtbot, generation)
    assert "ran out of memory" in close_error_dialogs()[0]
    (run,) = library.runs(album.id)  # partial output: kept as a failed version
    assert backend.requests[0].strict_format  # the setting the GUI used to ignore
    assert run.parameters["strict_format"] is True and run.asked.seed == 3
    assert run.parameters["sampling"]["seed"] == 3  # the shape `album tell` stores
    assert run.backend == "llama.cpp (CPU)"  # a first GUI run used to record ""
    assert run.model["text"] == {"file": "tiny.gguf", "size": 64, "sha256": None}
    assert run.model["mmproj"]["file"] == "tiny-mmproj.gguf"


def test_a_finished_version_is_parsed_once(
    qtbot: Any,
    make_session: Callable[..., Any],
    host: Callable[[Any], Any],
    sample_photos: list[Path],
    monkeypatch: Any,
) -> None:
    from desktop_app.library import storyjson
    from desktop_app.story import parser
    from desktop_app.ui.story_tabs import StoryTabs
    from desktop_app.ui.versions import VersionsController

    session = make_session()
    generation = GenerationController(session)
    VersionsController(session)
    tabs = host(StoryTabs(session))
    session_album(session, sample_photos[:2])
    parse = Mock(wraps=parser.parse_story)
    # Both ways in: the library's (storing a run) and the story package's own.
    monkeypatch.setattr(storyjson, "parse_story", parse)
    monkeypatch.setattr(parser, "parse_story", parse)
    tell_and_wait(qtbot, generation)
    assert session.open_run is not None
    assert parse.call_count == 1  # stored, shown in the story and analysis tabs: one parse
    assert session.shown.story.segments
    assert "Grandpa Joe" in tabs.story_panel.browser.toPlainText()
    assert tabs.analysis_panel.frame_tabs.count() == len(session.shown.story.frames)


def test_a_story_the_full_library_cannot_take_is_said_and_comes_back_at_the_next_start(
    qtbot: Any, small_disk: Any, sample_photos: list[Path], story_output: str
) -> None:
    from desktop_app.library import Library, RunStatus
    from desktop_app.ui.session import Session

    library = Library.open(small_disk.path / "lib")
    backend = FillsTheDiskAfterItsFirstToken(story_output, small_disk, prepared_size=PREPARED_SIZE)
    session = Session(library, lambda _settings: backend, Settings(), confirm=lambda *_a: True)
    try:
        generation = GenerationController(session)
        album = session_album(session, sample_photos[:2])
        tell_and_wait(qtbot, generation)
        (message,) = close_error_dialogs()
    finally:
        session.close()
        library.close()
    assert "is full" in message and "unsaved-stories" in message and "next start" in message
    assert "damaged" not in message

    small_disk.make_room()
    with Library.open(small_disk.path / "lib") as reopened:
        reopened.recover_interrupted()  # what the app does when it starts
        (run,) = reopened.runs(album.id)
    assert run.status is RunStatus.INTERRUPTED and run.raw_output == story_output


def test_generate_warns_when_the_librarys_disk_may_not_hold_the_story(
    qtbot: Any, small_disk: Any, sample_photos: list[Path], story_output: str
) -> None:
    from desktop_app.library import Library
    from desktop_app.ui.session import Session

    library = Library.open(small_disk.path / "lib")
    backend = ReplayBackend(story_output, prepared_size=PREPARED_SIZE)
    # 64 MiB free; 10 million tokens may take 80 MB: less than twice that is free.
    session = Session(library, lambda _s: backend, Settings(max_tokens=10_000_000))
    messages: list[str] = []
    session.status_message.connect(messages.append)
    try:
        session_album(session, sample_photos[:1])
        tell_and_wait(qtbot, GenerationController(session))
    finally:
        session.close()
        library.close()
    warnings = [m for m in messages if m.startswith("Warning: The disk of")]
    assert warnings and "may fill up" in warnings[0], messages
