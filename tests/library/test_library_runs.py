"""Story runs: written while they stream, ended as complete/stopped/failed, recovered after a kill."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from library_helpers import STORY_TEXT, distinct_photos

from desktop_app.app.backends import model_identity
from desktop_app.app.telling import RunStarted, TellEvent, TellOptions, tell_album
from desktop_app.engine.api import (
    Event,
    SamplingParams,
    ShouldStop,
    StoryRequest,
    TokenEvent,
)
from desktop_app.engine.replay_backend import ReplayBackend
from desktop_app.errors import StorytellerError
from desktop_app.library import Library, PhotoMissingError, RunSpec, RunStatus

REPO_ROOT = Path(__file__).resolve().parents[2]


_OPTIONS = TellOptions(sampling=SamplingParams(seed=7))


@pytest.fixture
def album_with_photos(library: Library, tmp_path: Path) -> str:
    library.create_album("Rain")
    library.add_photos("Rain", distinct_photos(tmp_path / "photos", 2))
    return "Rain"


def test_a_told_story_is_kept_complete_with_what_made_it(
    library: Library, album_with_photos: str
) -> None:
    backend = ReplayBackend(STORY_TEXT, prepared_size=(28, 28))
    run = tell_album(library, album_with_photos, backend, _OPTIONS, model={"name": "tiny"}).run
    assert run.status is RunStatus.COMPLETE
    assert run.raw_output == STORY_TEXT
    assert [p.path.name for p in run.photos] == ["photo01.jpg", "photo02.jpg"]
    assert [p.prepared_size for p in run.photos] == [(28, 28), (28, 28)]
    assert [p.original_size for p in run.photos] == [(40, 30), (40, 30)]
    assert run.parameters["sampling"]["seed"] == 7
    assert (run.parameters["detail"], run.parameters["token_budget"]) == ("trained", 256)
    assert run.backend == "scripted (no model)"
    assert run.model["name"] == "tiny"
    assert run.timings["generated_tokens"] > 0
    assert run.story is not None
    assert library.runs(album_with_photos) == [run]
    assert library.album(album_with_photos).run_count == 1


def test_readers_see_the_output_grow_while_the_run_streams(
    library: Library, album_with_photos: str
) -> None:
    library.flush_interval_s = 0.0
    reader = Library.open(library.path)
    seen: list[int] = []

    def look(event: Event) -> None:
        if isinstance(event, TokenEvent):
            (run,) = reader.runs(album_with_photos)
            seen.append(len(run.raw_output))
            assert run.status is RunStatus.RUNNING

    tell_album(library, album_with_photos, ReplayBackend(STORY_TEXT), _OPTIONS, on_event=look)
    reader.close()
    assert seen == sorted(seen) and 0 < seen[len(seen) // 2] < len(STORY_TEXT)


def test_streamed_output_is_written_in_throttled_batches(
    library: Library, album_with_photos: str
) -> None:
    library.flush_interval_s = 3600.0
    library.flush_chars = 50
    run_id = library.start_run(album_with_photos, RunSpec(photo_ids=()))
    for _ in range(4):
        library.append_output(run_id, "x" * 10)
    assert library.run(run_id).raw_output == ""  # nothing written yet: 40 chars < 50
    library.append_output(run_id, "y" * 10)
    assert library.run(run_id).raw_output == "x" * 40 + "y" * 10
    library.append_output(run_id, "z")
    assert library.stop_run(run_id).raw_output.endswith("z")  # ending flushes the rest


def test_recovery_leaves_a_run_this_process_is_writing_alone(
    library: Library, album_with_photos: str
) -> None:
    run_id = library.start_run(album_with_photos, RunSpec(photo_ids=()))
    library.append_output(run_id, "partial")
    with Library.open(library.path) as second_window:
        assert second_window.recover_interrupted() == []
    assert library.run(run_id).status is RunStatus.RUNNING
    assert library.stop_run(run_id).raw_output == "partial"


def test_a_run_being_written_cannot_be_deleted_from_another_window(
    library: Library, album_with_photos: str
) -> None:
    run_id = library.start_run(album_with_photos, RunSpec(photo_ids=()))
    library.append_output(run_id, "partial")
    with Library.open(library.path) as second_window:
        with pytest.raises(StorytellerError, match=f"story {run_id} is still being written"):
            second_window.delete_run(run_id)
        with pytest.raises(StorytellerError, match="still being written"):
            library.delete_run(run_id)
        assert library.stop_run(run_id).raw_output == "partial"
        second_window.delete_run(run_id)  # once it has ended, it can go
    assert library.runs(album_with_photos) == []


def test_a_stopped_run_keeps_its_partial_output(library: Library, album_with_photos: str) -> None:
    tokens = 0

    def after_twenty() -> bool:
        return tokens >= 20

    def count(event: Event) -> None:
        nonlocal tokens
        tokens += isinstance(event, TokenEvent)

    should_stop: ShouldStop = after_twenty
    run = tell_album(
        library,
        album_with_photos,
        ReplayBackend(STORY_TEXT),
        _OPTIONS,
        should_stop=should_stop,
        on_event=count,
    ).run
    assert run.status is RunStatus.STOPPED
    assert 0 < len(run.raw_output) < len(STORY_TEXT)
    assert STORY_TEXT.startswith(run.raw_output)


class _FailingBackend(ReplayBackend):
    def generate(self, request: StoryRequest, *, should_stop: ShouldStop) -> Iterator[Event]:
        for count, event in enumerate(super().generate(request, should_stop=should_stop)):
            if count == 30:
                raise StorytellerError("the model ran out of memory: choose a lower detail")
            yield event


def test_a_failed_run_records_the_error_and_keeps_its_partial_output(
    library: Library, album_with_photos: str
) -> None:
    with pytest.raises(StorytellerError, match="out of memory"):
        tell_album(library, album_with_photos, _FailingBackend(STORY_TEXT), _OPTIONS)
    (run,) = library.runs(album_with_photos)
    assert run.status is RunStatus.FAILED
    assert "out of memory" in run.error
    assert run.raw_output and STORY_TEXT.startswith(run.raw_output)
    assert library.recover_interrupted() == []  # a failed run is not "running"


def test_a_failing_on_started_callback_leaves_a_failed_run_not_a_running_one(
    library: Library, album_with_photos: str
) -> None:
    def broken_on(kind: type) -> Callable[[TellEvent], None]:
        def broken_callback(event: TellEvent) -> None:
            if isinstance(event, kind):
                raise RuntimeError("the window went away")

        return broken_callback

    # Before the first token: the run wrote nothing, so it is not kept (the zero-token rule).
    with pytest.raises(RuntimeError):
        tell_album(
            library,
            album_with_photos,
            ReplayBackend(STORY_TEXT),
            _OPTIONS,
            on_event=broken_on(RunStarted),
        )
    assert library.runs(album_with_photos) == [] and library.recover_interrupted() == []
    with pytest.raises(RuntimeError):
        tell_album(
            library,
            album_with_photos,
            ReplayBackend(STORY_TEXT),
            _OPTIONS,
            on_event=broken_on(TokenEvent),
        )
    (run,) = library.runs(album_with_photos)
    assert run.status is RunStatus.FAILED and "the window went away" in run.error
    library.delete_run(run.id)  # nothing holds it any more


def test_telling_an_album_with_a_missing_photo_names_it(
    library: Library, album_with_photos: str
) -> None:
    library.photos(album_with_photos)[1].path.unlink()
    with pytest.raises(PhotoMissingError, match=r"photo02\.jpg.*relink"):
        tell_album(library, album_with_photos, ReplayBackend(STORY_TEXT), _OPTIONS)
    assert library.runs(album_with_photos) == []


def test_display_names_are_a_layer_over_the_unchanged_output(
    library: Library, album_with_photos: str
) -> None:
    run = tell_album(library, album_with_photos, ReplayBackend(STORY_TEXT), _OPTIONS).run
    library.set_display_name(run.id, "char1", "Grandma Maya")
    library.set_display_name(run.id, "obj1", "the boat")
    library.set_display_name(run.id, "obj1", "the red boat")
    assert library.display_names(run.id) == {"char1": "Grandma Maya", "obj1": "the red boat"}
    library.set_display_name(run.id, "obj1", "")
    assert library.display_names(run.id) == {"char1": "Grandma Maya"}
    assert library.run(run.id).raw_output == STORY_TEXT


def test_model_identity_reads_sizes_and_hashes_from_the_manifest(tmp_path: Path) -> None:
    text = tmp_path / "story-Q4_K_M.gguf"
    mmproj = tmp_path / "mmproj-story-f16.gguf"
    text.write_bytes(b"t" * 10)
    mmproj.write_bytes(b"m" * 4)
    manifest = {
        "name": "QwenStoryteller",
        "files": {
            "text": {"file": text.name, "size": 10, "sha256": "aa" * 32},
            "mmproj": {"file": mmproj.name, "size": 4, "sha256": "bb" * 32},
        },
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    identity = model_identity(text, mmproj)
    assert identity["text"] == {"file": text.name, "size": 10, "sha256": "aa" * 32}
    assert identity["mmproj"]["sha256"] == "bb" * 32
    assert identity["name"] == "QwenStoryteller"
    (tmp_path / "manifest.json").unlink()
    assert model_identity(text)["text"] == {"file": text.name, "size": 10, "sha256": None}


@pytest.mark.slow
def test_a_run_killed_mid_stream_is_recovered_as_interrupted_with_its_output(
    library: Library, album_with_photos: str, tmp_path: Path
) -> None:
    story_file = tmp_path / "story.txt"
    story_file.write_text(STORY_TEXT, encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    writer = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("stream_into_run.py")),
            str(library.path),
            album_with_photos,
            str(story_file),
        ],
        env=env,
        cwd=REPO_ROOT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            runs = library.runs(album_with_photos)
            if runs and len(runs[0].raw_output) > 300:
                break
            assert writer.poll() is None, "the writer ended before it was killed"
            assert time.monotonic() < deadline, "the writer never wrote its output"
            time.sleep(0.02)
        run_id = runs[0].id
        # A live writer's run is left alone.
        assert library.recover_interrupted() == []
        assert library.run(run_id).status is RunStatus.RUNNING
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait()
    assert writer.returncode == -signal.SIGKILL
    conn = sqlite3.connect(library.path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    partial = library.run(run_id).raw_output

    with Library.open(library.path) as next_start:
        assert next_start.recover_interrupted() == [run_id]
        run = next_start.run(run_id)
    assert run.status is RunStatus.INTERRUPTED
    assert run.raw_output == partial
    assert 300 < len(partial) < len(STORY_TEXT) and STORY_TEXT.startswith(partial)
    assert run.story is not None  # the partial output is parsed for viewing
    assert "partial output is kept" in run.error
    assert not list((library.root / "run-locks").iterdir())
