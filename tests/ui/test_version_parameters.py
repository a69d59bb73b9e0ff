"""The versions list and the compare view show how a version was asked for, however it was told."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from desktop_app.app.telling import TellOptions, tell_album
from desktop_app.engine.api import Preset, SamplingParams
from desktop_app.engine.replay_backend import ReplayBackend
from desktop_app.library import Library, RunSpec
from desktop_app.ui.compare import run_header_html
from desktop_app.ui.item_models import describe_run


def _album(library: Library, tmp_path: Path) -> None:
    photo = tmp_path / "a.jpg"
    Image.new("RGB", (56, 56), (9, 90, 200)).save(photo)
    library.create_album("Rain")
    library.add_photos("Rain", [photo])


def test_a_cli_told_version_shows_its_seed_and_preset(tmp_path: Path) -> None:
    with Library.open(tmp_path / "lib") as library:
        _album(library, tmp_path)
        options = TellOptions(sampling=SamplingParams(seed=5), preset=Preset.FAITHFUL)
        run = tell_album(library, "Rain", ReplayBackend("<gdi image1>\nHi.\n</gdi>"), options).run
        assert "seed 5" in describe_run(run) and "faithful" in describe_run(run)
        header = run_header_html(run)
        assert "seed 5" in header and "preset faithful" in header
        assert "As trained, 256 tokens/photo" in header  # the default detail, by its name


def test_a_version_stored_flat_by_an_older_gui_still_shows_its_seed(tmp_path: Path) -> None:
    with Library.open(tmp_path / "lib") as library:
        _album(library, tmp_path)
        photo_ids = tuple(p.id for p in library.photos("Rain"))
        flat = {"preset": "creative", "detail": "high", "temperature": 0.7, "seed": 8}
        run = library.stop_run(library.start_run("Rain", RunSpec(photo_ids, parameters=flat)))
        assert "seed 8" in describe_run(run) and "seed 8" in run_header_html(run)
        assert "Most detail, 1024 tokens/photo" in run_header_html(run)  # "high", as recorded
