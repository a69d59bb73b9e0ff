"""app.telling: the one way GUI and CLI tell a story into the library, and what a run records."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from unittest.mock import Mock

import pytest
from app_helpers import STORY
from PIL import Image

from desktop_app.app.settings import Settings
from desktop_app.app.telling import RunEnded, RunStarted, TellOptions, tell, tell_album
from desktop_app.engine.api import (
    KnownPhoto,
    Preset,
    SamplingParams,
    TokenEvent,
)
from desktop_app.engine.replay_backend import ReplayBackend
from desktop_app.library import Library, PhotoMissingError, RunParameters, RunSpec, RunStatus


@pytest.fixture
def library(tmp_path: Path) -> Iterator[Library]:
    lib = Library.open(tmp_path / "library")
    yield lib
    lib.close()


@pytest.fixture
def album(library: Library, tmp_path: Path) -> str:
    photo = tmp_path / "photos" / "rain.jpg"
    photo.parent.mkdir()
    Image.new("RGB", (56, 28), (200, 30, 30)).save(photo)
    library.create_album("Rain")
    library.add_photos("Rain", [photo])
    return "Rain"


def test_options_from_settings_keep_strict_format_seed_and_preset() -> None:
    settings = Settings(strict_format=True, seed=11, preset=Preset.FAITHFUL, max_tokens=99)
    options = TellOptions.from_settings(settings)
    assert options.strict_format  # the GUI used to drop this setting
    assert (options.sampling.seed, options.sampling.max_tokens) == (11, 99)
    assert options.sampling.temperature == 0.2 and options.preset is Preset.FAITHFUL


def test_a_run_records_backend_model_files_and_one_parameter_shape(
    library: Library, album: str, tmp_path: Path
) -> None:
    model_file = tmp_path / "tiny.gguf"
    model_file.write_bytes(b"GGUF" + b"\0" * 12)
    backend = ReplayBackend(STORY)
    backend.model_path = model_file  # the embedded backend shows the files it loads
    options = TellOptions(sampling=SamplingParams(seed=5), strict_format=True)
    run = tell_album(library, album, backend, options).run
    assert run.backend == "scripted (no model)"
    assert run.model["text"] == {"file": "tiny.gguf", "size": 16, "sha256": None}
    assert run.parameters["sampling"]["seed"] == 5 and run.parameters["strict_format"] is True
    assert run.asked.seed == 5 and run.asked.strict_format is True
    assert backend.requests[0].strict_format


def test_the_seed_of_an_old_flat_gui_run_is_read_like_a_new_one() -> None:
    flat = {"preset": "creative", "detail": "normal", "temperature": 0.7, "seed": 4}
    nested = TellOptions(sampling=SamplingParams(seed=4), preset=Preset.CREATIVE).parameters()
    assert RunParameters.from_stored(flat).seed == RunParameters.from_stored(nested).seed == 4
    assert RunParameters.from_stored(nested).preset == "creative"


def test_the_request_carries_the_librarys_hash_and_upright_size(
    library: Library, album: str
) -> None:
    backend = ReplayBackend(STORY)
    tell_album(library, album, backend, TellOptions())
    (photo,) = library.photos(album)
    assert backend.requests[0].known == (KnownPhoto(photo.sha256, (56, 28)),)
    # A file changed behind the library's back is hashed afresh by the engine.
    Image.new("RGB", (28, 28)).save(photo.path)
    tell_album(library, album, backend, TellOptions())
    assert backend.requests[1].known == (None,)


def test_a_finished_run_is_parsed_once_and_its_story_comes_with_it(
    library: Library, album: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from desktop_app.library import storyjson

    parse = Mock(wraps=storyjson.parse_story)
    monkeypatch.setattr(storyjson, "parse_story", parse)
    ended = tell_album(library, album, ReplayBackend(STORY), TellOptions())
    assert parse.call_count == 1
    assert ended.run.status is RunStatus.COMPLETE and ended.run.story == ended.story.to_json()
    assert ended.story.story.entity("char1") is not None
    assert ended.story.frames[0].original_size == (56, 28)


def test_events_start_with_the_run_and_end_with_it_stored(library: Library, album: str) -> None:
    events = list(tell(library, album, ReplayBackend(STORY), TellOptions()))
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunEnded)
    assert events[-1].run.id == events[0].run_id
    assert library.run(events[0].run_id).raw_output == STORY


def test_closing_the_events_early_keeps_a_stopped_run(library: Library, album: str) -> None:
    events = tell(library, album, ReplayBackend(STORY), TellOptions())
    started = next(events)
    assert isinstance(started, RunStarted)
    while not isinstance(next(events), TokenEvent):  # a run that wrote nothing is not kept
        pass
    events.close()  # e.g. the window closed while it was writing
    assert library.run(started.run_id).status is RunStatus.STOPPED


def test_missing_photos_are_refused_before_any_run_is_recorded(
    library: Library, album: str
) -> None:
    library.photos(album)[0].path.unlink()
    with pytest.raises(PhotoMissingError, match=r"rain\.jpg.*relink.*or remove"):
        next(tell(library, album, ReplayBackend(STORY), TellOptions()))
    assert library.runs(album) == []


def test_library_runs_are_the_librarys_own_records(library: Library, album: str) -> None:
    from desktop_app.library.records import RunOutcome, SeenPhoto

    (photo,) = library.photos(album)
    run_id = library.start_run(album, RunSpec(photo_ids=(photo.id,), backend="elsewhere"))
    outcome = RunOutcome(STORY, photos=(SeenPhoto((56, 28), (56, 28), 2),), model_name="m")
    run = library.finish_run(run_id, outcome)
    assert run.status is RunStatus.COMPLETE and run.model == {"name": "m"}
    assert run.photos[0].prepared_size == (56, 28) and run.story is not None


def test_ctrl_c_while_an_event_is_handled_keeps_a_stopped_run(library: Library, album: str) -> None:
    from desktop_app.engine.api import TokenEvent

    def interrupt(event: object) -> None:
        if isinstance(event, TokenEvent):
            raise KeyboardInterrupt  # the second Ctrl-C of `album tell`, mid-token

    with pytest.raises(KeyboardInterrupt):
        tell_album(library, album, ReplayBackend(STORY), TellOptions(), on_event=interrupt)
    (run,) = library.runs(album)
    assert run.status is RunStatus.STOPPED and run.raw_output  # the first token is kept
    assert library.recover_interrupted() == []  # ended, not left running
