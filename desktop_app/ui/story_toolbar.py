"""The story toolbar: Generate and Stop, the run's choices (preset, detail, seed) and its progress.

The toolbar tells the session what the user chose and shows the run being written as the
session reports it; generating is the generation controller's job
(``desktop_app.ui.generation``).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QComboBox, QLabel, QProgressBar, QSpinBox, QToolBar, QWidget

from desktop_app.engine.api import Detail, Preset
from desktop_app.ui.session import EndedRun, LiveRun, RunChoices, Session
from desktop_app.ui.trained_choices import DETAIL_TIP, InstructionCombo, detail_tip


class StoryToolbar(QToolBar):
    """Generate/Stop, the preset, detail and seed of the next run, and the running run's phase."""

    def __init__(
        self,
        session: Session,
        generate: QAction,
        stop: QAction,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__("Story", parent)
        self._session = session
        settings = session.settings
        self.setObjectName("storyToolbar")
        self.setMovable(False)
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.addAction(generate)
        self.addAction(stop)
        self.addSeparator()
        self.preset_combo = QComboBox(self)
        self.preset_combo.setObjectName("presetCombo")
        self.preset_combo.addItem("Faithful", Preset.FAITHFUL)
        self.preset_combo.addItem("Creative", Preset.CREATIVE)
        self.preset_combo.setCurrentIndex(0 if settings.preset is Preset.FAITHFUL else 1)
        self.preset_combo.setToolTip(
            "Faithful: sticks closely to what is in the photos. Creative: the model card's "
            "sampling (temperature 0.7, top-p 0.9)."
        )
        self.detail_combo = QComboBox(self)
        self.detail_combo.setObjectName("detailCombo")
        for detail in Detail:
            self.detail_combo.addItem(
                f"{detail.label} ({detail.token_budget} tokens/photo)", detail
            )
            self.detail_combo.setItemData(
                self.detail_combo.count() - 1, detail_tip(detail), Qt.ItemDataRole.ToolTipRole
            )
        self.detail_combo.setCurrentIndex(list(Detail).index(settings.detail))
        self.detail_combo.setToolTip(DETAIL_TIP)
        self.instruction_combo = InstructionCombo(self)
        self.seed_spin = QSpinBox(self)
        self.seed_spin.setObjectName("seedSpin")
        self.seed_spin.setRange(-1, 2_147_483_647)
        self.seed_spin.setValue(-1 if settings.seed is None else settings.seed)
        self.seed_spin.setSpecialValueText("random")
        self.seed_spin.setPrefix("seed ")
        self.seed_spin.setToolTip("A fixed seed tells the same story again; 'random' varies it")
        preset_label = QLabel(" Preset ")
        preset_label.setBuddy(self.preset_combo)
        self.addWidget(preset_label)
        self.addWidget(self.preset_combo)
        self.addWidget(QLabel("  "))
        self.addWidget(self.detail_combo)
        self.addWidget(QLabel("  "))
        self.addWidget(self.seed_spin)
        self.addWidget(QLabel("  "))
        self.addWidget(self.instruction_combo)
        self.addSeparator()
        self.phase_label = QLabel("")
        self.phase_label.setObjectName("phaseLabel")
        self.progress_bar = QProgressBar(self)
        self.progress_bar.setMaximumWidth(180)
        self.progress_bar.setTextVisible(False)
        self.addWidget(QLabel(" "))
        # A widget inside a toolbar is shown and hidden through its action.
        self.progress_action = self.addWidget(self.progress_bar)
        self.progress_action.setVisible(False)
        self.addWidget(QLabel(" "))
        self.addWidget(self.phase_label)
        for signal in (
            self.preset_combo.currentIndexChanged,
            self.detail_combo.currentIndexChanged,
            self.seed_spin.valueChanged,
            self.instruction_combo.currentTextChanged,
        ):
            signal.connect(self._publish_choices)
        self._publish_choices()
        session.run_requested.connect(self._on_run_requested)
        session.run_started.connect(self._on_run_started)
        session.run_progressed.connect(self._on_run_progressed)
        session.run_ended.connect(self._on_run_ended)

    def _publish_choices(self, *_args: object) -> None:
        self._session.set_choices(
            RunChoices(self.preset(), self.detail(), self.seed(), self.instruction())
        )

    def _on_run_requested(self) -> None:
        self.show_progress(0, 0)
        self.show_phase("Starting…")

    def _on_run_started(self, live: LiveRun) -> None:
        self.show_progress(0, 0)
        self.show_phase(live.phase_text)

    def _on_run_progressed(self, live: LiveRun) -> None:
        self.show_phase(live.phase_text)
        self.show_progress(*live.bar)

    def _on_run_ended(self, ended: EndedRun) -> None:
        self.hide_progress()
        self.show_phase(ended.phase_text)

    def detail(self) -> Detail:
        """The detail level chosen."""
        return self.detail_combo.currentData()

    def preset(self) -> Preset:
        """The sampling preset chosen."""
        return self.preset_combo.currentData()

    def instruction(self) -> str:
        """The instruction placed before the photos ("" for none)."""
        return self.instruction_combo.instruction()

    def seed(self) -> int | None:
        """The seed chosen; None for a random one."""
        value = self.seed_spin.value()
        return None if value < 0 else value

    def choices(self) -> dict[str, Any]:
        """The choices as ``Settings`` fields (the next session starts with them)."""
        return {"preset": self.preset(), "detail": self.detail(), "seed": self.seed()}

    def set_choices_enabled(self, enabled: bool) -> None:
        """Allow or forbid changing the choices (they are fixed while a story is written)."""
        for widget in (
            self.preset_combo,
            self.detail_combo,
            self.seed_spin,
            self.instruction_combo,
        ):
            widget.setEnabled(enabled)

    def show_phase(self, text: str) -> None:
        """The line beside the progress bar ("Writing frame 2/4 · 9.1 tokens/s")."""
        self.phase_label.setText(text)

    def show_progress(self, value: int, maximum: int) -> None:
        """Show the progress bar at ``value`` of ``maximum`` (0: busy, no known end)."""
        self.progress_bar.setRange(0, maximum)
        if maximum:
            self.progress_bar.setValue(value)
        self.progress_action.setVisible(True)

    def hide_progress(self) -> None:
        """Hide the progress bar (nothing runs)."""
        self.progress_action.setVisible(False)
