"""``storyteller album share NAME DEST --as FORMAT``: each share format written from the library,
the default version, the size printed, and what DEST may not be."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from library_helpers import STORY_TEXT, make_photo
from test_cli_album import Cli

from desktop_app.app.sharing import SHARE_FORMATS, SHARE_NAMES, date_range_text
from desktop_app.engine.replay_backend import ReplayBackend
from desktop_app.library import Library, RunSpec
from desktop_app.library.records import RunOutcome


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(tmp_path / "lib", capsys)


def _run(library_dir: Path, album: str, text: str, *, complete: bool) -> int:
    with Library.open(library_dir) as library:
        photos = library.photos(album)
        run_id = library.start_run(
            album, RunSpec(photo_ids=tuple(p.id for p in photos), backend="scripted")
        )
        library.append_output(run_id, text)
        if complete:
            library.finish_run(run_id, RunOutcome(text))
        else:
            library.stop_run(run_id)
    return run_id


@pytest.fixture
def rain(cli: Cli, tmp_path: Path) -> tuple[int, int]:
    """Album "Rain": two dated photos, a complete story, then a newer stopped one."""
    cli("new", "Rain")
    cli(
        "add",
        "Rain",
        make_photo(tmp_path / "p/a.jpg", color=(1, 2, 3), captured_at="2024:05:30 10:00:00"),
        make_photo(tmp_path / "p/b.jpg", color=(9, 8, 7), captured_at="2024:06:02 18:00:00"),
    )
    complete = _run(cli.library_dir, "Rain", STORY_TEXT, complete=True)
    stopped = _run(
        cli.library_dir, "Rain", STORY_TEXT.replace("held her breath", "waited"), complete=False
    )
    return complete, stopped


def test_share_writes_each_format_and_prints_its_size(
    cli: Cli, rain: tuple[int, int], tmp_path: Path
) -> None:
    complete, stopped = rain
    out_dir = tmp_path / "out"
    for kind, name in (
        ("slideshow", "rain.html"),
        ("html", "page.html"),
        ("markdown", "rain.md"),
        ("pdf", "rain.pdf"),
    ):
        code, out = cli("share", "Rain", out_dir / name, "--as", kind)
        assert code == 0, cli.err
        size = (out_dir / name).stat().st_size
        shown = re.search(r"\((\d+) kB\)", out)
        assert shown and abs(int(shown.group(1)) - size / 1024) <= 1, out
        assert f"story {complete}" in out  # the latest complete version, not the newer stopped one

    show = (out_dir / "rain.html").read_text(encoding="utf-8")
    assert "<title>Rain</title>" in show and "30 May – 2 June 2024" in show
    assert show.count('<section class="slide') == 4  # title, two frames, end
    assert show.count("data:image/jpeg;base64,") == 2
    assert "held her breath" in show and "waited" not in show
    assert not re.search(r"""(src|href)=["'](?!data:|#)""", show)  # nothing fetched
    assert "Maya" in (out_dir / "page.html").read_text(encoding="utf-8")
    assert "held her breath" in (out_dir / "rain.md").read_text(encoding="utf-8")

    from pypdf import PdfReader

    pages = PdfReader(out_dir / "rain.pdf").pages
    pdf_text = " ".join(" ".join(page.extract_text().split()) for page in pages)
    assert "Rain" in pdf_text and "paper boat" in pdf_text

    # --story picks a version, also a stopped one.
    code, out = cli(
        "share", "Rain", out_dir / "stopped.html", "--as", "slideshow", "--story", stopped
    )
    assert code == 0 and f"story {stopped}" in out
    assert "waited" in (out_dir / "stopped.html").read_text(encoding="utf-8")


def test_share_refuses_what_it_should_not_write(
    cli: Cli, rain: tuple[int, int], tmp_path: Path
) -> None:
    existing = tmp_path / "taken.html"
    existing.write_text("mine")
    code, _ = cli("share", "Rain", existing, "--as", "slideshow")
    assert code == 1 and "already exists" in cli.err and existing.read_text() == "mine"
    code, _ = cli("share", "Rain", tmp_path, "--as", "html")
    assert code == 1 and "is a folder: give a file name" in cli.err
    cli("new", "Empty")
    code, _ = cli("share", "Empty", tmp_path / "e.html", "--as", "html")
    assert code == 1 and "has no story yet" in cli.err
    code, _ = cli("share", "Empty", tmp_path / "e.html", "--as", "html", "--story", rain[0])
    assert code == 1 and "does not belong to album 'Empty'" in cli.err
    with pytest.raises(SystemExit):
        cli("share", "Rain", tmp_path / "x.html", "--as", "poster")
    assert not list(tmp_path.glob("*.partial")) and not (tmp_path / "e.html").exists()


def test_every_share_name_has_a_writer_once_the_gui_layer_is_loaded() -> None:
    import desktop_app.ui.exporting  # noqa: F401  (registers PDF)

    assert [name for name in SHARE_NAMES if name not in SHARE_FORMATS] == []
    assert all(f.into_folder == (f.suffix == "") for f in SHARE_FORMATS.values())


@pytest.mark.parametrize(
    ("dates", "text"),
    [
        ([], ""),
        ([None, "2024-05-14T10:00:00"], "14 May 2024"),
        (["2024-05-16T10:00:00+02:00", "2024-05-14T09:00:00"], "14–16 May 2024"),
        (["2024-05-30T10:00:00", "2024-06-02T09:00:00"], "30 May – 2 June 2024"),
        (["2023-12-28T10:00:00", "2024-01-03T09:00:00"], "28 December 2023 – 3 January 2024"),
    ],
)
def test_date_range_text(dates: list[str | None], text: str) -> None:
    assert date_range_text(dates) == text


def test_album_tell_prints_a_slideshow(
    cli: Cli, rain: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from desktop_app.cli import options as cli_options

    monkeypatch.setattr(
        cli_options,
        "backend_from_args",
        lambda args: ReplayBackend(STORY_TEXT, prepared_size=(28, 28)),
    )
    code, out = cli("tell", "Rain", "--format", "slideshow", "-q")
    assert code == 0, cli.err
    assert out.startswith("<!DOCTYPE html>") and out.count('<section class="slide') == 4
    assert json.dumps("Story") in json.dumps(re.search(r"<title>(.*?)</title>", out).group(1))
