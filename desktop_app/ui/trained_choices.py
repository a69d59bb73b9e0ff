"""Toolbar choices named by what QwenStoryteller saw in training: the instruction and the detail.

The model saw one of a few generic instructions (or none) before the photos in every training
example, and small frames of about 150-250 image tokens. The instruction chooser offers exactly
those instructions; typing another text is allowed, and the tooltip says that it goes beyond
training. The detail tooltips say which levels give photos more pixels than training had.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QWidget

from desktop_app.engine.api import (
    DEFAULT_INSTRUCTION,
    TRAINED_INSTRUCTIONS,
    Detail,
    is_trained_instruction,
    recorded_detail,
)

DETAIL_TIP = (
    "How many pixels of each photo the model sees. As trained: about the size of the frames "
    "it was trained on. More and Most detail go beyond the training resolution: maybe "
    "sharper boxes on big photos, slower and more memory."
)

NO_INSTRUCTION = "(no instruction)"
TRAINED_TIP = (
    "The sentence the model reads before the photos. These are the instructions it was "
    "trained with (one was drawn at random for every training story, or none): any of them "
    "keeps the model on familiar ground."
)
CUSTOM_TIP = (
    "Your own instruction: beyond training. The model was trained only with the sentences in "
    "this list (or none), so it may follow yours loosely or drift from its format."
)


class InstructionCombo(QComboBox):
    """An editable list of the trained instructions; ``instruction()`` is the chosen text."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("instructionCombo")
        self.setEditable(True)
        self.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(18)
        for text in TRAINED_INSTRUCTIONS:
            self.addItem(text or NO_INSTRUCTION, text)
            self.setItemData(self.count() - 1, TRAINED_TIP, Qt.ItemDataRole.ToolTipRole)
        self.currentTextChanged.connect(self._update_tip)
        # Show a chosen sentence from its start (an editable combo leaves the cursor at its end).
        self.currentIndexChanged.connect(lambda _index: self.lineEdit().setCursorPosition(0))
        self.setCurrentIndex(TRAINED_INSTRUCTIONS.index(DEFAULT_INSTRUCTION))
        self.lineEdit().setCursorPosition(0)
        self._update_tip()

    def instruction(self) -> str:
        """The text to place before the photos ("" for none)."""
        text = self.currentText().strip()
        return "" if text == NO_INSTRUCTION else text

    def is_custom(self) -> bool:
        """True when the instruction is not one the model was trained with."""
        return not is_trained_instruction(self.instruction())

    def _update_tip(self) -> None:
        self.setToolTip(CUSTOM_TIP if self.is_custom() else TRAINED_TIP)


def detail_tip(detail: Detail) -> str:
    """The tooltip of one detail level."""
    if not detail.beyond_training:
        return (
            f"At most {detail.token_budget} image tokens per photo: the closest to the training "
            "frames (small movie stills of about 150-250 tokens)."
        )
    return (
        f"At most {detail.token_budget} image tokens per photo: beyond the training resolution "
        "(the model was trained on frames of about 150-250 tokens). Slower, more memory."
    )


def recorded_detail_words(parameters: dict[str, object]) -> str:
    """A stored run's detail as the app names it now ("More detail, 512 tokens/photo").

    Runs stored before the levels were renamed recorded "low", "normal" or "high": they keep
    the budget they were told with, under its current name. "" when the run recorded none.
    """
    detail = recorded_detail(parameters)
    if detail is None:
        return ""
    return f"{detail.label}, {detail.token_budget} tokens/photo"
