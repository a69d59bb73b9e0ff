"""``storyteller eval RUN_DIR --reference REF``: score model outputs the way the StoryReasoning
authors do (grounding precision/recall, mAP, METEOR, ROUGE-L, BLEU).

RUN_DIR holds one raw model output per story, ``{story_id}.txt``. REF is the StoryReasoning
split as downloaded (a parquet file or a folder of them) or a folder of ``{story_id}.txt``
reference texts. ``--generate`` first tells, with the local model, every story of REF that has
no output in RUN_DIR yet (Ctrl-C stops after the story being told is dropped; running again
continues), then scores; with ``--server URL --parallel N`` it keeps N stories in flight. Exit codes: 0 scored, 1 failed (or some stories could not be told:
they are scored as missing and told again next time), 130 stopped by Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from desktop_app.cli.exit_codes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from desktop_app.cli.options import add_parallel_option, add_tell_options

if TYPE_CHECKING:  # imported when run: `storyteller --help` need not load Pillow and the metrics
    from desktop_app.evaluation.metrics import EvalReport, StoryScore
    from desktop_app.evaluation.references import ReferenceSet
    from desktop_app.evaluation.run_folders import Evaluation, GenerationProgress

# Per-story columns of --stories, and the same values' keys in the JSON.
_STORY_COLUMNS = ("char P", "char R", "obj P", "obj R", "P", "R", "AP", "METEOR", "ROUGE-L")
_STORY_KEYS = (
    "character_precision",
    "character_recall",
    "object_precision",
    "object_recall",
    "precision",
    "recall",
    "average_precision",
    "meteor",
    "rouge_l",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``storyteller eval``."""
    parser = subparsers.add_parser(
        "eval",
        help="score model outputs against reference stories (the StoryReasoning metrics)",
        description="Score the model outputs in RUN_DIR ({story_id}.txt) against the reference "
        "stories in REF with the StoryReasoning authors' metrics: grounding precision and "
        "recall (characters, objects, total), mAP, METEOR, ROUGE-L and BLEU. With --generate, "
        "first tell the stories that have no output yet with the local model.",
    )
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="folder of model outputs")
    parser.add_argument(
        "--reference",
        "-r",
        type=Path,
        required=True,
        metavar="REF",
        help="the StoryReasoning split's parquet file (or its folder), or a folder of "
        "{story_id}.txt reference texts (frames, if any, in a {story_id}/ folder beside each)",
    )
    parser.add_argument(
        "--generate",
        action="store_true",
        help="first tell every story of REF that has no output in RUN_DIR with the model "
        "(needs frames in REF; resumable: run again to continue after Ctrl-C)",
    )
    parser.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help="only the first N stories of REF (to generate and to score)",
    )
    parser.add_argument("--json", action="store_true", help="print the scores as JSON")
    parser.add_argument("--stories", action="store_true", help="also print one row per story")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    add_tell_options(parser)
    add_parallel_option(parser)
    parser.set_defaults(func=run)


def _generate(args: argparse.Namespace, references: ReferenceSet) -> GenerationProgress:
    """Fill RUN_DIR with the model's outputs for the stories that have none; the progress.

    With ``--parallel N`` on a server, N threads share one backend (one HTTP client), each
    telling one story at a time; ``generate`` writes every output on this thread.
    """
    from tqdm import tqdm

    from desktop_app.cli import options as shared
    from desktop_app.engine.api import RunResult, StoryBackend
    from desktop_app.evaluation.run_folders import generate

    backend: StoryBackend | None = None
    parallel = shared.parallel_from_args(args)
    counted = threading.Lock()
    tokens = 0
    started = time.monotonic()
    bar = tqdm(
        total=len(references),
        desc="telling",
        unit="story",
        file=sys.stderr,
        disable=args.quiet,
        dynamic_ncols=True,
    )
    try:
        options = shared.options_from_args(args)
        with shared.StopOnCtrlC() as interrupt:

            def load() -> None:  # only once a story needs telling
                nonlocal backend, started
                backend = shared.backend_from_args(args)
                started = time.monotonic()

            def tell(photos: tuple[Path, ...]) -> RunResult:
                nonlocal tokens
                assert backend is not None  # generate() calls load() first
                # A stopped result (Ctrl-C), with or without tokens, is never kept: generate()
                # drops it, so the story is told again next time.
                result = shared.tell_to_end(backend, options, photos, should_stop=interrupt).result
                if not result.cancelled:
                    with counted:
                        tokens += result.timings.generated_tokens
                return result

            def advance(_progress: GenerationProgress, story_id: str) -> None:
                bar.set_postfix_str(story_id, refresh=False)
                bar.update(1)

            progress = generate(
                references,
                args.run_dir,
                tell,
                on_story=advance,
                before_first=load,
                parallel=parallel,
            )
    finally:
        bar.close()
        if backend is not None:
            backend.close()
    if backend is not None and not args.quiet:
        elapsed = time.monotonic() - started
        shared.say(shared.throughput_line(len(progress.written), tokens, elapsed, parallel))
    return progress


def run(args: argparse.Namespace) -> int:
    """Generate the missing outputs if asked, then score RUN_DIR against REF and print it."""
    from desktop_app.evaluation.metrics import metric_rows
    from desktop_app.evaluation.references import ReferenceSet
    from desktop_app.evaluation.run_folders import read_run, require_eval_extra, score_run

    references = ReferenceSet(args.reference, limit=args.limit)
    # Scored all the same (as missing); the exit status says the run is not complete.
    status = EXIT_OK
    if args.generate:
        require_eval_extra()  # before hours of generation, not after
        progress = _generate(args, references)
        done = progress.done_before + len(progress.written)
        if progress.stopped:
            dropped = (
                "the stories being told were dropped"
                if args.parallel > 1
                else "the one being told was dropped"
            )
            print(
                f"storyteller: stopped; {_stories(len(progress.written))} told this time, "
                f"{done} of {progress.total} are in {args.run_dir} ({dropped}). Run the same "
                "command again to continue.",
                file=sys.stderr,
            )
            return EXIT_INTERRUPTED
        for story_id, message in progress.failed:
            print(f"storyteller: story {story_id} failed: {message}", file=sys.stderr)
            status = EXIT_FAILED
        if not args.quiet or progress.failed:
            failed = f", {_stories(len(progress.failed))} failed" if progress.failed else ""
            print(
                f"storyteller: {_stories(len(progress.written))} told{failed}, "
                f"{progress.done_before} already in {args.run_dir}",
                file=sys.stderr,
            )
    if not args.quiet:
        print(f"storyteller: scoring {args.run_dir} against {args.reference}", file=sys.stderr)
    evaluation = score_run(read_run(args.run_dir), references)
    for warning in evaluation.warnings:
        print(f"storyteller: warning: {warning}", file=sys.stderr)
    published = references.kind == "parquet"
    if args.json:
        data = evaluation_to_dict(evaluation, args.run_dir, args.reference)
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return status
    scored = len(evaluation.report.stories)
    told_by = f", told by {', '.join(evaluation.models)}" if evaluation.models else ""
    lines = [
        f"{scored} of {evaluation.reference_count} reference stories scored "
        f"(outputs: {args.run_dir}{told_by}; references: {args.reference})",
        "",
        format_table([("score", metric_rows(evaluation.report))], published=published),
        "",
        f"METEOR: {evaluation.report.meteor_name}"
        + ("; published: METEOR 1.5 (Java)" if published else ""),
    ]
    if evaluation.missing:
        count = len(evaluation.missing)
        lines.append(
            f"missing: {count} reference {'story has' if count == 1 else 'stories have'} no "
            "output: " + _some(evaluation.missing)
        )
    if evaluation.unknown:
        count = len(evaluation.unknown)
        lines.append(
            f"not scored: {count} {'output matches' if count == 1 else 'outputs match'} no "
            "reference story: " + _some(evaluation.unknown)
        )
    if args.stories:
        lines += ["", format_story_rows(evaluation.report)]
    sys.stdout.write("\n".join(lines) + "\n")
    return status


def _stories(count: int) -> str:
    return f"{count} story" if count == 1 else f"{count} stories"


def _some(ids: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def format_table(
    columns: Sequence[tuple[str, Sequence[tuple[str, float]]]], *, published: bool = False
) -> str:
    """The authors' table: one row per metric, one column per (title, ``metric_rows``)."""
    from desktop_app.evaluation.metrics import PUBLISHED

    titles = [title for title, _rows in columns]
    if published:
        titles.append("published")
    rows = [list(column_rows) for _title, column_rows in columns]
    width = max(9, *(len(t) for t in titles))
    out = [f"{'metric':16s}" + "".join(f"{t:>{width + 2}s}" for t in titles)]
    for i, (name, _value) in enumerate(rows[0]):
        cells = [f"{column[i][1]:{width + 2}.3f}" for column in rows]
        if published:
            known = PUBLISHED.get(name)
            cells.append(f"{_published(known):>{width + 2}s}")
        out.append((f"{name:16s}" + "".join(cells)).rstrip())
    return "\n".join(out)


def _published(value: float | None) -> str:
    """A published figure with the digits it was published with (0.83, 0.40, 0.054)."""
    if value is None:
        return ""
    text = f"{value:.3f}"
    return text[:-1] if text.endswith("0") else text


def format_story_rows(report: EvalReport) -> str:
    """One line per scored story: its grounding scores, METEOR and ROUGE-L."""
    id_width = max([8, *(len(s.story_id) for s in report.stories)])
    out = [f"{'story':{id_width}s}" + "".join(f"{h:>9s}" for h in _STORY_COLUMNS)]
    for story in report.stories:
        out.append(
            f"{story.story_id:{id_width}s}" + "".join(f"{v:9.3f}" for v in _story_values(story))
        )
    return "\n".join(out)


def _story_values(story: StoryScore) -> tuple[float, ...]:
    g = story.grounding
    return (
        g.characters.precision,
        g.characters.recall,
        g.objects.precision,
        g.objects.recall,
        g.total.precision,
        g.total.recall,
        g.average_precision,
        story.meteor,
        story.rouge_l,
    )


def evaluation_to_dict(evaluation: Evaluation, run_dir: Path, reference: Path) -> dict[str, Any]:
    """The scores as JSON: the table, each story's row, and the stories left out."""
    from desktop_app.evaluation.metrics import metric_rows

    report = evaluation.report
    return {
        "run": str(run_dir),
        "reference": str(reference),
        "stories_scored": len(report.stories),
        "reference_stories": evaluation.reference_count,
        "metrics": dict(metric_rows(report)),
        "meteor": report.meteor_name,
        "models": dict(evaluation.models),
        "missing": list(evaluation.missing),
        "unknown": list(evaluation.unknown),
        "warnings": list(evaluation.warnings),
        "stories": [
            {"story_id": s.story_id, **dict(zip(_STORY_KEYS, _story_values(s), strict=True))}
            for s in report.stories
        ],
    }
