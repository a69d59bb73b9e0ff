"""The settings dialog's story options: what existed only in settings.json is in the GUI."""

from __future__ import annotations

from typing import Any

from desktop_app.app.settings import Settings, load_settings
from desktop_app.engine.api import Preset
from desktop_app.ui.settings_dialog import SettingsDialog


def test_story_length_seed_style_strict_format_and_speculation_are_settings(qtbot: Any) -> None:
    dialog = SettingsDialog(Settings())
    qtbot.addWidget(dialog)
    assert dialog.max_tokens_spin.value() == Settings().max_tokens
    assert dialog.seed_random.isChecked() and not dialog.seed_spin.isEnabled()
    saved: list[Any] = []
    dialog.saved.connect(saved.append)
    dialog.max_tokens_spin.setValue(2048)
    dialog.preset_combo.setCurrentIndex(dialog.preset_combo.findData(Preset.FAITHFUL))
    dialog.seed_random.setChecked(False)
    dialog.seed_spin.setValue(42)
    dialog.strict_check.setChecked(True)
    dialog.speculation_check.setChecked(False)
    assert dialog.save()
    (settings,) = saved
    assert settings.max_tokens == 2048 and settings.preset is Preset.FAITHFUL
    assert settings.seed == 42 and settings.strict_format and not settings.speculation
    assert load_settings() == settings


def test_the_dialog_shows_the_saved_story_options(qtbot: Any) -> None:
    saved = Settings(max_tokens=1536, seed=7, strict_format=True, speculation=False)
    dialog = SettingsDialog(saved)
    qtbot.addWidget(dialog)
    assert dialog.max_tokens_spin.value() == 1536
    assert not dialog.seed_random.isChecked() and dialog.seed_spin.value() == 7
    assert dialog.strict_check.isChecked() and not dialog.speculation_check.isChecked()
    assert dialog.values() == saved
