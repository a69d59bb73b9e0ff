"""What the app remembers about a model download between starts (app/model_download.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from desktop_app import paths
from desktop_app.app import model_download
from desktop_app.app.model_download import DownloadRecord, State
from desktop_app.errors import StorytellerError


def record(**changes: object) -> DownloadRecord:
    fields: dict = {
        "repo": "daniel3303/QwenStoryteller2",
        "commit": "a" * 40,
        "quant": "Q4_K_M",
        "outdir": Path("/models/qwenstoryteller2"),
        "weight_bytes": 16_600_000_000,
        "blobs": ("b" * 64, "c" * 64),
        "ours": True,
        "state": State.PAUSED,
    }
    return DownloadRecord(**{**fields, **changes})


def test_a_paused_download_is_remembered_in_the_settings_folder() -> None:
    assert model_download.paused_download() is None
    model_download.save_record(record())
    assert paths.model_download_file().parent == paths.config_dir()
    assert model_download.load_record() == record()
    assert model_download.paused_download() == record()
    model_download.save_record(record(state=State.CONVERTED))
    assert model_download.paused_download() is None  # converted: nothing to resume
    model_download.forget_record()
    assert model_download.load_record() is None


def test_a_damaged_record_counts_as_none() -> None:
    paths.model_download_file().parent.mkdir(parents=True, exist_ok=True)
    paths.model_download_file().write_text("{not json", encoding="utf-8")
    assert model_download.load_record() is None


def test_paused_text_counts_complete_and_partial_files_in_the_cache(tmp_path: Path) -> None:
    from convert.hub import hub_cache_dir, repo_folder

    blobs = repo_folder(hub_cache_dir(), "daniel3303/QwenStoryteller2") / "blobs"
    blobs.mkdir(parents=True)
    (blobs / ("b" * 64)).write_bytes(b"x" * 3000)
    (blobs / ("c" * 64 + ".incomplete")).write_bytes(b"x" * 1000)
    paused = record(weight_bytes=10_000)
    assert paused.fetched_bytes() == 4000
    assert model_download.paused_text(paused) == "Download paused: 4.00 of 10.00 kB"
    assert model_download.paused_text(record(blobs=())) == "Download paused: 0.00 of 16.60 GB"


def test_a_checkpoint_the_app_did_not_download_is_never_deleted() -> None:
    with pytest.raises(StorytellerError, match="not downloaded by Storyteller"):
        model_download.delete_checkpoint(record(ours=False))


def test_sizes_as_the_guide_says_them() -> None:
    assert model_download.size_text(16_600_000_000) == "16.60 GB"
    assert model_download.size_text(3_610_000) == "3.6 MB"
    assert model_download.size_text(512) == "512 B"
