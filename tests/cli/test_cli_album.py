"""``storyteller album ...`` end to end through the real entry point, with --json outputs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from library_helpers import STORY_TEXT, distinct_photos, make_photo

from desktop_app.cli import main
from desktop_app.engine.replay_backend import ReplayBackend
from desktop_app.library import Library, RunSpec, RunStatus


class Cli:
    """Runs ``storyteller album --library DIR ...`` and captures its output."""

    def __init__(self, library_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.library_dir = library_dir
        self.capsys = capsys
        self.err = ""

    def __call__(self, *argv: str | Path) -> tuple[int, str]:
        self.capsys.readouterr()
        code = main(["album", "--library", str(self.library_dir), *(str(a) for a in argv)])
        captured = self.capsys.readouterr()
        self.err = captured.err
        return code, captured.out

    def json(self, *argv: str | Path) -> Any:
        code, out = self(*argv, "--json")
        assert code == 0, self.err
        return json.loads(out)


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(tmp_path / "lib", capsys)


def test_new_add_list_order_and_json_shapes(cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "my photos"
    make_photo(folder / "b day.jpg", color=(1, 1, 1), captured_at="2024:02:02 10:00:00")
    make_photo(folder / "a née.jpg", color=(2, 2, 2), captured_at="2024:02:03 10:00:00")
    (folder / "notes.txt").write_text("not a photo")
    assert cli("new", "Holiday")[0] == 0
    code, out = cli("add", "Holiday", folder, folder / "b day.jpg")
    assert code == 0 and "added 2 photo(s)" in out
    assert "same content" in cli.err and "ignored 1 file(s)" in cli.err

    albums = cli.json("list")["albums"]
    assert [(a["name"], a["photos"], a["stories"]) for a in albums] == [("Holiday", 2, 0)]

    listing = cli.json("list", "Holiday")
    photos = listing["photos"]
    assert [Path(p["path"]).name for p in photos] == ["a née.jpg", "b day.jpg"]
    assert [p["position"] for p in photos] == [1, 2]
    first = photos[0]
    assert first["sha256"] and first["size"] > 0 and first["missing"] is False
    assert first["captured_at"] == "2024-02-03T10:00:00"

    assert cli("order", "Holiday", "2,1")[0] == 0
    names = [Path(p["path"]).name for p in cli.json("list", "Holiday")["photos"]]
    assert names == ["b day.jpg", "a née.jpg"]
    assert cli("order", "Holiday", "1")[0] == 1
    assert "every position from 1 to 2" in cli.err
    assert cli("sort", "Holiday")[0] == 0  # by capture date: b (Feb 2) before a (Feb 3)
    assert [Path(p["path"]).name for p in cli.json("list", "Holiday")["photos"]] == names


def test_missing_photos_are_flagged_and_relinked_from_the_cli(cli: Cli, tmp_path: Path) -> None:
    photos = distinct_photos(tmp_path / "old", 2)
    cli("new", "A")
    cli("add", "A", tmp_path / "old")
    shutil.move(str(tmp_path / "old"), tmp_path / "moved")
    assert [p["missing"] for p in cli.json("list", "A")["photos"]] == [True, True]
    code, out = cli("list", "A")
    assert code == 0 and out.count("MISSING") == 2 and "album relink" in cli.err
    code, out = cli("relink", "A", tmp_path / "moved")
    assert code == 0 and "relinked 2 photo(s)" in out
    listed = cli.json("list", "A")["photos"]
    assert [p["path"] for p in listed] == [str(tmp_path / "moved" / p.name) for p in photos]


def test_remove_rename_delete_and_errors_that_say_what_to_do(cli: Cli, tmp_path: Path) -> None:
    photos = distinct_photos(tmp_path / "p", 3)
    cli("new", "A")
    cli("add", "A", *photos)
    assert cli("remove", "A", "2")[0] == 0
    assert [p["position"] for p in cli.json("list", "A")["photos"]] == [1, 2]
    assert photos[1].is_file()
    assert cli("remove", "A", "7")[0] == 1 and "the album has 2 photos" in cli.err
    assert cli("rename", "A", "B")[0] == 0
    assert cli("list", "A")[0] == 1 and "albums: B" in cli.err
    code, _ = cli("add", "B", tmp_path / "nowhere.jpg")
    assert code == 1 and "nowhere.jpg was not found" in cli.err
    assert cli("delete", "B")[0] == 0
    assert cli.json("list")["albums"] == []
    assert all(p.is_file() for p in photos)


def _finished_run(library_dir: Path, album: str) -> int:
    with Library.open(library_dir) as library:
        photos = library.photos(album)
        run_id = library.start_run(
            album,
            RunSpec(
                photo_ids=tuple(p.id for p in photos),
                parameters={"detail": "normal", "sampling": {"seed": 3}},
                backend="scripted",
            ),
        )
        library.append_output(run_id, STORY_TEXT)
        library.stop_run(run_id)
    return run_id


def test_stories_json_story_cast_export_and_import(cli: Cli, tmp_path: Path) -> None:
    cli("new", "Rain")
    cli("add", "Rain", *distinct_photos(tmp_path / "p", 2))
    assert "no stories yet" in cli("stories", "Rain")[1]
    run_id = _finished_run(cli.library_dir, "Rain")
    stories = cli.json("stories", "Rain")["stories"]
    assert [(s["id"], s["status"]) for s in stories] == [(run_id, "stopped")]
    story = stories[0]
    assert story["parameters"]["sampling"]["seed"] == 3
    assert set(story) >= {"id", "status", "created", "parameters", "timings", "model", "backend"}

    assert cli("cast", str(run_id), "char1", "Grandma")[0] == 0
    code, out = cli("story", "Rain")
    assert code == 0 and "Grandma" in out and "<gdo" not in out
    code, out = cli("story", "Rain", "--raw")
    assert out == STORY_TEXT  # the user's names never rewrite the raw output
    assert cli.json("story", "Rain")["story"] is not None

    bundle = tmp_path / "rain.zip"
    assert cli("export", "Rain", bundle)[0] == 0 and bundle.is_file()
    code, out = cli("import", bundle)
    assert code == 0 and "Rain (2)" in out
    imported = cli.json("stories", "Rain (2)")["stories"]
    assert [s["status"] for s in imported] == ["stopped"]
    # --story picks a story by id, and only one of the album named.
    assert cli("story", "Rain", "--story", str(run_id), "--raw") == (0, STORY_TEXT)
    code, _ = cli("story", "Rain (2)", "--story", str(run_id))
    assert code != 0 and f"story {run_id} is not one of album 'Rain (2)'" in cli.err


def test_album_tell_streams_into_a_new_story(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from desktop_app.cli import options as cli_options

    # The backend factory is the engine's (tested there); here the wiring into the library is.
    monkeypatch.setattr(
        cli_options,
        "backend_from_args",
        lambda args: ReplayBackend(STORY_TEXT, prepared_size=(28, 28)),
    )
    cli("new", "Rain")
    cli("add", "Rain", *distinct_photos(tmp_path / "p", 2))
    code, out = cli("tell", "Rain", "--seed", "5")
    assert code == 0, cli.err
    assert "Maya" in out
    code, out = cli("tell", "Rain", "--format", "json", "-q")
    assert code == 0 and json.loads(out)["run"]["finish_reason"] == "stop"
    story, _second = cli.json("stories", "Rain")["stories"]
    assert story["status"] == RunStatus.COMPLETE.value
    assert story["parameters"]["sampling"]["seed"] == 5
    assert story["timings"]["generated_tokens"] > 0
    assert [p["prepared_size"] for p in story["photos"]] == [[28, 28], [28, 28]]


@pytest.mark.slow
def test_album_tell_on_the_tiny_model_keeps_the_model_identity(
    cli: Cli, tmp_path: Path, tiny_model: Any
) -> None:
    cli("new", "Tiny")
    cli("add", "Tiny", *distinct_photos(tmp_path / "p", 2))
    code, _ = cli(
        "tell",
        "Tiny",
        "--model",
        tiny_model.text_gguf,
        "--mmproj",
        tiny_model.mmproj_gguf,
        "--max-tokens",
        "24",
        "--seed",
        "3",
        "-q",
    )
    assert code == 0, cli.err
    (story,) = cli.json("stories", "Tiny")["stories"]
    assert story["status"] == "complete"
    assert story["backend"].startswith("llama.cpp")
    manifest = json.loads(Path(tiny_model.manifest_path).read_text())
    assert story["model"]["text"]["sha256"] == manifest["files"]["text"]["sha256"]
    assert story["model"]["mmproj"]["file"] == Path(tiny_model.mmproj_gguf).name
    assert all(p["prepared_size"] for p in story["photos"])
    assert story["timings"]["generated_tokens"] > 0


REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals")
def test_ctrl_c_stops_album_add_between_files_and_keeps_what_was_added(tmp_path: Path) -> None:
    photos = distinct_photos(tmp_path / "big", 40)
    with Library.open(tmp_path / "lib") as library:
        library.create_album("A")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    adder = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("slow_album_add.py")),
            str(tmp_path / "lib"),
            "A",
            str(tmp_path / "big"),
        ],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert adder.stderr is not None
        reads = 0
        while reads < 3:  # three files in (each takes 50 ms), press Ctrl-C
            line = adder.stderr.readline()
            assert line, f"album add ended before it was interrupted (exit {adder.wait()})"
            reads += line.startswith("reading ")
        adder.send_signal(signal.SIGINT)
        out, err = adder.communicate(timeout=30)
    finally:
        if adder.poll() is None:
            adder.kill()
            adder.wait()
    assert adder.returncode == 130, err
    assert "stopping" in err and "stopped by Ctrl-C" in err
    with Library.open(tmp_path / "lib") as library:
        kept = [photo.name for photo in library.photos("A")]
    assert 3 <= len(kept) < len(photos)
    assert kept == [photo.name for photo in photos[: len(kept)]]  # in order, none half-added
    assert f"added {len(kept)} photo(s)" in out and f"kept the {len(kept)} photo(s)" in err


def test_a_name_given_once_is_offered_to_the_next_story_and_can_be_undone(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from desktop_app.cli import options as cli_options

    story = {"text": STORY_TEXT}
    monkeypatch.setattr(
        cli_options,
        "backend_from_args",
        lambda args: ReplayBackend(story["text"], prepared_size=(28, 28)),
    )
    cli("new", "Rain")
    cli("add", "Rain", *distinct_photos(tmp_path / "p", 2))
    assert cli("tell", "Rain", "-q")[0] == 0
    first = cli.json("stories", "Rain")["stories"][0]["id"]
    assert cli("cast", str(first), "char1", "Grandma")[0] == 0
    story["text"] = STORY_TEXT.replace("char1", "char7")  # the model's ids change every run
    code, out = cli("tell", "Rain", "-q")
    assert code == 0 and "Grandma" in out, cli.err
    code, out = cli("names", "Rain")
    assert code == 0 and "char7" in out and f"from story {first}" in out
    listed = cli.json("names", "Rain")
    assert [(e["entity_id"], e["name"], e["origin"]) for e in listed["cast"]] == [
        ("char7", "Grandma", "matched")
    ]
    code, out = cli("names", "Rain", "--undo", "char7")
    assert code == 0 and "no longer takes a name" in out
    assert "Grandma" not in cli("story", "Rain")[1]
    code, _ = cli("names", "Rain", "--undo", "char7")
    assert code == 1 and "was not named by a match" in cli.err
