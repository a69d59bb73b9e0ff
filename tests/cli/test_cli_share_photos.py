"""``storyteller album share ... --as sidecars|captioned-copies``: captions and people for photo
managers from the command line, read back with exiftool."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from library_helpers import STORY_TEXT, make_photo
from test_cli_album import Cli

from desktop_app.engine.replay_backend import ReplayBackend

TEXTS = [
    "Grandma set the boat down on the puddle and held her breath.",
    "The paper boat drifted off, and she laughed.",
]


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(tmp_path / "lib", capsys)


@pytest.fixture
def rain(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """Album "Rain" (two photos in p/) told once, its girl named Grandma."""
    from desktop_app.cli import options as cli_options

    monkeypatch.setattr(
        cli_options,
        "backend_from_args",
        lambda args: ReplayBackend(STORY_TEXT, prepared_size=(28, 28)),
    )
    cli("new", "Rain")
    cli(
        "add",
        "Rain",
        make_photo(tmp_path / "p/a.jpg", color=(1, 2, 3)),
        make_photo(tmp_path / "p/b.jpg", color=(9, 8, 7)),
    )
    assert cli("tell", "Rain", "-q")[0] == 0, cli.err
    run_id = cli.json("stories", "Rain")["stories"][0]["id"]
    assert cli("cast", str(run_id), "char1", "Grandma")[0] == 0
    return run_id


def test_share_as_sidecars_and_captioned_copies(
    cli: Cli, rain: int, tmp_path: Path, exiftool: Any
) -> None:
    code, out = cli("share", "Rain", tmp_path / "for digiKam", "--as", "sidecars")
    assert code == 0 and f"shared story {rain} as sidecars" in out, cli.err
    folder = tmp_path / "for digiKam"
    assert sorted(p.name for p in folder.iterdir()) == ["a.jpg", "a.jpg.xmp", "b.jpg", "b.jpg.xmp"]
    first, second = exiftool(folder / "a.jpg.xmp", folder / "b.jpg.xmp")
    assert [first["Description"], second["Description"]] == TEXTS
    assert first["PersonInImage"] == second["PersonInImage"] == ["Grandma"]
    (region,) = first["RegionInfo"]["RegionList"]
    assert (region["Name"], region["Type"]) == ("Grandma", "Face")
    # Box 4,8,21,30 of the 28x28 picture the model saw (clamped to it: 4,8,21,28) on the
    # 40x30 photo, as the centre and size of the stored picture.
    area = region["Area"]
    assert (area["X"], area["Y"], area["W"], area["H"]) == pytest.approx(
        (12.5 / 28, 18 / 28, 17 / 28, 20 / 28), abs=2e-3
    )

    code, out = cli("share", "Rain", tmp_path / "copies", "--as", "captioned-copies")
    assert code == 0, cli.err
    (copy,) = exiftool(tmp_path / "copies" / "b.jpg")
    assert copy["Description"] == TEXTS[1] and copy["PersonInImage"] == ["Grandma"]

    code, out = cli(
        "share", "Rain", "--as", "sidecars", "--beside-originals", "--sidecar-name", "photo.xmp"
    )
    assert code == 0 and "wrote 2 sidecars beside the original photos" in out, cli.err
    assert exiftool(tmp_path / "p" / "a.xmp")[0]["Description"] == TEXTS[0]
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == [
        "a.jpg",
        "a.xmp",
        "b.jpg",
        "b.xmp",
    ]


def test_share_for_photo_managers_says_what_is_missing(cli: Cli, rain: int, tmp_path: Path) -> None:
    code, _ = cli("share", "Rain", "--as", "sidecars")
    assert code == 1 and "give DEST, a folder to write (or --beside-originals)" in cli.err
    code, _ = cli("share", "Rain", tmp_path / "x.html", "--as", "html", "--beside-originals")
    assert code == 1 and "use it with --as sidecars and no DEST" in cli.err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("mine")
    code, _ = cli("share", "Rain", tmp_path / "full", "--as", "captioned-copies")
    assert code == 1 and "already exists: choose a new folder" in cli.err
