"""The story toolbar: Generate and Stop, and the run's choices (preset, detail, seed,
instruction).

The toolbar tells the session what the user chose; generating is the generation controller's
job (``desktop_app.ui.generation``), and the run's progress shows in the status bar
(``desktop_app.ui.status_bar``), where a small window cannot push it into an overflow menu.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QComboBox, QLabel, QSpinBox, QToolBar, QWidget

from desktop_app.engine.api import Detail, Preset
from desktop_app.ui.session import RunChoices, Session
from desktop_app.ui.trained_choices import DETAIL_TIP, InstructionCombo, detail_tip


class StoryToolbar(QToolBar):
    """Generate/Stop, and the preset, detail, seed and instruction of the next run."""

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
        self.addWidget(self.instruction_combo)  # it takes the width left: long sentences fit
        for signal in (
            self.preset_combo.currentIndexChanged,
            self.detail_combo.currentIndexChanged,
            self.seed_spin.valueChanged,
            self.instruction_combo.currentTextChanged,
        ):
            signal.connect(self._publish_choices)
        self._publish_choices()

    def _publish_choices(self, *_args: object) -> None:
        self._session.set_choices(
            RunChoices(self.preset(), self.detail(), self.seed(), self.instruction())
        )

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
