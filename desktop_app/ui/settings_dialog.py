"""Settings: which model runs the stories (files here, or a server), how, and where the library is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop_app.app.backends import describe_settings_backend, projector_beside
from desktop_app.app.settings import Settings, save_settings
from desktop_app.engine.api import Preset
from desktop_app.errors import StorytellerError
from desktop_app.ui.error_dialog import show_error
from desktop_app.ui.workers import CallableWorker, JobContext, WorkerPool

_PRESET_LABELS = {Preset.FAITHFUL: "Faithful", Preset.CREATIVE: "Creative"}


def _path_row(parent: QWidget, edit: QLineEdit, pick: Any) -> QWidget:
    row = QWidget(parent)
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(edit, 1)
    button = QPushButton("Browse…", row)
    button.clicked.connect(pick)
    layout.addWidget(button)
    return row


class SettingsDialog(QDialog):
    """Edit and save ``Settings``; emits ``saved`` with the new settings."""

    saved = Signal(object)

    def __init__(self, settings: Settings | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("settingsDialog")
        self.setWindowTitle("Settings")
        self.setMinimumWidth(640)
        self._settings = settings if settings is not None else Settings()
        self._workers = WorkerPool(self)
        s = self._settings
        engine_box = self._build_engine_box(s)
        perf_box = self._build_performance_box(s)
        stories_box = self._build_stories_box(s)
        library_box = self._build_library_box(s)
        self.problem_label = QLabel("")
        self.problem_label.setObjectName("settingsProblem")
        self.problem_label.setStyleSheet("color:#b00020;")
        self.problem_label.setWordWrap(True)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(engine_box)
        layout.addWidget(perf_box)
        layout.addWidget(stories_box)
        layout.addWidget(library_box)
        layout.addWidget(self.problem_label)
        layout.addWidget(buttons)
        self.local_radio.toggled.connect(self._update_enabled)
        self._update_enabled()

    def _build_engine_box(self, s: Settings) -> QGroupBox:
        engine_box = QGroupBox("Where the model runs", self)
        self.local_radio = QRadioButton("On this computer (llama.cpp, works offline)")
        self.server_radio = QRadioButton("On a server (OpenAI-compatible: llama.cpp server, vLLM…)")
        group = QButtonGroup(self)
        group.addButton(self.local_radio)
        group.addButton(self.server_radio)
        self.model_edit = QLineEdit(str(s.model_path or ""))
        self.model_edit.setPlaceholderText("automatic: the installed model")
        self.mmproj_edit = QLineEdit(str(s.mmproj_path or ""))
        self.mmproj_edit.setPlaceholderText("automatic: the mmproj file beside the model")
        self.server_edit = QLineEdit(s.server_url or "")
        self.server_edit.setPlaceholderText("http://192.168.1.20:8080/v1")
        self.key_edit = QLineEdit(s.api_key or "")
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setPlaceholderText("optional")
        self.server_model_edit = QLineEdit(s.server_model or "")
        self.server_model_edit.setPlaceholderText("optional: the server's model name")
        local_form = QFormLayout()
        local_form.addRow("Model file (.gguf):", _path_row(self, self.model_edit, self._pick_model))
        local_form.addRow(
            "Vision file (mmproj .gguf):", _path_row(self, self.mmproj_edit, self._pick_mmproj)
        )
        server_form = QFormLayout()
        server_form.addRow("Server URL:", self.server_edit)
        server_form.addRow("API key:", self.key_edit)
        server_form.addRow("Model name:", self.server_model_edit)
        self.test_button = QPushButton("Test connection")
        self.test_button.clicked.connect(self._test_connection)
        self.test_label = QLabel("")
        self.test_label.setObjectName("serverTest")
        self.test_label.setWordWrap(True)
        test_row = QHBoxLayout()
        test_row.addWidget(self.test_button)
        test_row.addWidget(self.test_label, 1)
        server_form.addRow("", test_row)
        engine_layout = QVBoxLayout(engine_box)
        engine_layout.addWidget(self.local_radio)
        engine_layout.addLayout(local_form)
        engine_layout.addWidget(self.server_radio)
        engine_layout.addLayout(server_form)
        self.server_radio.setChecked(bool(s.server_url))
        self.local_radio.setChecked(not s.server_url)
        return engine_box

    def _build_performance_box(self, s: Settings) -> QGroupBox:
        perf_box = QGroupBox("Performance (embedded model)", self)
        self.gpu_auto = QCheckBox("Automatic (as many layers as the GPU build can take)")
        self.gpu_spin = QSpinBox()
        self.gpu_spin.setRange(0, 999)
        self.gpu_spin.setSuffix(" layers on the GPU")
        self.gpu_spin.setToolTip("0 runs on the CPU only")
        self.gpu_auto.setChecked(s.n_gpu_layers < 0)
        self.gpu_spin.setValue(max(0, s.n_gpu_layers))
        self.gpu_spin.setEnabled(s.n_gpu_layers >= 0)
        self.gpu_auto.toggled.connect(lambda on: self.gpu_spin.setEnabled(not on))
        self.threads_spin = QSpinBox()
        self.threads_spin.setRange(0, 256)
        self.threads_spin.setSpecialValueText("automatic (physical cores)")
        self.threads_spin.setValue(s.n_threads or 0)
        self.ctx_spin = QSpinBox()
        self.ctx_spin.setRange(0, 131072)
        self.ctx_spin.setSingleStep(1024)
        self.ctx_spin.setSpecialValueText("automatic (sized for each story)")
        self.ctx_spin.setValue(s.n_ctx or 0)
        perf_form = QFormLayout(perf_box)
        gpu_row = QWidget()
        gpu_layout = QHBoxLayout(gpu_row)
        gpu_layout.setContentsMargins(0, 0, 0, 0)
        gpu_layout.addWidget(self.gpu_auto)
        gpu_layout.addWidget(self.gpu_spin)
        perf_form.addRow("GPU layers:", gpu_row)
        perf_form.addRow("CPU threads:", self.threads_spin)
        perf_form.addRow("Context size:", self.ctx_spin)
        self.device_label = QLabel(describe_settings_backend(s))
        perf_form.addRow("Device:", self.device_label)
        return perf_box

    def _build_stories_box(self, s: Settings) -> QGroupBox:
        """The run options the toolbar does not show: story length, seed, format, speed."""
        box = QGroupBox("Stories", self)
        self.max_tokens_spin = QSpinBox()
        self.max_tokens_spin.setObjectName("storyLength")
        self.max_tokens_spin.setRange(256, 32768)
        self.max_tokens_spin.setSingleStep(256)
        self.max_tokens_spin.setSuffix(" tokens")
        self.max_tokens_spin.setValue(s.max_tokens)
        self.max_tokens_spin.setToolTip(
            "The most the model may write for one story, analysis included. Lower it when a "
            "story does not fit the model's context; raise it when stories stop mid-way."
        )
        self.preset_combo = QComboBox()
        for preset, label in _PRESET_LABELS.items():
            self.preset_combo.addItem(label, preset)
        self.preset_combo.setCurrentIndex(list(_PRESET_LABELS).index(s.preset))
        self.seed_random = QCheckBox("A new seed for each story")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setPrefix("always seed ")
        self.seed_spin.setToolTip("The same seed, photos and choices tell the same story again")
        self.seed_random.setChecked(s.seed is None)
        self.seed_spin.setValue(s.seed or 0)
        self.seed_spin.setEnabled(s.seed is not None)
        self.seed_random.toggled.connect(lambda on: self.seed_spin.setEnabled(not on))
        self.strict_check = QCheckBox("Keep the model to the story format (strict format)")
        self.strict_check.setToolTip(
            "The model may only write what the story format allows: fewer broken stories, "
            "a little slower"
        )
        self.strict_check.setChecked(s.strict_format)
        self.speculation_check = QCheckBox("Write several words at a time when it can (faster)")
        self.speculation_check.setToolTip(
            "Guesses the next words from what is already written and checks them in one step; "
            "the story is the same either way"
        )
        self.speculation_check.setChecked(s.speculation)
        self.prepare_check = QCheckBox("Prepare photos in the background")
        self.prepare_check.setToolTip(
            "While an album is open, its photos are read into the model before you press "
            "Generate, so the story starts almost at once (not on battery, and only when the "
            "model fits in free memory with room to spare)"
        )
        self.prepare_check.setChecked(s.prepare_in_background)
        seed_row = QWidget()
        seed_layout = QHBoxLayout(seed_row)
        seed_layout.setContentsMargins(0, 0, 0, 0)
        seed_layout.addWidget(self.seed_random)
        seed_layout.addWidget(self.seed_spin)
        form = QFormLayout(box)
        form.addRow("Story length:", self.max_tokens_spin)
        form.addRow("Default style:", self.preset_combo)
        form.addRow("Seed:", seed_row)
        form.addRow("", self.strict_check)
        form.addRow("", self.speculation_check)
        form.addRow("", self.prepare_check)
        return box

    def _build_library_box(self, s: Settings) -> QGroupBox:
        library_box = QGroupBox("Library", self)
        self.library_edit = QLineEdit(str(s.library_dir or ""))
        self.library_edit.setPlaceholderText("default: your user data folder")
        library_form = QFormLayout(library_box)
        library_form.addRow(
            "Library folder:", _path_row(self, self.library_edit, self._pick_library)
        )
        note = QLabel("Albums and stories are kept here; your photos stay where they are.")
        note.setWordWrap(True)
        library_form.addRow(note)
        return library_box

    def _update_enabled(self) -> None:
        local = self.local_radio.isChecked()
        for widget in (self.model_edit, self.mmproj_edit):
            widget.setEnabled(local)
        for widget in (self.server_edit, self.key_edit, self.server_model_edit, self.test_button):
            widget.setEnabled(not local)

    def _test_connection(self) -> None:
        """Ask the server what it is, its model and whether it takes a grammar (in the
        background: an unreachable server takes seconds to say so)."""
        url = self.server_edit.text().strip()
        if not url:
            self.test_label.setText("Enter the server's URL first.")
            return
        key = self.key_edit.text().strip() or None
        model = self.server_model_edit.text().strip() or None

        def ask(_context: JobContext) -> str:
            from desktop_app.engine.server_backend import OpenAIServerBackend

            backend = OpenAIServerBackend(url, api_key=key, model=model)
            try:
                return backend.identify().describe()
            finally:
                backend.close()

        self.test_button.setEnabled(False)
        self.test_label.setText("Asking the server…")
        handle = self._workers.start(CallableWorker(ask))
        handle.finished.connect(lambda text: self._tested(f"Connected: {text}."))
        handle.failed.connect(lambda err, _details: self._tested(str(err)))

    def _tested(self, text: str) -> None:
        self.test_label.setText(text)
        self.test_button.setEnabled(not self.local_radio.isChecked())

    def done(self, result: int) -> None:
        self._workers.stop_all()  # a test still asking ends with the dialog
        super().done(result)

    def _pick_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model file", "", "GGUF (*.gguf)")
        if path:
            self.model_edit.setText(path)
            if not self.mmproj_edit.text():
                pair = projector_beside(Path(path))
                if pair is not None:
                    self.mmproj_edit.setText(str(pair))

    def _pick_mmproj(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Vision projector", "", "GGUF (*.gguf)")
        if path:
            self.mmproj_edit.setText(path)

    def _pick_library(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Library folder")
        if path:
            self.library_edit.setText(path)

    def values(self) -> Settings:
        """The settings as entered; raises StorytellerError naming the field to fix."""

        def path_or_none(edit: QLineEdit) -> Path | None:
            text = edit.text().strip()
            return Path(text).expanduser() if text else None

        model = path_or_none(self.model_edit)
        mmproj = path_or_none(self.mmproj_edit)
        server = self.server_edit.text().strip() or None
        if self.local_radio.isChecked():
            server = None
            for label, path in (("Model file", model), ("Vision file", mmproj)):
                if path is not None and not path.is_file():
                    raise StorytellerError(f"{label}: {path} does not exist; choose the .gguf file")
            if (model is None) != (mmproj is None):
                raise StorytellerError(
                    "Choose both the model file and its vision (mmproj) file, or neither"
                )
        elif not server or not server.startswith(("http://", "https://")):
            raise StorytellerError("Server URL: enter an address such as http://127.0.0.1:8080/v1")
        library = path_or_none(self.library_edit)
        return self._settings.replace(
            model_path=model,
            mmproj_path=mmproj,
            server_url=server,
            api_key=self.key_edit.text().strip() or None,
            server_model=self.server_model_edit.text().strip() or None,
            n_gpu_layers=-1 if self.gpu_auto.isChecked() else self.gpu_spin.value(),
            n_threads=self.threads_spin.value() or None,
            n_ctx=self.ctx_spin.value() or None,
            library_dir=library,
            max_tokens=self.max_tokens_spin.value(),
            preset=self.preset_combo.currentData(),
            seed=None if self.seed_random.isChecked() else self.seed_spin.value(),
            strict_format=self.strict_check.isChecked(),
            speculation=self.speculation_check.isChecked(),
            prepare_in_background=self.prepare_check.isChecked(),
        )

    def save(self) -> bool:
        """Check, save and close; a problem is shown in the dialog and nothing is saved."""
        try:
            settings = self.values()
        except StorytellerError as err:
            self.problem_label.setText(str(err))
            return False
        try:
            save_settings(settings)
        except (StorytellerError, OSError) as err:
            show_error(self, err, action="Saving the settings")
            return False
        self.saved.emit(settings)
        self.accept()
        return True
