"""Download a checkpoint from the Hugging Face Hub and convert it: the first-run guide's third way.

Qt-free: the guide runs these in a worker. ``convert.hub`` does the talking to the Hub (the
shared Hugging Face cache, resume with ``Range``, sha256 checks); this module adds what the app
must remember between starts (``paths.model_download_file()``):

- a download that was cancelled or cut is *paused*: the next start offers Resume or Discard, and
  never resumes on its own;
- whether this app downloaded the checkpoint (nothing of it was in the cache before): only then
  does the guide offer to delete it afterwards, through the cache's own API
  (``scan_cache_dir().delete_revisions``), never a checkpoint another tool or the user put there.

The app contacts the Hub only from here, and only when the user asks for a download.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from desktop_app import paths
from desktop_app.errors import StorytellerError
from desktop_app.fileio import atomic_write_text

logger = logging.getLogger(__name__)

Report = Callable[[int, str], None]  # (percent, or -1 when unknown; a line for the user)
ShouldStop = Callable[[], bool]


class DownloadStopped(BaseException):
    """The user cancelled the download; what was downloaded is kept for Resume.

    A BaseException so that the Hub client's retries (which catch every Exception) let it
    through, as they let Ctrl-C through.
    """


class State(str, Enum):
    PAUSED = "paused"  # cancelled or cut before the conversion finished
    CONVERTED = "converted"  # the model files are made; the checkpoint may be deleted


@dataclass(frozen=True)
class DownloadRecord:
    """One download the guide started, as remembered between starts."""

    repo: str
    commit: str
    quant: str
    outdir: Path
    weight_bytes: int  # the whole checkpoint's weights
    blobs: tuple[str, ...]  # their names under blobs/ in the cache (what is fetched so far)
    ours: bool  # nothing of it was in the cache before this app fetched it
    state: State

    def fetched_bytes(self) -> int:
        """Weight bytes in the cache now, complete files and partial ones."""
        from convert.hub import hub_cache_dir, repo_folder

        blobs = repo_folder(hub_cache_dir(), self.repo) / "blobs"
        total = 0
        for name in self.blobs:
            for candidate in (blobs / name, blobs / f"{name}.incomplete"):
                with contextlib.suppress(OSError):
                    total += candidate.stat().st_size
                    break
        return total


def load_record() -> DownloadRecord | None:
    """The download the guide remembers, or None (a damaged file counts as none)."""
    path = paths.model_download_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return DownloadRecord(
            repo=data["repo"],
            commit=data["commit"],
            quant=data["quant"],
            outdir=Path(data["outdir"]),
            weight_bytes=int(data["weight_bytes"]),
            blobs=tuple(data["blobs"]),
            ours=bool(data["ours"]),
            state=State(data["state"]),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        logger.warning("ignoring an unreadable %s", path, exc_info=True)
        return None


def save_record(record: DownloadRecord) -> None:
    data: dict[str, Any] = asdict(record)
    data["outdir"], data["blobs"], data["state"] = (
        str(record.outdir),
        list(record.blobs),
        (record.state.value),
    )
    atomic_write_text(paths.model_download_file(), json.dumps(data, indent=2) + "\n")


def paused_download() -> DownloadRecord | None:
    """The download the user paused (or that was cut), waiting for Resume or Discard."""
    record = load_record()
    return record if record is not None and record.state is State.PAUSED else None


def forget_record() -> None:
    with contextlib.suppress(FileNotFoundError):
        paths.model_download_file().unlink()


def size_text(n_bytes: int) -> str:
    """1.23 GB, 45.6 MB, 12 kB: as the guide says sizes."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.{1 if unit != 'GB' else 2}f} {unit}"
    return f"{n_bytes} B"


def paused_text(record: DownloadRecord) -> str:
    """ "Download paused: 1.20 of 16.60 GB" (in one unit, the total's)."""
    done, total = record.fetched_bytes(), record.weight_bytes
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if total >= scale:
            return f"Download paused: {done / scale:.2f} of {total / scale:.2f} {unit}"
    return f"Download paused: {done} of {total} bytes"


def default_outdir(repo: str) -> Path:
    """Where the guide writes the model files converted from ``repo``."""
    return paths.user_models_dir() / repo.split("/")[-1].lower()


@dataclass(frozen=True)
class DownloadSummary:
    """What a download will take, shown before it starts (``convert.hub.plan_download``)."""

    repo: str
    commit: str
    quant: str
    outdir: Path
    weight_bytes: int
    missing_bytes: int  # left to download (0: all in the cache already)
    output_bytes: int
    needs: tuple[Any, ...]  # convert.hub.DiskNeed per disk
    blobs: tuple[str, ...]
    in_cache_before: bool  # some of its weights were in the cache before this app fetched any

    @property
    def enough_disk(self) -> bool:
        return all(need.enough for need in self.needs)

    def lines(self) -> list[str]:
        """The summary for the user: download size, then each disk's need and free space."""
        if self.missing_bytes == 0:
            first = (
                f"Already in the Hugging Face cache ({size_text(self.weight_bytes)}): "
                "nothing to download."
            )
        elif self.missing_bytes < self.weight_bytes:
            first = (
                f"Download: {size_text(self.missing_bytes)} left of {size_text(self.weight_bytes)}."
            )
        else:
            first = f"Download: {size_text(self.weight_bytes)}."
        lines = [first, f"Converted model: about {size_text(self.output_bytes)}."]
        for need in self.needs:
            mark = "" if need.enough else " ✖ not enough: free some space first"
            lines.append(
                f"Disk of {need.where}: needs {size_text(need.needed)}, "
                f"{size_text(need.free)} free{mark}"
            )
        return lines


def plan_model_download(repo: str, quant: str, revision: str | None = None) -> DownloadSummary:
    """Ask the Hub what downloading ``repo`` (at ``revision``, else its default branch) and
    converting it to ``quant`` takes. Fetches config.json and the small files only; raises the
    converter's refusals and ``DownloadError`` (access, network)."""
    from convert.hub import RepoSpec, plan_download
    from convert.pipeline import estimate_from_weights

    plan = plan_download(RepoSpec(repo, revision))
    outdir = default_outdir(repo)
    output_bytes = estimate_from_weights(plan.weight_bytes, quant)
    return DownloadSummary(
        repo=repo,
        commit=plan.commit,
        quant=quant,
        outdir=outdir,
        weight_bytes=plan.weight_bytes,
        missing_bytes=plan.missing_bytes,
        output_bytes=output_bytes,
        needs=tuple(plan.disk_needs(outdir, output_bytes)),
        blobs=tuple(f.blob_name for f in plan.weights),
        in_cache_before=plan.missing_bytes + plan.partial_bytes < plan.weight_bytes,
    )


def download_and_convert(
    summary: DownloadSummary,
    *,
    should_stop: ShouldStop,
    report: Report,
    convert: Callable[[Path, Path], Any],
) -> Any:
    """Fetch the checkpoint ``summary`` describes into the Hugging Face cache, then run
    ``convert(checkpoint_folder, outdir)`` (the guide's conversion job) and return its result.

    Remembers the download as paused until the conversion has finished, so a cancel
    (``DownloadStopped``), a network cut or a crash is offered for Resume on the next start.
    """
    from convert.hub import RepoSpec, fetch_checkpoint
    from convert.pipeline import refuse_existing_outputs

    # Files of this model and quality already there: said before 16 GB are fetched for nothing.
    refuse_existing_outputs(summary.outdir, summary.repo.split("/")[-1], summary.quant, "f16")
    earlier = load_record()
    same = earlier is not None and (earlier.repo, earlier.commit) == (summary.repo, summary.commit)
    ours = earlier.ours if same and earlier is not None else not summary.in_cache_before
    record = DownloadRecord(
        repo=summary.repo,
        commit=summary.commit,
        quant=summary.quant,
        outdir=summary.outdir,
        weight_bytes=summary.weight_bytes,
        blobs=summary.blobs,
        ours=ours,
        state=State.PAUSED,
    )
    save_record(record)

    def progress(done: int, total: int) -> None:
        if should_stop():
            raise DownloadStopped()
        percent = int(100 * done / total) if total else 100
        report(percent, f"Downloading: {size_text(done)} of {size_text(total)}")

    report(0, f"Downloading {summary.repo}…")
    fetched = fetch_checkpoint(
        RepoSpec(summary.repo, summary.commit),
        output_dir=summary.outdir,
        output_bytes=lambda _weights: summary.output_bytes,
        progress=progress,
    )
    if should_stop():
        raise DownloadStopped()
    result = convert(fetched.folder, summary.outdir)
    save_record(DownloadRecord(**{**asdict(record), "state": State.CONVERTED}))
    return result


def discard(record: DownloadRecord) -> int:
    """Delete what a paused download fetched and forget it; return the bytes freed.

    The checkpoint's revision goes through the cache's own API when this app downloaded it;
    partial files (which the cache's scan does not list) are removed by name either way.
    """
    freed = record.fetched_bytes()
    if record.ours:
        delete_checkpoint(record)
    from convert.hub import hub_cache_dir, repo_folder

    blobs = repo_folder(hub_cache_dir(), record.repo) / "blobs"
    for name in record.blobs:
        with contextlib.suppress(FileNotFoundError):
            (blobs / f"{name}.incomplete").unlink()
    forget_record()
    return freed


def delete_checkpoint(record: DownloadRecord) -> int:
    """Delete the downloaded checkpoint from the Hugging Face cache through its own API
    (``scan_cache_dir().delete_revisions``); only for a checkpoint this app downloaded.
    Returns the bytes freed; forgets the record."""
    if not record.ours:
        raise StorytellerError(
            f"{record.repo} was not downloaded by Storyteller: it is left in the cache"
        )
    from huggingface_hub import scan_cache_dir

    from convert.hub import hub_cache_dir, repo_folder

    freed = 0
    if (repo_folder(hub_cache_dir(), record.repo) / "snapshots" / record.commit).is_dir():
        strategy = scan_cache_dir(hub_cache_dir()).delete_revisions(record.commit)
        freed = strategy.expected_freed_size
        strategy.execute()
    storage = repo_folder(hub_cache_dir(), record.repo)
    if storage.is_dir() and not any((storage / "snapshots").glob("*")):
        shutil.rmtree(storage, ignore_errors=True)  # only partial files and refs were left
    if record.state is State.CONVERTED:
        forget_record()
    return freed
