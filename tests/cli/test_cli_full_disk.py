"""The command line on a real full disk (a small tmpfs) and under SIGTERM (issue 27).

``tell --out``: a finished story that its file cannot take goes to the user data folder, else
the temporary folder, else stdout; stderr says the disk is full and where the story went; exit 1.
``album tell``: a story that ends while the library's disk is full is saved aside and comes back
at the next start. SIGTERM stops a run as Ctrl-C does: the partial story is kept, exit 130.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from disk_filling import FillsTheDiskAfterItsFirstToken
from library_helpers import STORY_TEXT, distinct_photos

from desktop_app import paths
from desktop_app.cli import main
from desktop_app.cli import options as cli_options
from desktop_app.engine.replay_backend import ReplayBackend

REPO_ROOT = Path(__file__).resolve().parents[2]
EXIT_FAILED, EXIT_INTERRUPTED = 1, 130


@pytest.fixture
def photos(tmp_path: Path) -> list[str]:
    return [str(p) for p in distinct_photos(tmp_path / "photos", 2)]


@pytest.fixture
def replayed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_options, "backend_from_args", lambda args: ReplayBackend(STORY_TEXT))


def _the_story_in(path: Path) -> None:
    told = json.loads(path.read_text(encoding="utf-8"))
    assert told["run"]["raw_output"] == STORY_TEXT


@pytest.mark.usefixtures("replayed")
def test_tell_out_on_a_full_disk_goes_to_the_user_data_folder(
    photos: list[str], small_disk: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    small_disk.fill()
    out = small_disk.path / "story.json"
    assert main(["tell", *photos, "--format", "json", "--out", str(out), "-q"]) == EXIT_FAILED
    captured = capsys.readouterr()
    (kept,) = paths.unsaved_stories_dirs()[0].glob("story-*.json")
    _the_story_in(kept)
    assert f"the disk of {small_disk.path} is full (it needs about" in captured.err
    assert f"it was written to {kept} instead" in captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    assert list(small_disk.path.glob("*story*")) == []  # nothing half-written on the full disk


@pytest.mark.usefixtures("replayed")
def test_tell_out_falls_back_to_the_temporary_folder_then_stdout(
    photos: list[str],
    small_disk: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The user data folder is on the full disk too: the temporary folder takes the story.
    monkeypatch.setenv("STORYTELLER_HOME", str(small_disk.path / "home"))
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    small_disk.fill()
    out = small_disk.path / "story.json"
    assert main(["tell", *photos, "--format", "json", "--out", str(out), "-q"]) == EXIT_FAILED
    err = capsys.readouterr().err
    (kept,) = (temporary / "storyteller-unsaved-stories").glob("story-*.json")
    _the_story_in(kept)
    assert "is full" in err and str(kept) in err

    # And the temporary folder too: the story follows on stdout, and only then.
    monkeypatch.setattr(tempfile, "tempdir", str(small_disk.path / "tmp"))
    assert main(["tell", *photos, "--format", "json", "--out", str(out), "-q"]) == EXIT_FAILED
    captured = capsys.readouterr()
    assert json.loads(captured.out)["run"]["raw_output"] == STORY_TEXT
    assert "is full" in captured.err and "follows on stdout" in captured.err


@pytest.mark.usefixtures("replayed")
def test_tell_out_with_room_writes_the_file_and_warns_when_it_is_tight(
    photos: list[str], small_disk: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    out = small_disk.path / "story.json"
    # 64 MiB free; 10 million tokens could need 80 MB: less than twice that is free.
    argv = [
        "tell",
        *photos,
        "--format",
        "json",
        "--out",
        str(out),
        "-q",
        "--max-tokens",
        "10000000",
    ]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "warning: the disk of" in err and "may fill up" in err
    _the_story_in(out)
    assert main(["tell", *photos, "--out", str(small_disk.path / "b.txt"), "-q"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_album_tell_on_a_disk_that_fills_keeps_the_story_for_the_next_start(
    photos: list[str],
    small_disk: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    library = ["album", "--library", str(small_disk.path / "lib")]
    assert main([*library, "new", "Trip"]) == 0
    assert main([*library, "add", "Trip", *photos]) == 0
    monkeypatch.setattr(
        cli_options,
        "backend_from_args",
        lambda args: FillsTheDiskAfterItsFirstToken(STORY_TEXT, small_disk),
    )
    capsys.readouterr()
    assert main([*library, "tell", "Trip", "-q"]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert "the library cannot be written: the disk of" in err and "is full" in err
    assert "damaged" not in err and "comes back into the library" in err

    small_disk.make_room()
    assert main([*library, "story", "Trip", "--raw"]) == 0
    captured = capsys.readouterr()
    assert captured.out == STORY_TEXT
    assert "was interrupted" in captured.err
    assert main([*library, "stories", "Trip", "--json"]) == 0
    (story,) = json.loads(capsys.readouterr().out)["stories"]
    assert story["status"] == "interrupted"


def _replayed_program(*argv: str, delay: float = 0.05) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "tests" / "library")]),
        "TOKEN_DELAY_S": str(delay),
    }
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("replayed_tell.py")), *argv],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _terminate_while_writing(program: subprocess.Popen[str]) -> tuple[str, str]:
    try:
        assert program.stderr is not None
        while "replayed: first token" not in (line := program.stderr.readline()):
            assert line, f"it ended before writing (exit {program.wait()})"
        program.send_signal(signal.SIGTERM)
        return program.communicate(timeout=60)
    finally:
        if program.poll() is None:
            program.kill()
            program.wait()


def test_sigterm_stops_tell_as_ctrl_c_does_and_keeps_the_partial_story(
    photos: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "story.txt"
    program = _replayed_program("tell", *photos, "--out", str(out), "--format", "json")
    _, err = _terminate_while_writing(program)
    assert program.returncode == EXIT_INTERRUPTED, err
    assert "stopping (SIGTERM again to abort)" in err
    told = json.loads(out.read_text(encoding="utf-8"))
    assert told["run"]["finish_reason"] == "cancelled"
    assert 0 < len(told["run"]["raw_output"]) < len(STORY_TEXT)


def test_sigterm_stops_album_tell_and_keeps_the_story_as_stopped(
    photos: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    library = ["album", "--library", str(tmp_path / "lib")]
    main([*library, "new", "Trip"])
    main([*library, "add", "Trip", *photos])
    program = _replayed_program(*library, "tell", "Trip")
    _, err = _terminate_while_writing(program)
    assert program.returncode == EXIT_INTERRUPTED, err
    capsys.readouterr()
    assert main([*library, "stories", "Trip", "--json"]) == 0
    stories = json.loads(capsys.readouterr().out)["stories"]
    assert len(stories) == 1, err
    (story,) = stories
    assert story["status"] == "stopped"
