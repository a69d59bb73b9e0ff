"""The first-run guide's third way: download and convert, against the loopback Hub.

The loopback server (tests/hub_server.py) serves the tiny fixture as daniel3303/QwenStoryteller2;
no other host is contacted (tests/conftest.py points HF_ENDPOINT at it, HF_HUB_DISABLE_XET=1).
The guide is built alone, never the main window.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest
from hub_server import HubServer
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from ui_helpers import close_error_dialogs

from desktop_app import paths
from desktop_app.app import model_download
from desktop_app.app.model_download import State, load_record
from desktop_app.app.settings import Settings, load_settings
from desktop_app.ui import first_run
from desktop_app.ui.first_run import FirstRunGuide
from desktop_app.ui.startup import first_run_guide_wanted

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "tiny-qwen25vl" / "checkpoint"
REPO = "daniel3303/QwenStoryteller2"
SHARD = "model-00001-of-00002.safetensors"  # 3 MB: arrives in many 64 KiB pieces
REPORT = "tiny: 40 tokens (stop)\n  load 0.50 s, first token 0.10 s, 20.0 tokens/s\n"
WEIGHTS = sum(
    (FIXTURE / n).stat().st_size for n in os.listdir(FIXTURE) if n.endswith(".safetensors")
)


@pytest.fixture
def storyteller2(hub_server: HubServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    import huggingface_hub.constants
    import tqdm

    from convert import hub

    # snapshot_download's own bars (another tool filling the cache) start no monitor thread
    monkeypatch.setattr(tqdm.std.tqdm, "monitor_interval", 0)
    monkeypatch.setattr(hub, "RETRY_DELAYS", (0.01,))
    monkeypatch.setattr(huggingface_hub.constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)
    hub_server.add(REPO, FIXTURE)
    yield hub_server
    # The client keeps its connection open; close it so the server's thread for it ends.
    from huggingface_hub.utils import close_session

    close_session()


@pytest.fixture
def quick_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """The load check's child process is tested elsewhere (test_dialogs): here it passes."""
    monkeypatch.setattr(first_run, "check_model_loads", lambda model, mmproj, ctx: REPORT)


def cache_bytes() -> int:
    hub = Path(os.environ["HF_HOME"]) / "hub"
    return sum(p.stat().st_size for p in hub.rglob("*") if p.is_file() and not p.is_symlink())


def guide(qtbot: Any) -> FirstRunGuide:
    made = FirstRunGuide(Settings())
    qtbot.addWidget(made)
    made.show()
    qtbot.waitExposed(made)
    return made


def choose_f16(made: FirstRunGuide) -> None:
    """F16: the quickest conversion, where the test is about the download."""
    made.download_quant_combo.setCurrentIndex(made.download_quant_combo.findData("F16"))


def plan(qtbot: Any, made: FirstRunGuide) -> None:
    with qtbot.waitSignal(made.start_plan().ended, timeout=30_000):
        pass
    QApplication.processEvents()


def wait(qtbot: Any, handle: Any) -> None:
    with qtbot.waitSignal(handle.ended, timeout=120_000):
        pass
    QApplication.processEvents()


def cancel_during_download(qtbot: Any, made: FirstRunGuide) -> None:
    """Start the download and press Cancel once about 0.5 MB has arrived (the worker waits at
    that point until the click, so the download cannot end first)."""
    reached, clicked = threading.Event(), threading.Event()
    qtbot.mouseClick(made.download_button, Qt.MouseButton.LeftButton)
    handle = made._worker
    assert handle is not None

    def hold(percent: int, message: str) -> None:  # in the worker thread
        if message.startswith("Downloading:") and percent >= 15 and not reached.is_set():
            reached.set()
            clicked.wait(10)

    handle.worker.progress.connect(hold, Qt.ConnectionType.DirectConnection)
    qtbot.waitUntil(reached.is_set, timeout=30_000)
    assert made.cancel_button.isVisible()
    qtbot.mouseClick(made.cancel_button, Qt.MouseButton.LeftButton)
    clicked.set()
    wait(qtbot, handle)


def test_the_guide_offers_qwenstoryteller2_first_and_says_sizes_and_disks_before_starting(
    qtbot: Any, storyteller2: HubServer
) -> None:
    made = guide(qtbot)
    assert made.download_combo.itemText(0) == "QwenStoryteller2 (recommended)"
    assert "97.5%" in made.why_label.text()
    assert made.download_combo.itemText(1) == "QwenStoryteller"  # one click away
    assert not made.download_button.isEnabled()  # sizes and disks first
    assert storyteller2.requests() == []  # nothing asked of the Hub until the user asks
    choose_f16(made)
    plan(qtbot, made)
    text = made.plan_label.text()
    assert f"Download: {model_download.size_text(WEIGHTS)}." in text
    assert "Converted model: about" in text and "needs" in text and "free" in text
    assert made.download_button.isEnabled()
    assert not [n for n in storyteller2.downloaded() if n.endswith(".safetensors")]


def test_download_and_convert_through_the_guide_to_use_this_model(
    qtbot: Any, storyteller2: HubServer, quick_check: None
) -> None:
    made = guide(qtbot)
    assert made.download_quant_combo.currentData() == "Q4_K_M"  # the default quality
    plan(qtbot, made)
    formats: list[str] = []
    qtbot.mouseClick(made.download_button, Qt.MouseButton.LeftButton)
    handle = made._worker
    assert handle is not None
    handle.progress.connect(lambda *_: formats.append(made.download_progress.format()))
    wait(qtbot, handle)
    assert not close_error_dialogs()
    # one bar: downloading, then converting
    assert formats[0].startswith("Downloading") and formats[-1].startswith("Converting")
    assert made.model_path is not None and made.model_path.name == "QwenStoryteller2-Q4_K_M.gguf"
    assert made.model_path.parent == paths.user_models_dir() / "qwenstoryteller2"
    assert made.mmproj_path is not None and made.mmproj_path.is_file()
    # this app downloaded the checkpoint: deleting it is offered, not done
    assert made.delete_checkpoint_button.isVisible()
    assert "frees" in made.delete_checkpoint_button.text()
    qtbot.mouseClick(made.check_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: made.checked, timeout=30_000)
    qtbot.waitUntil(lambda: made.done_button.isEnabled())
    qtbot.mouseClick(made.done_button, Qt.MouseButton.LeftButton)
    assert load_settings().model_path == made.model_path
    before = cache_bytes()
    qtbot.mouseClick(made.delete_checkpoint_button, Qt.MouseButton.LeftButton)
    assert before - cache_bytes() >= WEIGHTS
    assert not (
        Path(os.environ["HF_HOME"]) / "hub" / "models--daniel3303--QwenStoryteller2"
    ).exists()
    assert made.model_path.is_file()  # the model files stay
    assert load_record() is None


def test_cancel_pauses_and_the_next_start_offers_resume(
    qtbot: Any, storyteller2: HubServer
) -> None:
    made = guide(qtbot)
    choose_f16(made)
    plan(qtbot, made)
    cancel_during_download(qtbot, made)
    assert made.download_status.text() == "Download paused."
    assert made.paused_row.isVisible()
    record = load_record()
    assert record is not None and record.state is State.PAUSED
    kept = record.fetched_bytes()
    assert 0 < kept < WEIGHTS
    made.close()

    requests = len(storyteller2.requests())
    # the next start opens the guide, even with a model set up, for the paused download
    assert first_run_guide_wanted(Settings(server_url="http://127.0.0.1:9"))
    again = guide(qtbot)  # the next start: offered, never resumed on its own
    assert again.paused_row.isVisible()
    assert again.paused_label.text().startswith("Download paused: ")
    assert f"of {WEIGHTS / 1e6:.2f} MB" in again.paused_label.text()
    assert again.discard_button.text() == f"Discard (frees {model_download.size_text(kept)})"
    assert len(storyteller2.requests()) == requests
    handle = again.resume_download()
    assert handle is not None
    wait(qtbot, handle)
    assert not close_error_dialogs()
    assert again.model_path is not None and again.model_path.is_file()
    ranges = [r.range for r in storyteller2.requests("GET", SHARD)]
    assert ranges[-1] is not None and ranges[-1].startswith("bytes=")  # resumed, not restarted
    assert not again.paused_row.isVisible()
    assert not first_run_guide_wanted(Settings(server_url="http://127.0.0.1:9"))


def test_discard_frees_the_bytes_of_a_paused_download(qtbot: Any, storyteller2: HubServer) -> None:
    made = guide(qtbot)
    choose_f16(made)
    plan(qtbot, made)
    cancel_during_download(qtbot, made)
    record = load_record()
    assert record is not None
    kept = record.fetched_bytes()
    before = cache_bytes()
    qtbot.mouseClick(made.discard_button, Qt.MouseButton.LeftButton)
    assert before - cache_bytes() >= kept
    assert not list((Path(os.environ["HF_HOME"]) / "hub").rglob("*.incomplete"))
    assert load_record() is None and not made.paused_row.isVisible()
    assert (
        made.download_status.text()
        == f"Download discarded: {model_download.size_text(kept)} freed."
    )


def test_a_pre_populated_cache_is_not_downloaded_again_nor_offered_for_deletion(
    qtbot: Any, storyteller2: HubServer, quick_check: None
) -> None:
    from huggingface_hub import snapshot_download

    hub = Path(os.environ["HF_HOME"]) / "hub"
    snapshot_download(REPO, cache_dir=hub, endpoint=storyteller2.url)  # another tool did
    fetched_before = len(storyteller2.downloaded())
    made = guide(qtbot)
    choose_f16(made)
    plan(qtbot, made)
    assert "nothing to download" in made.plan_label.text()
    qtbot.mouseClick(made.download_button, Qt.MouseButton.LeftButton)
    assert made._worker is not None
    wait(qtbot, made._worker)
    assert not close_error_dialogs()
    assert made.model_path is not None and made.model_path.is_file()
    assert not [n for n in storyteller2.downloaded()[fetched_before:] if n.endswith(".safetensors")]
    assert not made.delete_checkpoint_button.isVisible()
    record = load_record()
    assert record is not None and not record.ours
    with pytest.raises(Exception, match="not downloaded by Storyteller"):
        model_download.delete_checkpoint(record)
    assert (hub / "models--daniel3303--QwenStoryteller2" / "snapshots").is_dir()


def test_no_hub_at_all_is_said_plainly(qtbot: Any) -> None:
    made = guide(qtbot)  # the autouse fixture's Hub: a closed loopback port, offline
    plan(qtbot, made)
    texts = close_error_dialogs()
    assert made.plan_label.text().startswith("✖ The Hub could not be asked: ")
    assert texts and "Traceback" not in texts[0]
    assert not made.download_button.isEnabled()


def test_a_download_cut_for_good_is_paused_with_what_it_fetched(
    qtbot: Any, storyteller2: HubServer
) -> None:
    repo = storyteller2.repos[REPO]
    repo.cut_after[SHARD] = 1_000_000  # the connection drops after 1 MB of the shard ...
    made = guide(qtbot)
    choose_f16(made)
    plan(qtbot, made)
    qtbot.mouseClick(made.download_button, Qt.MouseButton.LeftButton)
    handle = made._worker
    assert handle is not None

    def hub_goes_down(percent: int, message: str) -> None:  # ... and the Hub stays busy
        if message.startswith("Downloading:") and percent > 0:
            repo.fail_first[SHARD] = 100

    handle.worker.progress.connect(hub_goes_down, Qt.ConnectionType.DirectConnection)
    wait(qtbot, handle)
    texts = close_error_dialogs()
    assert texts and "503" in texts[0]
    assert made.download_status.text().startswith("✖ Download or conversion failed: ")
    assert made.paused_row.isVisible()
    record = load_record()
    assert record is not None and 500_000 < record.fetched_bytes() <= 1_000_000
    assert made.paused_label.text().startswith("Download paused: 0.")
    assert made.model_path is None or "QwenStoryteller2" not in made.model_path.name


def test_a_model_already_converted_is_said_before_downloading(
    qtbot: Any, storyteller2: HubServer
) -> None:
    outdir = paths.user_models_dir() / "qwenstoryteller2"
    outdir.mkdir(parents=True)
    (outdir / "QwenStoryteller2-F16.gguf").write_bytes(b"converted earlier")
    made = guide(qtbot)
    choose_f16(made)
    plan(qtbot, made)
    qtbot.mouseClick(made.download_button, Qt.MouseButton.LeftButton)
    assert made._worker is not None
    wait(qtbot, made._worker)
    texts = close_error_dialogs()
    assert texts and "already holds converted files" in made.download_status.text()
    assert "“Locate model files…”" in made.download_status.text()
    assert "--force" not in made.download_status.text()
    assert not [n for n in storyteller2.downloaded() if n.endswith(".safetensors")]
    assert (outdir / "QwenStoryteller2-F16.gguf").read_bytes() == b"converted earlier"
