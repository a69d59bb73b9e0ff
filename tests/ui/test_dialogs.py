"""Settings, the first-run guide, error messages and keyboard use."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from ui_helpers import close_error_dialogs

from desktop_app import paths
from desktop_app.app.settings import Settings, load_settings
from desktop_app.errors import StorytellerError
from desktop_app.ui import error_dialog as ui_errors
from desktop_app.ui.first_run import FirstRunGuide
from desktop_app.ui.settings_dialog import SettingsDialog


def test_settings_dialog_saves_what_the_user_entered(qtbot: Any, tmp_path: Path) -> None:
    model = tmp_path / "story-Q4_K_M.gguf"
    mmproj = tmp_path / "mmproj-story-f16.gguf"
    model.write_bytes(b"GGUF")
    mmproj.write_bytes(b"GGUF")
    dialog = SettingsDialog(Settings())
    qtbot.addWidget(dialog)
    saved: list[Any] = []
    dialog.saved.connect(saved.append)
    dialog.model_edit.setText(str(model))
    dialog.mmproj_edit.setText(str(mmproj))
    dialog.gpu_auto.setChecked(False)
    dialog.gpu_spin.setValue(12)
    dialog.threads_spin.setValue(3)
    dialog.library_edit.setText(str(tmp_path / "library"))
    assert dialog.save()
    (settings,) = saved
    assert (settings.model_path, settings.mmproj_path) == (model, mmproj)
    assert (settings.n_gpu_layers, settings.n_threads, settings.n_ctx) == (12, 3, None)
    assert load_settings() == settings  # written to the settings file


def test_picking_a_model_fills_in_the_vision_file_the_engine_pairs_with_it(
    qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtWidgets import QFileDialog

    from desktop_app.app.backends import resolve_model

    folder = tmp_path / "models"
    folder.mkdir()
    model = folder / "story-Q4_K_M.gguf"
    names = ("mmproj-aaa-f16.gguf", "mmproj-bbb-f16.gguf", "mmproj-story-f16.gguf", "xmmproj.gguf")
    for path in (model, *(folder / name for name in names)):
        path.write_bytes(b"GGUF")
    partner = folder / "mmproj-story-f16.gguf"
    assert resolve_model(model, None).mmproj_path == partner  # what "automatic" loads
    picked = [(str(model), "")]
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *_a, **_k: picked.pop(0))
    dialog = SettingsDialog(Settings())
    qtbot.addWidget(dialog)
    dialog._pick_model()
    assert (dialog.model_edit.text(), dialog.mmproj_edit.text()) == (str(model), str(partner))
    picked.append((str(model), ""))
    guide = FirstRunGuide(Settings())
    qtbot.addWidget(guide)
    guide._locate()
    assert (guide.model_path, guide.mmproj_path) == (model, partner)


def test_settings_dialog_names_the_field_to_fix_and_saves_nothing(qtbot: Any) -> None:
    dialog = SettingsDialog(Settings())
    qtbot.addWidget(dialog)
    dialog.server_radio.setChecked(True)
    dialog.server_edit.setText("localhost:8080")
    assert not dialog.save()
    assert "Server URL" in dialog.problem_label.text()
    dialog.local_radio.setChecked(True)
    dialog.model_edit.setText("/nowhere/model.gguf")
    assert not dialog.save()
    assert "/nowhere/model.gguf" in dialog.problem_label.text()
    assert not paths.settings_file().exists()


@pytest.mark.slow
def test_first_run_guide_converts_a_checkpoint_and_checks_that_it_loads(
    qtbot: Any, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    guide = FirstRunGuide(Settings())
    qtbot.addWidget(guide)
    progress: list[int] = []
    handle = guide.start_conversion(tiny_checkpoint, None, "F16", tmp_path / "tiny")
    handle.progress.connect(lambda percent, _message: progress.append(percent))
    with qtbot.waitSignal(handle.ended, timeout=120_000):
        pass
    QApplication.processEvents()
    assert guide.model_path is not None and guide.model_path.exists()
    assert guide.mmproj_path is not None and "mmproj" in guide.mmproj_path.name
    assert progress and max(progress) == 100
    check = guide.start_check()
    assert check is not None
    with qtbot.waitSignal(check.ended, timeout=300_000):
        pass
    QApplication.processEvents()
    assert guide.checked, guide.check_status.text()
    saved: list[Any] = []
    guide.saved.connect(saved.append)
    guide.finish()
    assert saved[0].model_path == guide.model_path
    assert load_settings().mmproj_path == guide.mmproj_path


def test_first_run_guide_names_both_checkpoints_that_convert(qtbot: Any) -> None:
    guide = FirstRunGuide(Settings())
    qtbot.addWidget(guide)
    text = guide.checkpoints_label.text()
    assert "daniel3303/QwenStoryteller</b>" in text and "daniel3303/QwenStoryteller2</b>" in text


def test_first_run_guide_reports_a_broken_model_file(qtbot: Any, tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf file")
    mmproj = tmp_path / "mmproj-broken.gguf"
    mmproj.write_bytes(b"not a gguf file either")
    guide = FirstRunGuide(Settings())
    qtbot.addWidget(guide)
    guide.set_model_files(broken, mmproj)
    handle = guide.start_check()
    assert handle is not None
    with qtbot.waitSignal(handle.ended, timeout=120_000):
        pass
    QApplication.processEvents()
    assert not guide.checked
    assert "✖" in guide.check_status.text()
    texts = close_error_dialogs()
    assert texts and "broken.gguf" in texts[0]


def test_errors_become_messages_that_say_what_to_fix(qtbot: Any) -> None:
    expected = ui_errors.describe_error(
        StorytellerError("photo.heic cannot be read: install pi-heif"), action="Importing"
    )
    assert expected.expected and expected.title == "Importing failed"
    assert expected.text == "photo.heic cannot be read: install pi-heif" and not expected.details
    disk = ui_errors.describe_error(OSError(28, "No space left on device", "/x/story.pdf"))
    assert "No space left on device" in disk.text and "/x/story.pdf" in disk.text
    bug = ui_errors.describe_error(ZeroDivisionError("division by zero"))
    assert not bug.expected and "ZeroDivisionError" in bug.details


def test_an_exception_in_any_thread_becomes_a_dialog_not_a_crash(qtbot: Any) -> None:
    ui_errors.install_excepthooks()
    try:

        def boom() -> None:
            raise StorytellerError("the thread failed: try again")

        thread = threading.Thread(target=boom)
        thread.start()
        thread.join()
        qtbot.waitUntil(lambda: bool(ui_errors.open_error_dialogs()), timeout=5_000)
        assert close_error_dialogs() == ["The thread failed: try again"]
    finally:
        ui_errors.uninstall_excepthooks()


def test_keyboard_tab_moves_through_story_words_and_shows_their_boxes(
    qtbot: Any, story_tabs: Any, sample_photos: list[Path]
) -> None:
    window = story_tabs
    browser = window.story_panel.browser
    browser.setFocus()
    browser.moveCursor(browser.textCursor().MoveOperation.Start)
    qtbot.keyClick(browser, Qt.Key.Key_Tab)
    view = window.story_panel.photo_view
    assert view.photo_path is not None and view.photo_path.name == sample_photos[0].name
    assert [b.overlay.entity_id for b in view.box_items()] == ["char1"]  # "Maya", the first word
    qtbot.keyClick(browser, Qt.Key.Key_Return)
    assert window.story_panel.selected_id == "char1"


@pytest.mark.end_to_end
def test_the_app_starts_with_the_first_run_guide_when_no_model_is_set_up(qtbot: Any) -> None:
    from desktop_app.ui.startup import start_app

    try:
        window = start_app([])
    finally:
        ui_errors.uninstall_excepthooks()
    assert window is not None
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.findChild(FirstRunGuide) is not None, timeout=5_000)
    guide = window.findChild(FirstRunGuide)
    assert guide.isVisible()
    assert window.isVisible() and window.status_bar.backend_label.text().startswith("llama.cpp")
    guide.close()
    window.close()
    window.library.close()


def test_closing_the_guide_during_the_load_check_kills_the_child_process(
    qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys
    import time

    from desktop_app.ui import first_run

    marker = tmp_path / "child-finished"
    slow = f"import time, pathlib; time.sleep(20); pathlib.Path({str(marker)!r}).touch()"
    monkeypatch.setattr(first_run, "self_test_command", lambda *_a: [sys.executable, "-c", slow])
    guide = FirstRunGuide(Settings())
    qtbot.addWidget(guide)
    guide.set_model_files(tmp_path / "m.gguf", tmp_path / "mmproj-m.gguf")
    guide.start_check()
    started = time.monotonic()
    guide.reject()  # "Later"
    assert time.monotonic() - started < 5
    qtbot.waitUntil(lambda: guide.check_status.text() == "Cancelled.", timeout=5_000)
    assert not marker.exists()
