"""The entry points and the one module that computes user folders."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_app import __version__, paths
from desktop_app.cli import main
from desktop_app.fileio import atomic_open, atomic_write_text


def test_version_flag_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_storyteller_home_moves_every_user_folder(storyteller_home: Path) -> None:
    for folder in (paths.data_dir(), paths.cache_dir(), paths.config_dir()):
        assert folder.is_relative_to(storyteller_home)
    assert paths.user_models_dir() in paths.model_search_dirs()


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "story.txt"
    atomic_write_text(target, "first")
    with pytest.raises(RuntimeError), atomic_open(target) as handle:
        handle.write("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["story.txt"]


def test_console_script_module_runs_headless() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "desktop_app", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert "grounded story" in result.stdout


def test_catalog_is_found_in_a_checkout_and_in_an_installed_wheel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout_catalog = paths.catalog_file()
    assert checkout_catalog is not None and checkout_catalog.parent.name == "models"

    # A non-editable install has no checkout; the wheel's data-files put the catalogue here.
    installed = tmp_path / "share" / "storyteller" / "catalog.json"
    installed.parent.mkdir(parents=True)
    installed.write_text(checkout_catalog.read_text())
    monkeypatch.setattr(paths, "source_checkout_models_dir", lambda: None)
    monkeypatch.setattr(paths.sys, "prefix", str(tmp_path))
    assert paths.catalog_file() == installed
    installed.unlink()
    assert paths.catalog_file() is None


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_atomic_writes_follow_the_umask_unless_private(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        export = tmp_path / "story.html"
        atomic_write_text(export, "<p>shared</p>")
        secret = tmp_path / "settings.json"
        atomic_write_text(secret, '{"api_key": "k"}', private=True)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(export.stat().st_mode) == 0o644  # an export others may read
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
