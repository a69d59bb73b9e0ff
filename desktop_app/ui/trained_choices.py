"""Toolbar choices named by what QwenStoryteller saw in training: the instruction and the detail.

The model saw one of a few generic instructions (or none) before the photos in every training
example, and small frames of about 150-250 image tokens. The instruction chooser offers exactly
those instructions; typing another text is allowed, and the tooltip says that it goes beyond
training. The detail tooltips say which levels give photos more pixels than training had.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QComboBox, QSizePolicy, QStyle, QStyleOptionComboBox, QWidget

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
    """An editable list of the trained instructions; ``instruction()`` is the chosen text.

    Closed, it is at least as wide as the default sentence and takes the width its toolbar has
    left, so on most screens every sentence shows whole; its list is as wide as the longest.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("instructionCombo")
        self.setEditable(True)
        self.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(8)  # the real minimum is the default sentence (sizeHint)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        for text in TRAINED_INSTRUCTIONS:
            self.addItem(text or NO_INSTRUCTION, text)
            self.setItemData(self.count() - 1, TRAINED_TIP, Qt.ItemDataRole.ToolTipRole)
        self.currentTextChanged.connect(self._update_tip)
        # Show a chosen sentence from its start (an editable combo leaves the cursor at its end).
        self.currentIndexChanged.connect(lambda _index: self.lineEdit().setCursorPosition(0))
        # Leaving the field shows the sentence from its start again, not its tail.
        self.lineEdit().editingFinished.connect(lambda: self.lineEdit().setCursorPosition(0))
        self.setCurrentIndex(TRAINED_INSTRUCTIONS.index(DEFAULT_INSTRUCTION))
        self.lineEdit().setCursorPosition(0)
        self._update_tip()

    def sizeHint(self) -> QSize:
        """Wide enough for the default sentence, whole."""
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        text = QSize(
            self.fontMetrics().horizontalAdvance(DEFAULT_INSTRUCTION) + 8,
            self.fontMetrics().height(),
        )
        hint = self.style().sizeFromContents(QStyle.ContentsType.CT_ComboBox, option, text, self)
        return QSize(hint.width(), super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()

    def popup_width(self) -> int:
        """The width the open list needs to show its longest sentence whole."""
        view = self.view()
        metrics = view.fontMetrics()
        widest = max(metrics.horizontalAdvance(self.itemText(i)) for i in range(self.count()))
        scroll_bar = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
        return widest + scroll_bar + 4 * view.frameWidth() + 24  # item padding on both sides

    def showPopup(self) -> None:
        self.view().setMinimumWidth(self.popup_width())
        super().showPopup()

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
