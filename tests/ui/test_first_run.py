"""The first-run guide's rough edges: Enter after a passing check uses the model, a failed
conversion says so where it ran, the model in use is not "not checked", dialogs open where
model files are, and a passing check shows its numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QFileDialog, QLabel
from ui_helpers import close_error_dialogs

from convert import pipeline
from desktop_app.app.settings import Settings
from desktop_app.ui.first_run import FirstRunGuide

REPORT = "tiny: 40 tokens (stop)\n  load 3.14 s, first token 0.52 s, 12.3 tokens/s\n"


def _guide(qtbot: Any, settings: Settings | None = None) -> FirstRunGuide:
    guide = FirstRunGuide(settings or Settings())
    qtbot.addWidget(guide)
    guide.show()
    qtbot.waitExposed(guide)
    return guide


def test_after_a_passing_check_enter_uses_the_model_and_the_numbers_are_shown(
    qtbot: Any, tmp_path: Path
) -> None:
    guide = _guide(qtbot)
    guide.set_model_files(tmp_path / "story.gguf", tmp_path / "mmproj-story.gguf")
    guide.activateWindow()
    guide.later_button.setFocus()  # where the focus lands when the check button is disabled
    qtbot.waitUntil(guide.later_button.hasFocus)
    guide._on_checked(REPORT)
    assert "loaded in 3.1 s, writes 12 tokens/s" in guide.check_status.text()
    saved: list[Any] = []
    guide.saved.connect(saved.append)
    focused = QApplication.focusWidget()
    assert focused is not None
    qtbot.keyClick(focused, Qt.Key.Key_Return)
    assert saved and saved[0].model_path == tmp_path / "story.gguf"


def test_a_failed_conversion_says_so_under_the_conversion_not_converting(
    qtbot: Any, tmp_path: Path
) -> None:
    guide = _guide(qtbot)
    before = guide.check_status.text()
    photos = tmp_path / "photos"
    photos.mkdir()
    handle = guide.start_conversion(photos, None, "Q4_K_M", tmp_path / "out")
    with qtbot.waitSignal(handle.ended, timeout=60_000):
        pass
    QApplication.processEvents()
    text = guide.convert_status.text()
    assert "Converting" not in text and text.startswith("✖ Conversion failed")
    assert "SRC" not in text and "choose the Hugging Face checkpoint folder" in text
    assert guide.check_status.text() == before
    assert close_error_dialogs()


def test_the_model_in_use_is_not_called_not_checked(qtbot: Any, tmp_path: Path) -> None:
    model, mmproj = tmp_path / "story.gguf", tmp_path / "mmproj-story.gguf"
    guide = _guide(qtbot, Settings(model_path=model, mmproj_path=mmproj))
    assert "In use" in guide.check_status.text()
    guide.set_model_files(tmp_path / "other.gguf", tmp_path / "mmproj-other.gguf")
    assert guide.check_status.text() == "Not checked yet."


def test_file_dialogs_open_in_downloads_not_the_working_folder(
    qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    (home / "Downloads").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    asked: list[str] = []
    monkeypatch.setattr(
        QFileDialog, "getOpenFileName", lambda _p, _t, folder, _f: asked.append(folder) or ("", "")
    )
    monkeypatch.setattr(
        QFileDialog, "getExistingDirectory", lambda _p, _t, folder: asked.append(folder) or ""
    )
    guide = _guide(qtbot)
    guide._locate()
    guide._pick_folder(guide.source_edit, "Checkpoint folder")
    assert asked == [str(home / "Downloads")] * 2


def test_the_guide_lists_qwenstoryteller2_first_marked_recommended_with_why(qtbot: Any) -> None:
    guide = _guide(qtbot)
    # where a model is chosen: first, marked, with one line why shown under it
    assert guide.download_combo.itemText(0) == "QwenStoryteller2 (recommended)"
    assert guide.download_combo.currentIndex() == 0
    why = guide.why_label.text()
    assert guide.why_label.isVisible() and why.startswith("Recommended: ")
    assert "well-formed output in 97.5% of runs against 79.1%" in why
    assert "mAP 0.31 against 0.27" in why
    # QwenStoryteller stays one click away, without the mark
    assert guide.download_combo.itemText(1) == "QwenStoryteller"
    guide.download_combo.setCurrentIndex(1)
    assert "Recommended" not in guide.why_label.text() and "0.27" in guide.why_label.text()
    # where the checkpoints are described for converting a folder: the same order and mark
    text = guide.checkpoints_label.text()
    first, second = text.index("QwenStoryteller2</b>"), text.index("QwenStoryteller</b>")
    assert first < second
    assert text[first:].startswith("QwenStoryteller2</b> (recommended)")
    assert "recommended" not in text[second:]
    assert "QwenStoryteller2</b> (recommended)" in guide.findChild(QLabel, "guideIntro").text()


def test_a_conversion_whose_disk_may_fill_says_so_in_the_guide_and_goes_on(
    qtbot: Any, tmp_path: Path, tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The converter's low-space warning (less than twice the room it needs) is shown under the
    conversion while it runs, not only logged; the conversion still finishes."""
    real_usage = pipeline.shutil.disk_usage
    roomy = real_usage(tmp_path)
    # Room for the margin alone and a little more: enough to convert the tiny model, < 2x.
    free = pipeline.DISK_MARGIN_BYTES + (48 << 20)
    monkeypatch.setattr(
        pipeline.shutil, "disk_usage", lambda path: type(roomy)(roomy.total, roomy.used, free)
    )
    guide = _guide(qtbot)
    assert not guide.convert_warning.isVisible()
    handle = guide.start_conversion(tiny_checkpoint, None, "F16", tmp_path / "out")
    with qtbot.waitSignal(handle.ended, timeout=120_000):
        pass
    QApplication.processEvents()
    assert guide.convert_warning.isVisible()
    assert "GB free" in guide.convert_warning.text()
    assert "free some space" in guide.convert_warning.text()
    assert "failed" not in guide.convert_status.text()
    assert any((tmp_path / "out").glob("*.gguf"))
