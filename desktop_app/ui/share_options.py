"""How a story is shared with a photo manager: the small dialog the Export menu shows before
writing XMP sidecars or captioned copies (``app.captions``).

Sidecars go beside the original photos (the default, as ``album share --as sidecars
--beside-originals``), named ``photo.jpg.xmp`` or ``photo.xmp``, or into a new folder with copies
of the photos. Before anything is written beside the originals the dialog says how many sidecars
go where, that a sidecar already there is merged into (never replaced), and that the photos
themselves are not written. Copies keep their location (GPS) only when the user ticks it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.app.captions import SidecarNaming

# The export kinds this dialog is shown for (names in app.sharing.SHARE_FORMATS).
PHOTO_MANAGER_KINDS = ("sidecars", "captioned-copies")

_NAMING_LABELS = {
    SidecarNaming.FULL_NAME: "photo.jpg.xmp (digiKam, darktable, Immich)",
    SidecarNaming.STEM: "photo.xmp (Lightroom, Adobe Bridge)",
}


@dataclass(frozen=True)
class ShareChoice:
    """What the user chose: sidecars beside the originals (else a new folder of copies), how
    sidecars are named, whether copies keep their location."""

    beside_originals: bool = True
    naming: SidecarNaming = SidecarNaming.FULL_NAME
    keep_location: bool = False


def beside_originals_summary(photos: Sequence[Path], naming: SidecarNaming) -> str:
    """What writing sidecars beside ``photos`` will do, said before it is done."""
    count = len(photos)
    folders = sorted({photo.parent for photo in photos})
    where = (
        f"in {folders[0]}" if len(folders) == 1 else f"in the {len(folders)} folders they are in"
    )
    example = naming.sidecar_for(Path(photos[0].name)).name if photos else naming.value
    existing = sum(naming.sidecar_for(photo).is_file() for photo in photos)
    plural = "s" if count != 1 else ""
    lines = [
        f"{count} sidecar{plural} (such as {example}) will be written beside the photos {where}."
    ]
    if existing:
        lines.append(
            f"{existing} of them already exist{'s' if existing == 1 else ''}: the captions are "
            "merged into them, never replacing them; everything else in them is kept."
        )
    else:
        lines.append("A sidecar that already exists is merged into, never replaced.")
    lines.append("The photos themselves are not written.")
    return "\n".join(lines)


class ShareOptionsDialog(QDialog):
    """Where sidecars go and how they are named (``sidecars``), and whether copies keep their
    location (``sidecars`` into a folder, ``captioned-copies``)."""

    def __init__(self, kind: str, photos: Sequence[Path], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        if kind not in PHOTO_MANAGER_KINDS:
            raise ValueError(f"{kind!r} is not shared for photo managers")
        self.kind = kind
        self.photos = list(photos)
        sidecars = kind == "sidecars"
        self.setWindowTitle("Share with XMP sidecars" if sidecars else "Share captioned copies")
        layout = QVBoxLayout(self)

        self.beside_button = QRadioButton("Beside the original photos", self)
        self.folder_button = QRadioButton("In a new folder, with copies of the photos", self)
        self.naming_box = QComboBox(self)
        for naming, label in _NAMING_LABELS.items():
            self.naming_box.addItem(label, naming)
        self.summary = QLabel(self)
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        self.summary.setWordWrap(True)
        self.keep_location_box = QCheckBox("Keep location (GPS) in the copies", self)
        self.keep_location_box.setChecked(False)  # what is shared says nothing of where
        if sidecars:
            where = QButtonGroup(self)
            where.addButton(self.beside_button)
            where.addButton(self.folder_button)
            self.beside_button.setChecked(True)
            layout.addWidget(self.beside_button)
            layout.addWidget(self.folder_button)
            form = QFormLayout()
            form.addRow("Sidecar names:", self.naming_box)
            layout.addLayout(form)
        else:
            for widget in (self.beside_button, self.folder_button, self.naming_box):
                widget.hide()
        layout.addWidget(self.summary)
        layout.addWidget(self.keep_location_box)

        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.setMinimumWidth(55 * self.fontMetrics().averageCharWidth())

        self.beside_button.toggled.connect(self._update)
        self.naming_box.currentIndexChanged.connect(self._update)
        self._update()

    def choice(self) -> ShareChoice:
        """What the dialog shows chosen now."""
        return ShareChoice(
            beside_originals=self.kind == "sidecars" and self.beside_button.isChecked(),
            naming=self.naming_box.currentData(),
            keep_location=self.keep_location_box.isChecked(),
        )

    def _update(self) -> None:
        choice = self.choice()
        count = len(self.photos)
        if choice.beside_originals:
            self.summary.setText(beside_originals_summary(self.photos, choice.naming))
            self.ok_button.setText("Write sidecars")
        else:
            what = "with its sidecar" if self.kind == "sidecars" else "with the captions inside"
            self.summary.setText(
                f"A copy of each of the {count} photos, {what}, goes into a new folder you "
                "choose next. The original photos are not written."
            )
            self.ok_button.setText("Choose folder…")
        self.keep_location_box.setEnabled(not choice.beside_originals)
