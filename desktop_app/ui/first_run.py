"""The first-run guide: find, download or convert a model, check that it loads, save the choice.

Conversion runs ``convert.convert_checkpoint`` in a worker thread with a progress bar; *Download
and convert* runs the same job after fetching the checkpoint from the Hub
(``app.model_download``, docs/architecture.md), on one bar with Cancel. The load
check runs ``storyteller --self-test`` with the chosen files in a child process, because
llama.cpp can abort the whole process on a damaged file.
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from desktop_app import paths
from desktop_app.app.backends import projector_beside
from desktop_app.app.model_download import (
    DownloadRecord,
    DownloadStopped,
    DownloadSummary,
    State,
    delete_checkpoint,
    discard,
    download_and_convert,
    load_record,
    paused_text,
    plan_model_download,
    size_text,
)
from desktop_app.app.settings import Settings, save_settings
from desktop_app.engine.model_files import CatalogCheckpoint, load_checkpoints
from desktop_app.errors import StorytellerError
from desktop_app.ui.error_dialog import show_error
from desktop_app.ui.gui_words import gui_text
from desktop_app.ui.workers import CallableWorker, JobContext, WorkerHandle, start_worker

LOAD_CHECK_TIMEOUT_S = 600
# (quant, what the guide says about it), the default first
QUALITIES = (
    ("Q4_K_M", "Q4_K_M: smallest, recommended (about 4.7 GB)"),
    ("Q5_K_M", "Q5_K_M: a little closer to the original (about 5.4 GB)"),
    ("Q6_K", "Q6_K: near-lossless (about 6.2 GB)"),
    ("Q8_0", "Q8_0: closer to the original (about 8 GB)"),
    ("F16", "F16: unquantized (about 15 GB)"),
)
_SPEEDS = re.compile(r"load (\d+(?:\.\d+)?) s, first token [\d.]+ s, (\d+(?:\.\d+)?) tokens/s")


def check_numbers(report: str) -> str:
    """What a passing check measured, for the user: "loaded in 3.1 s, writes 14 tokens/s"
    ("" when the self-test's report does not say)."""
    found = _SPEEDS.search(report)
    if found is None:
        return ""
    load_s, speed = float(found.group(1)), float(found.group(2))
    return f"loaded in {load_s:.1f} s, writes {speed:.0f} tokens/s"


def start_folder(*, prefer_models: bool) -> str:
    """Where a file dialog of the guide opens: the models folder when it holds a model (for
    model files), else ~/Downloads, else the home folder; never the process's working folder."""
    models = paths.user_models_dir()
    if prefer_models and models.is_dir() and any(models.rglob("*.gguf")):
        return str(models)
    downloads = Path.home() / "Downloads"
    return str(downloads if downloads.is_dir() else Path.home())


def self_test_command(model: Path, mmproj: Path) -> list[str]:
    """The command that tells a one-photo story with ``model`` in a child process."""
    program = (
        [sys.executable] if getattr(sys, "frozen", False) else [sys.executable, "-m", "desktop_app"]
    )
    return [*program, "--self-test", "--model", str(model), "--mmproj", str(mmproj)]


def checkpoint_why(checkpoint: CatalogCheckpoint) -> str:
    """The one line the guide shows under a chosen checkpoint: why it is recommended, or what
    it is."""
    if checkpoint.default and checkpoint.why:
        return f"Recommended: {checkpoint.why}."
    return checkpoint.note[:1].upper() + checkpoint.note[1:] + "." if checkpoint.note else ""


def checkpoints_html(checkpoints: list[CatalogCheckpoint]) -> str:
    """The checkpoints the catalog knows, as the guide names them for converting a folder: the
    recommended one first, marked (any of them converts)."""
    if not checkpoints:
        return ""
    names = ", ".join(
        f"<b>{html.escape(c.repo)}</b>{' (recommended)' if c.default else ''}" for c in checkpoints
    )
    return f"A folder of one of these, downloaded from Hugging Face: {names}."


def warning_label() -> QLabel:
    """A line for a warning that stays while its job runs (hidden until there is one)."""
    label = QLabel("")
    label.setWordWrap(True)
    label.setVisible(False)
    return label


class SpaceWarning(str):
    """What the converter says before writing when its disk may fill (it goes on)."""


class Cancelled(Exception):
    """The user closed the guide while a job ran; the job stopped and left nothing behind."""


def quality_combo() -> QComboBox:
    """The quality choice (quantization), the recommended one first."""
    combo = QComboBox()
    for quant, label in QUALITIES:
        combo.addItem(label, quant)
    return combo


def convert_in_job(
    ctx: JobContext, source: Path, lora: Path | None, quant: str, outdir: Path
) -> Any:
    """Convert ``source`` (a checkpoint folder) in a background job, reporting progress and
    stopping (with nothing left behind) when the job is cancelled."""
    from convert import convert_checkpoint

    def progress(event: Any) -> None:
        if ctx.should_stop():
            # The converter cleans up after any exception from its progress callback.
            raise Cancelled()
        percent = int(100 * event.done / event.total) if event.total else -1
        ctx.report(percent, f"Converting ({event.stage.value}): {max(percent, 0)}%")

    return convert_checkpoint(
        source,
        outdir,
        lora=lora,
        quant=quant,
        progress=progress,
        force=False,
        # Said in the guide, under the job's progress (a status line is overwritten).
        warn=lambda text: ctx.emit(SpaceWarning(text)),
    )


def check_model_loads(model: Path, mmproj: Path, ctx: JobContext) -> str:
    """Run the self-test on the model in a child process; return its report or raise.

    Cancelling kills the child process (it may be deep inside llama.cpp, which cannot be
    interrupted otherwise).
    """
    ctx.report(-1, "Loading the model and telling a one-photo story…")
    process = subprocess.Popen(
        self_test_command(model, mmproj),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + LOAD_CHECK_TIMEOUT_S
    while True:
        try:
            report, _ = process.communicate(timeout=0.2)
            break
        except subprocess.TimeoutExpired:
            if ctx.should_stop() or time.monotonic() > deadline:
                process.kill()
                process.communicate()
                if ctx.should_stop():
                    raise Cancelled() from None
                raise StorytellerError(
                    f"{model.name} did not answer within {LOAD_CHECK_TIMEOUT_S} s: try fewer "
                    "GPU layers or a smaller quantization"
                ) from None
    if process.returncode != 0:
        tail = "\n".join((report or "").strip().splitlines()[-6:])
        raise StorytellerError(
            f"{model.name} did not load or could not tell a story (exit {process.returncode}):\n"
            f"{tail}\nConvert the model again or choose other files"
        )
    return report or ""


class FirstRunGuide(QDialog):
    """Three steps: get model files (locate or convert), check they load, save."""

    saved = Signal(object)  # the new Settings

    def __init__(self, settings: Settings | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("firstRunGuide")
        self.setWindowTitle("Welcome to Storyteller")
        self.setMinimumWidth(680)
        self._settings = settings if settings is not None else Settings()
        self._worker: WorkerHandle | None = None
        self.model_path: Path | None = self._settings.model_path
        self.mmproj_path: Path | None = self._settings.mmproj_path
        self.checked = False
        self._job = ""  # "plan", "download", "convert" or "check" while one runs
        self._summary: DownloadSummary | None = None  # the download planned, shown

        intro = QLabel(
            "<h2>Welcome to Storyteller</h2>"
            "<p>Storyteller writes a story about your photos with <b>QwenStoryteller2</b> "
            "(recommended) or QwenStoryteller, "
            "running on this computer: nothing is uploaded. It needs the model as two files: "
            "the language model (<i>.gguf</i>) and its vision part (<i>mmproj .gguf</i>).</p>"
        )
        intro.setObjectName("guideIntro")
        intro.setWordWrap(True)

        # ---- step 1a: locate
        locate_box = QGroupBox("1. I already have the model files", self)
        self.locate_button = QPushButton("Locate model files…")
        self.locate_button.clicked.connect(self._locate)
        self.found_label = QLabel(self._found_text())
        self.found_label.setWordWrap(True)
        locate_layout = QVBoxLayout(locate_box)
        locate_layout.addWidget(self.found_label)
        locate_layout.addWidget(self.locate_button)

        download_box = self._build_download_box()
        convert_box = self._build_convert_box()

        # ---- step 2: check
        check_box = QGroupBox("2. Check that it works", self)
        self.check_button = QPushButton("Load the model and tell a test story")
        self.check_button.clicked.connect(self._check)
        self.check_status = QLabel(self._check_text())
        self.check_status.setWordWrap(True)
        check_layout = QVBoxLayout(check_box)
        check_layout.addWidget(self.check_button)
        check_layout.addWidget(self.check_status)

        # ---- step 3: done
        buttons = QHBoxLayout()
        self.later_button = QPushButton("Later")
        self.later_button.setAutoDefault(False)  # Enter never dismisses the guide unsaved
        self.later_button.clicked.connect(self.reject)
        self.settings_hint = QLabel("A server can be set up in Settings instead.")
        self.done_button = QPushButton("3. Use this model")
        self.done_button.setAutoDefault(True)
        self.done_button.setDefault(True)
        self.done_button.clicked.connect(self.finish)
        buttons.addWidget(self.settings_hint, 1)
        buttons.addWidget(self.later_button)
        buttons.addWidget(self.done_button)

        # The steps scroll when the screen is shorter than they are (three ways to get a model
        # make a tall dialog); the buttons stay in view.
        steps = QWidget()
        steps_layout = QVBoxLayout(steps)
        steps_layout.setContentsMargins(0, 0, 0, 0)
        for widget in (intro, locate_box, download_box, convert_box, check_box):
            steps_layout.addWidget(widget)
        steps_layout.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(steps)
        layout = QVBoxLayout(self)
        layout.addWidget(scroll, 1)
        layout.addLayout(buttons)
        self._refresh_download_rows()
        self._update_buttons()
        screen = self.screen().availableGeometry().height() if self.screen() else 800
        self.resize(self.minimumWidth(), min(steps.sizeHint().height() + 60, int(screen * 0.9)))

    def _build_download_box(self) -> QGroupBox:
        """Step 1b: download a checkpoint from the Hub and convert it, in the background."""
        box = QGroupBox("… or download and convert (needs the network, only for this)", self)
        self.download_combo = QComboBox()
        self.download_combo.setObjectName("downloadCheckpoint")
        self.why_label = QLabel("")  # one line: why the chosen checkpoint (is recommended)
        self.why_label.setWordWrap(True)
        for checkpoint in load_checkpoints():  # the recommended one first
            self.download_combo.addItem(
                checkpoint.name + (" (recommended)" if checkpoint.default else ""), checkpoint.repo
            )
            index = self.download_combo.count() - 1
            self.download_combo.setItemData(
                index, checkpoint_why(checkpoint), Qt.ItemDataRole.ToolTipRole
            )
        self.download_combo.currentIndexChanged.connect(self._show_why)
        self._show_why()
        self.download_quant_combo = quality_combo()
        self.plan_button = QPushButton("Check size and disk space")
        self.plan_button.clicked.connect(self.start_plan)
        self.plan_label = QLabel("")
        self.plan_label.setWordWrap(True)
        self.download_button = QPushButton("Download and convert")
        self.download_button.clicked.connect(self._download)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_job)
        self.download_progress = QProgressBar()
        self.download_progress.setVisible(False)
        self.download_status = QLabel("")
        self.download_status.setWordWrap(True)
        # a paused download: "Download paused: X of Y GB — Resume · Discard (frees X GB)"
        self.paused_label = QLabel("")
        self.paused_label.setWordWrap(True)
        self.resume_button = QPushButton("Resume")
        self.resume_button.clicked.connect(self.resume_download)
        self.discard_button = QPushButton("Discard")
        self.discard_button.clicked.connect(self.discard_download)
        self.paused_row = QWidget(box)
        paused_layout = QHBoxLayout(self.paused_row)
        paused_layout.setContentsMargins(0, 0, 0, 0)
        paused_layout.addWidget(self.paused_label, 1)
        paused_layout.addWidget(self.resume_button)
        paused_layout.addWidget(self.discard_button)
        # afterwards: the checkpoint this app downloaded may go
        self.delete_checkpoint_button = QPushButton("Delete the downloaded checkpoint")
        self.delete_checkpoint_button.clicked.connect(self.delete_downloaded_checkpoint)
        for combo in (self.download_combo, self.download_quant_combo):
            combo.currentIndexChanged.connect(self._forget_plan)
        buttons = QHBoxLayout()
        buttons.addWidget(self.plan_button)
        buttons.addWidget(self.download_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        form = QFormLayout(box)
        form.addRow("Model:", self.download_combo)
        form.addRow("", self.why_label)
        form.addRow("Quality:", self.download_quant_combo)
        form.addRow(buttons)
        form.addRow(self.plan_label)
        form.addRow(self.download_progress)
        form.addRow(self.download_status)
        self.download_warning = warning_label()
        form.addRow(self.download_warning)
        form.addRow(self.paused_row)
        form.addRow(self.delete_checkpoint_button)
        return box

    def _build_convert_box(self) -> QGroupBox:
        """Step 1b: convert a downloaded checkpoint (and LoRA) to model files."""
        convert_box = QGroupBox("… or convert a downloaded checkpoint", self)
        self.source_edit = QLineEdit()
        self.source_edit.setPlaceholderText("folder of the Hugging Face checkpoint (Qwen2.5-VL-7B)")
        self.lora_edit = QLineEdit()
        self.lora_edit.setPlaceholderText("optional: folder of the QwenStoryteller LoRA adapter")
        self.quant_combo = quality_combo()
        self.convert_button = QPushButton("Convert")
        self.convert_button.clicked.connect(self._convert)
        self.convert_progress = QProgressBar()
        self.convert_progress.setVisible(False)
        self.convert_status = QLabel("")
        self.convert_status.setWordWrap(True)
        convert_form = QFormLayout(convert_box)
        self.checkpoints_label = QLabel(checkpoints_html(load_checkpoints()))
        self.checkpoints_label.setObjectName("knownCheckpoints")
        self.checkpoints_label.setWordWrap(True)
        convert_form.addRow(self.checkpoints_label)
        convert_form.addRow("Checkpoint:", self._browse_row(self.source_edit, "Checkpoint folder"))
        convert_form.addRow("LoRA adapter:", self._browse_row(self.lora_edit, "LoRA folder"))
        convert_form.addRow("Quality:", self.quant_combo)
        convert_form.addRow(self.convert_button)
        convert_form.addRow(self.convert_progress)
        convert_form.addRow(self.convert_status)
        self.convert_warning = warning_label()
        convert_form.addRow(self.convert_warning)
        return convert_box

    def _check_text(self) -> str:
        """The check step's line before any check: the model in use is not "not checked"."""
        if self.model_path is None or self.mmproj_path is None:
            return "Not checked yet."
        if not self._settings.server_url and self._in_use(self.model_path, self.mmproj_path):
            return "In use: Storyteller tells stories with this model. Check it again to see its speed."
        return "Not checked yet."

    def _in_use(self, model: Path, mmproj: Path) -> bool:
        settings = self._settings
        if settings.model_path is not None:
            return (settings.model_path, settings.mmproj_path) == (model, mmproj)
        return self._default_pair == (model, mmproj)  # no model set: the installed one runs

    def _browse_row(self, edit: QLineEdit, title: str) -> QWidget:
        row = QWidget(self)
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(edit, 1)
        button = QPushButton("Browse…")
        button.clicked.connect(lambda: self._pick_folder(edit, title))
        layout.addWidget(button)
        return row

    def _pick_folder(self, edit: QLineEdit, title: str) -> None:
        folder = QFileDialog.getExistingDirectory(self, title, start_folder(prefer_models=False))
        if folder:
            edit.setText(folder)

    def _found_text(self) -> str:
        self._default_pair: tuple[Path, Path] | None = None
        if self.model_path and self.mmproj_path:
            return f"Model: {self.model_path}\nVision: {self.mmproj_path}"
        try:
            from desktop_app.engine.model_files import default_model

            found = default_model()
        except Exception:
            found = None
        if found is not None:
            self.model_path, self.mmproj_path = found.text_path, found.mmproj_path
            if found.mmproj_path is not None:
                self._default_pair = (found.text_path, found.mmproj_path)
            return f"Found an installed model: {found.describe()}"
        return (
            "No model found yet in "
            f"{paths.user_models_dir()}. Choose the .gguf file; its mmproj file is found "
            "beside it."
        )

    def set_model_files(self, model: Path, mmproj: Path) -> None:
        """Use ``model`` and ``mmproj`` (not yet checked)."""
        self.model_path, self.mmproj_path = model, mmproj
        self.checked = False
        self.found_label.setText(f"Model: {model}\nVision: {mmproj}")
        self.check_status.setText(self._check_text())
        self._update_buttons()

    def _locate(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Model file", start_folder(prefer_models=True), "GGUF (*.gguf)"
        )
        if not path:
            return
        model = Path(path)
        mmproj = projector_beside(model)
        if mmproj is None or "mmproj" in model.name.lower():
            other, _ = QFileDialog.getOpenFileName(
                self, "Vision file (mmproj)", str(model.parent), "GGUF (*.gguf)"
            )
            if not other:
                return
            mmproj = Path(other)
            if "mmproj" in model.name.lower():
                model, mmproj = mmproj, model
        self.set_model_files(model, mmproj)

    # ------------------------------------------------------------------ conversion

    def start_conversion(
        self, source: Path, lora: Path | None, quant: str, outdir: Path
    ) -> WorkerHandle:
        """Run the converter in the background; the result fills in the model files."""

        def job(ctx: JobContext) -> Any:
            return convert_in_job(ctx, source, lora, quant, outdir)

        self._worker = start_worker(CallableWorker(job), self)
        self._job = "convert"
        self._worker.progress.connect(self._on_convert_progress)
        self._worker.item.connect(self._on_job_item)
        self._worker.finished.connect(self._on_converted)
        self._worker.failed.connect(self._on_failed)
        self.convert_warning.setVisible(False)
        self.convert_progress.setVisible(True)
        self.convert_progress.setRange(0, 100)
        self.convert_status.setText("Converting… this takes a while for a 7B model.")
        self._worker.ended.connect(self._forget_worker)
        self._update_buttons()
        return self._worker

    def _convert(self) -> None:
        source = self.source_edit.text().strip()
        if not source:
            self.convert_status.setText("Choose the checkpoint folder first.")
            return
        lora = self.lora_edit.text().strip()
        name = Path(lora or source).name
        outdir = paths.user_models_dir() / name
        self.start_conversion(
            Path(source), Path(lora) if lora else None, self.quant_combo.currentData(), outdir
        )

    def _job_widgets(self) -> tuple[QProgressBar, QLabel]:
        """The progress bar and status line of the job running now."""
        if self._job in ("download", "plan"):
            return self.download_progress, self.download_status
        if self._job == "convert":
            return self.convert_progress, self.convert_status
        return self.convert_progress, self.check_status

    def _on_job_item(self, item: object) -> None:
        if isinstance(item, SpaceWarning):
            label = self.download_warning if self._job == "download" else self.convert_warning
            label.setText(f"⚠ {item[0].upper()}{item[1:]}.")
            label.setVisible(True)

    def _on_convert_progress(self, percent: int, message: str) -> None:
        bar, status = self._job_widgets()
        if percent < 0:
            bar.setRange(0, 0)
        else:
            bar.setRange(0, 100)
            bar.setValue(percent)
        if self._job == "download":  # one bar: downloading, then converting
            bar.setFormat(
                ("Downloading" if message.startswith("Download") else "Converting") + " %p%"
            )
        status.setText(message)

    def _on_converted(self, result: Any) -> None:
        bar, status = self._job_widgets()
        bar.setRange(0, 100)
        bar.setValue(100)
        status.setText(f"Converted: {result.text_gguf.name} + {result.mmproj_gguf.name}")
        if self._job == "download":
            self._refresh_download_rows()
        self.set_model_files(result.text_gguf, result.mmproj_gguf)

    # ------------------------------------------------------------------ download

    def _show_why(self) -> None:
        index = self.download_combo.currentIndex()
        why = self.download_combo.itemData(index, Qt.ItemDataRole.ToolTipRole) if index >= 0 else ""
        self.why_label.setText(why or "")

    def _forget_plan(self) -> None:
        self._summary = None
        self.plan_label.setText("")
        self._update_buttons()

    def start_plan(self) -> WorkerHandle:
        """Ask the Hub, in the background, what the chosen download takes (sizes, disks)."""
        repo, quant = self.download_combo.currentData(), self.download_quant_combo.currentData()
        self._summary = None

        def job(ctx: JobContext) -> DownloadSummary:
            summary = plan_model_download(repo, quant)
            if ctx.should_stop():  # Cancel while the Hub was asked: nothing to show
                raise Cancelled()
            return summary

        self._worker = start_worker(CallableWorker(job), self)
        self._job = "plan"
        self.plan_label.setText(f"Asking the Hugging Face Hub about {repo}…")
        self._worker.finished.connect(self._on_planned)
        self._worker.failed.connect(self._on_failed)
        self._worker.ended.connect(self._forget_worker)
        self._update_buttons()
        return self._worker

    def _on_planned(self, summary: DownloadSummary) -> None:
        self._summary = summary
        self.plan_label.setText("<br>".join(html.escape(line) for line in summary.lines()))
        self._update_buttons()

    def start_download(
        self, summary: DownloadSummary | None = None, record: DownloadRecord | None = None
    ) -> WorkerHandle:
        """Download (or resume ``record``'s download) and convert, in the background, with one
        progress bar: downloading, then converting. The result fills in the model files."""
        if summary is None and record is None:
            raise ValueError("start_download needs a plan or a paused download")

        def job(ctx: JobContext) -> Any:
            plan = summary
            if plan is None and record is not None:  # Resume: the same commit and quality
                plan = plan_model_download(record.repo, record.quant, record.commit)
            assert plan is not None
            return download_and_convert(
                plan,
                should_stop=ctx.should_stop,
                report=ctx.report,
                convert=lambda folder, outdir: convert_in_job(
                    ctx, folder, None, plan.quant, outdir
                ),
            )

        self._worker = start_worker(CallableWorker(job), self)
        self._job = "download"
        self._worker.progress.connect(self._on_convert_progress)
        self._worker.item.connect(self._on_job_item)
        self._worker.finished.connect(self._on_converted)
        self._worker.failed.connect(self._on_failed)
        self._worker.ended.connect(self._forget_worker)
        self.download_warning.setVisible(False)
        self.paused_row.setVisible(False)
        self.delete_checkpoint_button.setVisible(False)
        self.download_progress.setVisible(True)
        self.download_progress.setRange(0, 100)
        self.download_progress.setValue(0)
        self.download_status.setText("Downloading…")
        self._update_buttons()
        return self._worker

    def _download(self) -> None:
        if self._summary is not None:
            self.start_download(self._summary)

    def resume_download(self) -> WorkerHandle | None:
        """Go on with the paused download (asked for, never on its own)."""
        record = load_record()
        if record is None or record.state is not State.PAUSED:
            self._refresh_download_rows()
            return None
        return self.start_download(record=record)

    def discard_download(self) -> None:
        """Delete what the paused download fetched and forget it."""
        record = load_record()
        if record is None:
            self._refresh_download_rows()
            return
        try:
            freed = discard(record)
        except (StorytellerError, OSError) as err:
            show_error(self, err, action="Discarding the download")
            return
        self.download_status.setText(f"Download discarded: {size_text(freed)} freed.")
        self._refresh_download_rows()

    def delete_downloaded_checkpoint(self) -> None:
        """Delete the checkpoint this app downloaded, now that the model files are made."""
        record = load_record()
        if record is None or not record.ours:
            self._refresh_download_rows()
            return
        try:
            freed = delete_checkpoint(record)
        except (StorytellerError, OSError) as err:
            show_error(self, err, action="Deleting the downloaded checkpoint")
            return
        self.download_status.setText(
            f"The downloaded checkpoint was deleted: {size_text(freed)} freed."
        )
        self._refresh_download_rows()

    def _refresh_download_rows(self) -> None:
        """Show a paused download (Resume, Discard) or the offer to delete the checkpoint."""
        record = load_record()
        paused = record is not None and record.state is State.PAUSED
        self.paused_row.setVisible(paused)
        if record is not None and paused:
            fetched = record.fetched_bytes()
            self.paused_label.setText(f"{paused_text(record)} of {record.repo.split('/')[-1]}")
            self.discard_button.setText(f"Discard (frees {size_text(fetched)})")
        offer = record is not None and record.state is State.CONVERTED and record.ours
        self.delete_checkpoint_button.setVisible(offer)
        if record is not None and offer:
            self.delete_checkpoint_button.setText(
                f"Delete the downloaded checkpoint (frees {size_text(record.fetched_bytes())}): "
                "the model files are made"
            )

    # ------------------------------------------------------------------ load check

    def start_check(self) -> WorkerHandle | None:
        """Check in the background that the chosen files load and tell a story."""
        if self.model_path is None or self.mmproj_path is None:
            self.check_status.setText("Locate or convert the model first.")
            return None
        model, mmproj = self.model_path, self.mmproj_path
        worker = CallableWorker(lambda ctx: check_model_loads(model, mmproj, ctx))
        self._worker = start_worker(worker, self)
        self._job = "check"
        self._worker.progress.connect(lambda _p, message: self.check_status.setText(message))
        self._worker.finished.connect(self._on_checked)
        self._worker.failed.connect(self._on_failed)
        self._worker.ended.connect(self._forget_worker)
        self._update_buttons()
        return self._worker

    def _check(self) -> None:
        self.start_check()

    def _on_checked(self, report: str) -> None:
        self.checked = True
        numbers = check_numbers(report)
        self.check_status.setText(
            "✔ The model loads and tells stories on this computer"
            + (f": {numbers}." if numbers else ".")
        )
        self.check_status.setToolTip(report)
        self._update_buttons()
        # The next step is to use it: Enter does that (not Later, which had the focus).
        self.done_button.setDefault(True)
        self.done_button.setFocus()

    def _on_failed(self, err: BaseException, details: str) -> None:
        self.convert_progress.setVisible(False)
        self.download_progress.setVisible(False)
        # The failed step says so; the other step's line is left as it was.
        job = self._job
        status = self.plan_label if job == "plan" else self._job_widgets()[1]
        if job == "download":
            self._refresh_download_rows()  # cancelled or cut: paused, Resume or Discard
        if isinstance(err, (Cancelled, DownloadStopped)):
            status.setText("Cancelled." if job != "download" else "Download paused.")
            self._update_buttons()
            return
        what = {
            "convert": "Conversion failed: ",
            "download": "Download or conversion failed: ",
            "plan": "The Hub could not be asked: ",
        }
        status.setText(f"✖ {what.get(job, '')}{gui_text(str(err).splitlines()[0])}")
        show_error(self, err, details, action="Setting up the model")
        self._update_buttons()

    def _forget_worker(self) -> None:
        self._worker = None
        self._job = ""
        self._update_buttons()

    def _update_buttons(self) -> None:
        busy = self._worker is not None
        has_files = self.model_path is not None and self.mmproj_path is not None
        self.convert_button.setEnabled(not busy)
        self.locate_button.setEnabled(not busy)
        self.plan_button.setEnabled(not busy)
        self.download_button.setEnabled(
            not busy and self._summary is not None and self._summary.enough_disk
        )
        self.cancel_button.setVisible(busy and self._job in ("plan", "download"))
        self.cancel_button.setEnabled(True)
        self.resume_button.setEnabled(not busy)
        self.discard_button.setEnabled(not busy)
        self.delete_checkpoint_button.setEnabled(not busy)
        self.check_button.setEnabled(not busy and has_files)
        self.done_button.setEnabled(not busy and has_files)

    # ------------------------------------------------------------------ finish

    def finish(self) -> None:
        """Save the chosen model in the settings and close."""
        if self.model_path is None or self.mmproj_path is None:
            return
        settings = self._settings.replace(
            model_path=self.model_path, mmproj_path=self.mmproj_path, server_url=None
        )
        try:
            save_settings(settings)
        except (StorytellerError, OSError) as err:
            show_error(self, err, action="Saving the settings")
            return
        self.saved.emit(settings)
        self.accept()

    def cancel_job(self) -> None:
        """Ask the running job to stop; the window stays responsive while it does (what was
        downloaded is kept: the download pauses)."""
        if self._worker is not None:
            self._worker.cancel()
            self.cancel_button.setEnabled(False)
            self.download_status.setText("Stopping…")

    def stop_worker(self) -> None:
        """Cancel the running job (conversion or check) and wait for it."""
        if self._worker is not None:
            self._worker.stop()

    def done(self, result: int) -> None:  # closing by any route stops the background job
        self.stop_worker()
        super().done(result)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.stop_worker()
        super().closeEvent(event)
