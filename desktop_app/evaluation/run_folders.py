"""A run folder of model outputs: reading it, filling it with the local model, scoring it.

A run folder holds one raw model output per story, ``{story_id}.txt``, the layout the
StoryReasoning authors' script reads. ``generate`` also writes ``{story_id}.json`` beside each
output: how it was made, and the size of every frame as the model saw it (``prepared_size``),
which is the size its boxes are written against. Outputs made elsewhere have no such record;
their boxes are then taken to be in the reference frames' pixels, as the authors' script does.
The ``.txt`` is written last, atomically: a story counts as done only once it is there.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desktop_app.engine.api import RunResult
from desktop_app.errors import StorytellerError
from desktop_app.evaluation.metrics import EvalReport, StoryPair, evaluate
from desktop_app.evaluation.references import EvalError, ReferenceSet, ReferenceStory
from desktop_app.fileio import atomic_write_text
from desktop_app.story.parser import parse_story

logger = logging.getLogger(__name__)

RECORD_VERSION = 1


@dataclass(frozen=True)
class ModelOutput:
    """One story's output in a run folder, and the frame sizes its record gives (if any)."""

    story_id: str
    text: str
    prepared_sizes: tuple[tuple[int, int], ...] | None = None
    model: str | None = None  # the model its record names


@dataclass(frozen=True)
class RunFolder:
    """The outputs of a run folder, and problems met while reading it (kept going past them)."""

    path: Path
    outputs: dict[str, ModelOutput]
    warnings: tuple[str, ...] = ()

    def models(self) -> dict[str, int]:
        """How many outputs each model told, by the records (outputs without one not counted)."""
        counts: dict[str, int] = {}
        for output in self.outputs.values():
            if output.model:
                counts[output.model] = counts.get(output.model, 0) + 1
        return counts


def output_path(run_dir: Path, story_id: str) -> Path:
    return Path(run_dir) / f"{story_id}.txt"


def record_path(run_dir: Path, story_id: str) -> Path:
    return Path(run_dir) / f"{story_id}.json"


def _read_record(
    record: Path,
) -> tuple[tuple[tuple[int, int], ...] | None, str | None, str | None]:
    """The record's prepared sizes and model, and a warning when it cannot be used."""
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
        sizes = tuple((int(w), int(h)) for w, h in (p["prepared_size"] for p in data["photos"]))
        model = data.get("model")
    except FileNotFoundError:
        return None, None, None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        return (
            None,
            None,
            (
                f"{record.name} is not a readable run record ({type(err).__name__}): its story's "
                "boxes are compared in the reference frames' pixels"
            ),
        )
    model = model if isinstance(model, str) else None
    if any(w <= 0 or h <= 0 for w, h in sizes):
        return None, model, f"{record.name} records an empty frame size: it is ignored"
    return sizes, model, None


def read_run(run_dir: Path) -> RunFolder:
    """Every ``{story_id}.txt`` of ``run_dir`` (bytes that are not UTF-8 read as U+FFFD)."""
    run_dir = Path(run_dir).expanduser()
    if not run_dir.is_dir():
        what = "is not a folder" if run_dir.exists() else "does not exist"
        raise EvalError(
            f"{run_dir} {what}: give the folder of model outputs ({{story_id}}.txt), or add "
            "--generate to make them with the local model"
        )
    outputs: dict[str, ModelOutput] = {}
    warnings: list[str] = []
    for text_path in sorted(run_dir.glob("*.txt")):
        try:
            text = text_path.read_bytes().decode("utf-8", errors="replace")
        except OSError as err:
            warnings.append(f"{text_path.name} cannot be read ({err.strerror or err}): skipped")
            continue
        sizes, model, warning = _read_record(record_path(run_dir, text_path.stem))
        if warning:
            warnings.append(warning)
        outputs[text_path.stem] = ModelOutput(text_path.stem, text, sizes, model)
    run = RunFolder(run_dir, outputs, tuple(warnings))
    models = run.models()
    if len(models) > 1:
        # A resumed --generate with another --model: the scores would mix two models.
        told = ", ".join(f"{name} ({count})" for name, count in sorted(models.items()))
        warnings.append(
            f"{run_dir} holds outputs of {len(models)} models: {told}; keep one folder per "
            "model to compare them"
        )
        run = RunFolder(run_dir, outputs, tuple(warnings))
    return run


@dataclass(frozen=True)
class Evaluation:
    """A scored run: the report, and which reference stories had no output (and vice versa)."""

    report: EvalReport
    reference_count: int
    missing: tuple[str, ...]
    unknown: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    models: dict[str, int] = field(default_factory=dict)  # outputs per model, by the records


def require_eval_extra() -> None:
    """Raise a clear error when the ``eval`` extra's text-metric libraries are missing."""
    import importlib.util

    absent = [m for m in ("nltk", "rouge_score") if importlib.util.find_spec(m) is None]
    if absent:
        raise EvalError(
            f"scoring needs {', '.join(absent)}: install the eval extra "
            "(pip install 'storyteller[eval]'; the double-click app does not include it)"
        )


def score_run(run: RunFolder, references: ReferenceSet) -> Evaluation:
    """Score every output that has a reference; list references without output and the reverse."""
    require_eval_extra()
    pairs: list[StoryPair] = []
    missing: list[str] = []
    seen: set[str] = set()
    count = 0
    for reference in references.stories():
        count += 1
        seen.add(reference.story_id)
        output = run.outputs.get(reference.story_id)
        if output is None:
            missing.append(reference.story_id)
            continue
        pairs.append(
            StoryPair(
                story_id=reference.story_id,
                candidate=parse_story(output.text),
                reference=parse_story(reference.text),
                candidate_sizes=output.prepared_sizes,
                reference_sizes=reference.frame_sizes,
                frame_count=reference.frame_count,
            )
        )
    # With a limit the outputs of later stories are expected, not strays.
    unknown = () if references.limit else tuple(sorted(set(run.outputs) - seen))
    if not pairs:
        raise EvalError(
            f"no output in {run.path} matches a story of {references.path} "
            f"({len(run.outputs)} outputs, {count} reference stories): check that the outputs "
            "are named {story_id}.txt after the reference set's story ids"
        )
    return Evaluation(
        evaluate(pairs), count, tuple(missing), unknown, run.warnings, models=run.models()
    )


# ---- generating the outputs with the local model -------------------------------------------

Tell = Callable[[tuple[Path, ...]], RunResult]


@dataclass
class GenerationProgress:
    """Counts while a run folder is filled; ``stopped`` once Ctrl-C ended it early.

    ``failed`` holds (story id, message) for stories the model could not tell; they get no
    output, so the next run tries them again.
    """

    total: int
    done_before: int = 0
    written: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    stopped: bool = False

    @property
    def remaining(self) -> int:
        return self.total - self.done_before - len(self.written)


def _record(story: ReferenceStory, result: RunResult) -> dict[str, Any]:
    return {
        "version": RECORD_VERSION,
        "story_id": story.story_id,
        "photos": [
            {
                "frame": index,
                "original_size": list(photo.original_size),
                "prepared_size": list(photo.prepared_size),
                "tokens": photo.tokens,
            }
            for index, photo in enumerate(result.photos, start=1)
        ],
        "finish_reason": result.finish_reason.value,
        "sampling": result.sampling.to_dict(),
        "backend": result.backend,
        "model": result.model,
        "timings": result.timings.to_dict(),
    }


def _safe_name(story_id: str) -> str:
    return re.sub(r"[^\w.-]", "_", story_id)


def _frame_files(story: ReferenceStory, folder: Path) -> tuple[Path, ...]:
    """The story's frames as files the engine can open (written out when they are bytes)."""
    paths = []
    for index, frame in enumerate(story.frames, start=1):
        if frame.path is not None:
            paths.append(frame.path)
            continue
        assert frame.data is not None  # read with_images=True
        # Named for messages ("story s2, frame 1.img is damaged"); Pillow reads the format itself.
        path = folder / f"story {_safe_name(story.story_id)}, frame {index}.img"
        path.write_bytes(frame.data)
        paths.append(path)
    return tuple(paths)


class _OnThisThread:
    """One story at a time, told on the calling thread (where Ctrl-C's handler runs): an
    executor whose ``submit`` runs the call at once."""

    def __enter__(self) -> _OnThisThread:
        return self

    def __exit__(self, *_exc: object) -> None:
        pass

    def submit(self, call: Tell, paths: tuple[Path, ...]) -> Future[RunResult]:
        future: Future[RunResult] = Future()
        try:
            future.set_result(call(paths))
        except Exception as err:
            future.set_exception(err)
        return future


def _pool(parallel: int) -> Any:
    from concurrent.futures import ThreadPoolExecutor

    if parallel <= 1:
        return _OnThisThread()
    return ThreadPoolExecutor(parallel, thread_name_prefix="storyteller-eval")


def generate(
    references: ReferenceSet,
    run_dir: Path,
    tell: Tell,
    *,
    on_story: Callable[[GenerationProgress, str], None] | None = None,
    before_first: Callable[[], None] | None = None,
    parallel: int = 1,
) -> GenerationProgress:
    """Write the model's output for every reference story that has none in ``run_dir`` yet.

    ``tell`` runs the model on the story's frames (in order) and returns its result; up to
    ``parallel`` stories are told at once (``tell`` is then called from that many threads; a
    server serves them side by side). A cancelled result (Ctrl-C, which stops every story in
    flight) ends the loop and no cancelled output is kept, so those stories are told again next
    time. A ``StorytellerError`` from ``tell`` fails that story only (it is listed in ``failed``)
    and the loop goes on: one bad story must not block hundreds. Outputs are written here, on
    the calling thread, one story at a time (record, then the ``.txt`` last, each atomically).
    ``before_first`` runs once before the first story is told (loading the model: its errors
    end the run). ``on_story`` is called after each story with its id. Outputs already there
    are kept as they are: running again continues where the last run stopped.
    """
    from concurrent.futures import FIRST_COMPLETED, wait

    run_dir = Path(run_dir).expanduser()
    if run_dir.exists() and not run_dir.is_dir():
        raise EvalError(f"{run_dir} is a file: give a folder for the model outputs")
    run_dir.mkdir(parents=True, exist_ok=True)
    progress = GenerationProgress(total=len(references))
    in_flight: dict[Future[RunResult], tuple[ReferenceStory, tuple[Path, ...]]] = {}

    def finish(future: Future[RunResult]) -> None:
        story, paths = in_flight.pop(future)
        for path in paths:
            if path.parent == Path(scratch):
                path.unlink(missing_ok=True)
        try:
            result = future.result()
        except StorytellerError as err:
            logger.warning("story %s failed: %s", story.story_id, err)
            progress.failed.append((story.story_id, str(err)))
        else:
            if result.cancelled:
                progress.stopped = True
                return
            record = json.dumps(_record(story, result), indent=2, ensure_ascii=False) + "\n"
            atomic_write_text(record_path(run_dir, story.story_id), record)
            atomic_write_text(output_path(run_dir, story.story_id), result.raw_output)
            progress.written.append(story.story_id)
        if on_story is not None:
            on_story(progress, story.story_id)

    def finish_some(at_most: int) -> None:
        """Wait until no more than ``at_most`` stories are in flight, keeping each as it ends."""
        while len(in_flight) > at_most:
            # A short wait: Ctrl-C's handler runs on this thread between waits (a signal may
            # reach a worker thread, and a blocked wait would never run it).
            done, _ = wait(in_flight, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in done:
                finish(future)

    with (
        tempfile.TemporaryDirectory(prefix="storyteller-eval-") as scratch,
        _pool(parallel) as pool,
    ):
        try:
            for story in references.stories(with_images=True):
                if output_path(run_dir, story.story_id).exists():
                    progress.done_before += 1
                    if on_story is not None:
                        on_story(progress, story.story_id)
                    continue
                if not story.frames:
                    raise EvalError(
                        f"story {story.story_id} of {references.path} has no frames: generating "
                        "needs a reference set with images (the split's parquet files, or a "
                        "{story_id}/ folder of frames beside each reference text)"
                    )
                if before_first is not None:
                    before_first()
                    before_first = None
                finish_some(max(1, parallel) - 1)
                if progress.stopped:
                    break
                paths = _frame_files(story, Path(scratch))
                in_flight[pool.submit(tell, paths)] = (story, paths)
            finish_some(0)
        finally:
            # An error (or a second Ctrl-C) on this thread: the stories in flight end with the
            # stop their tell() sees; none of them is written.
            for future in in_flight:
                future.cancel()
    return progress
