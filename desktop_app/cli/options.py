"""What the story-telling commands share: their options, progress on stderr, Ctrl-C, output.

``storyteller tell``, ``album tell`` and ``eval --generate`` take the same model and story
options (``add_tell_options``), turn them into settings, a backend and ``TellOptions`` the same
way, show the same time estimate and progress bars, stop the same way on Ctrl-C, and print a
run the same way (``run_json``: the one parameter shape, under ``"format": 2``). Commands import
these from here, never from each other.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from desktop_app.app.estimates import RunPlan, RunProgress
from desktop_app.app.exports import render_stored
from desktop_app.app.settings import Settings
from desktop_app.app.stored_story import StoredStory
from desktop_app.app.telling import PhotosTold, TellOptions, tell_photos
from desktop_app.engine.api import (
    OLD_DETAIL_NAMES,
    Detail,
    FinishReason,
    Phase,
    PhaseEvent,
    Preset,
    ResultEvent,
    RunResult,
    ShouldStop,
    StoryBackend,
    TokenEvent,
)
from desktop_app.errors import StorytellerError

FORMATS = ("json", "text", "md", "html", "slideshow")

# The version of the JSON the CLI prints: 2 since runs print their parameters in the one shape
# runs store ({"preset", "detail", "token_budget", "sampling": {...}, "strict_format",
# "instruction"}); before, `tell`/`album tell` printed them flat and without the preset.
JSON_FORMAT = 2

# The options ``add_tell_options`` defines: ``settings_from_args`` and ``options_from_args`` read
# exactly these, so a command must add them (``require_tell_options`` says so otherwise).
TELL_OPTION_NAMES = (
    "model",
    "mmproj",
    "server",
    "api_key",
    "server_model",
    "n_gpu_layers",
    "threads",
    "verify_sha256",
    "no_speculation",
    "detail",
    "preset",
    "temperature",
    "top_p",
    "seed",
    "max_tokens",
    "strict_format",
    "instruction",
)


def add_tell_options(parser: argparse.ArgumentParser) -> None:
    """The model/server and story options shared by ``tell``, ``album tell`` and ``eval``."""
    model = parser.add_argument_group("model (default: the configured model, else one found)")
    model.add_argument("--model", type=Path, metavar="GGUF", help="text model GGUF")
    model.add_argument("--mmproj", type=Path, metavar="GGUF", help="vision projector GGUF")
    model.add_argument(
        "--server",
        metavar="URL",
        help="use an OpenAI-compatible server instead, e.g. http://127.0.0.1:8000",
    )
    model.add_argument("--api-key", metavar="KEY", help="API key for --server")
    model.add_argument("--server-model", metavar="NAME", help="model name to ask --server for")
    model.add_argument(
        "--n-gpu-layers", type=int, default=None, metavar="N", help="-1 all (default), 0 CPU only"
    )
    model.add_argument("--threads", type=int, default=None, metavar="N", help="CPU threads")
    model.add_argument(
        "--verify-sha256", action="store_true", help="check the model files' sha256 first"
    )
    model.add_argument(
        "--no-speculation",
        action="store_true",
        help="write strictly one token per model evaluation (no drafted, batch-checked tokens)",
    )
    story = parser.add_argument_group("story")
    story.add_argument(
        "--detail",
        choices=[d.value for d in Detail] + list(OLD_DETAIL_NAMES),
        default=None,
        help="vision tokens per photo: trained 256 (closest to the training frames, default), "
        "more 512, most 1024 (beyond the training resolution); low/normal/high still work",
    )
    story.add_argument(
        "--preset",
        choices=[p.value for p in Preset],
        default=None,
        help="creative: temperature 0.7, top-p 0.9 (model card); faithful: 0.2, 0.8",
    )
    story.add_argument("--temperature", type=float, default=None, metavar="T")
    story.add_argument("--top-p", type=float, default=None, metavar="P")
    story.add_argument("--seed", type=int, default=None, metavar="N", help="reproducible runs")
    story.add_argument(
        "--max-tokens", type=int, default=None, metavar="N", help="default: the settings' (4096)"
    )
    story.add_argument(
        "--strict-format",
        action="store_true",
        default=None,
        help="constrain the output so it always parses and validates (terser tables)",
    )
    story.add_argument("--instruction", default=None, help="text before the photos")


def add_parallel_option(parser: argparse.ArgumentParser) -> None:
    """``--parallel N``: stories in flight at once (``parallel_from_args``)."""
    parser.add_argument(
        "--parallel",
        type=int,
        default=1,
        metavar="N",
        help="tell N stories at once on --server (start it with as many slots, e.g. "
        "llama-server -np N); the embedded engine tells one at a time",
    )


def parallel_from_args(args: argparse.Namespace) -> int:
    """How many stories to tell at once: ``--parallel`` on a server, 1 on the embedded engine
    (which has one context; saying so when more was asked)."""
    if args.parallel < 1:
        raise StorytellerError("--parallel must be at least 1")
    if args.parallel > 1 and not settings_from_args(args).server_url:
        say(
            f"--parallel {args.parallel} needs a server (--server URL): the embedded engine "
            "tells one story at a time"
        )
        return 1
    return args.parallel


def throughput_line(stories: int, tokens: int, seconds: float, parallel: int) -> str:
    """``12 stories in 3.2 min: 225 stories/h, 41.0 tokens/s (generated, 4 streams summed)``."""
    seconds = max(seconds, 1e-9)
    streams = f"{parallel} streams summed" if parallel > 1 else "one stream"
    return (
        f"{stories} {'story' if stories == 1 else 'stories'} in {seconds / 60:.1f} min: "
        f"{stories * 3600 / seconds:.0f} stories/h, {tokens / seconds:.1f} tokens/s "
        f"(generated, {streams})"
    )


def require_tell_options(args: argparse.Namespace) -> None:
    """Refuse ``args`` from a parser without ``add_tell_options`` (a programming error: a
    command that does not take these options must not read them)."""
    missing = [name for name in TELL_OPTION_NAMES if not hasattr(args, name)]
    if missing:
        raise TypeError(f"the command's parser lacks add_tell_options (no {', '.join(missing)})")


def _settings() -> Settings:
    from desktop_app.app.settings import load_settings

    return load_settings()


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The settings, with the model and server the options choose (``add_tell_options``)."""
    require_tell_options(args)
    settings = _settings()
    server = args.server or (None if args.model else settings.server_url)
    if not server and args.mmproj and not args.model:
        raise StorytellerError("--mmproj needs --model (the text GGUF it belongs to)")
    return settings.replace(
        server_url=server,
        api_key=args.api_key or settings.api_key,
        server_model=args.server_model or settings.server_model,
        # A --model given alone pairs with its own mmproj, never with the configured one.
        model_path=args.model or settings.model_path,
        mmproj_path=args.mmproj or (None if args.model else settings.mmproj_path),
        n_gpu_layers=settings.n_gpu_layers if args.n_gpu_layers is None else args.n_gpu_layers,
        n_threads=args.threads or settings.n_threads,
        speculation=settings.speculation and not args.no_speculation,
    )


def backend_from_args(args: argparse.Namespace) -> StoryBackend:
    """The backend the options (falling back to the settings) ask for."""
    from desktop_app.app.backends import backend_from_settings

    return backend_from_settings(settings_from_args(args), verify_sha256=args.verify_sha256)


def options_from_args(args: argparse.Namespace) -> TellOptions:
    """How to tell the story: the options, falling back to the settings."""
    require_tell_options(args)
    chosen: dict[str, Any] = {}
    if args.preset:
        chosen["preset"] = Preset(args.preset)
    if args.detail:
        chosen["detail"] = Detail(args.detail)
    for name in ("max_tokens", "seed", "strict_format"):
        if getattr(args, name) is not None:
            chosen[name] = getattr(args, name)
    options = TellOptions.from_settings(
        _settings().replace(**chosen),
        temperature=args.temperature,
        top_p=args.top_p,
        instruction=args.instruction,
    )
    sampling = options.sampling
    if sampling.max_tokens < 1:
        raise StorytellerError("--max-tokens must be at least 1")
    if not 0 < sampling.top_p <= 1:
        raise StorytellerError("--top-p must be in (0, 1]")
    if sampling.temperature < 0:
        raise StorytellerError("--temperature cannot be negative")
    return options


def say(message: str) -> None:
    """``storyteller: message`` on stderr, at once."""
    print(f"storyteller: {message}", file=sys.stderr, flush=True)


def announce(plan: RunPlan | None) -> None:
    """The time the run should take, on stderr, before it starts (nothing when unknown)."""
    line = plan.time_line() if plan is not None else ""
    if line:
        say(line)


class Progress:
    """tqdm bars on stderr: photos prepared, photos encoded, tokens written; a line otherwise.

    With a ``plan`` (``set_plan``) each bar ends with the run's remaining time ("about 3 min
    left"), updated on every phase and token. Tokens are the real count (``RunProgress``).
    """

    def __init__(self, enabled: bool, max_tokens: int, plan: RunPlan | None = None) -> None:
        self.enabled = enabled
        self.max_tokens = max_tokens
        self.run = RunProgress(plan.clock if plan is not None else None)
        self.bar: Any = None
        self.phase: Phase | None = None

    def set_plan(self, plan: RunPlan | None) -> None:
        """Follow ``plan``'s clock from now on (planned once the run is recorded)."""
        self.run.clock = plan.clock if plan is not None else None

    def _open(self, phase: Phase, total: int | None, unit: str) -> None:
        from tqdm import tqdm

        if self.bar is not None and self.bar.total:  # a new phase: every photo of the last is done
            self.bar.update(self.bar.total - self.bar.n)
        self.close()
        self.phase = phase
        self.bar = tqdm(
            total=total,
            desc=phase.value,
            unit=unit,
            file=sys.stderr,
            leave=True,
            dynamic_ncols=True,
            postfix=self.run.remaining() or None,
        )

    def event(self, event: object) -> None:
        """Show one event of the run."""
        self.run.on_event(event)  # counted even when nothing is shown
        if not self.enabled:
            return
        if isinstance(event, PhaseEvent):
            if event.total and event.phase is not self.phase:
                self._open(event.phase, event.total, "photo")
            elif not event.total:
                if event.phase is Phase.WRITING:
                    self._open(event.phase, self.max_tokens, "tok")
                else:
                    self._open(event.phase, None, "")
            if event.total and self.bar is not None:  # photo ``index`` begins: index - 1 done
                self._show_remaining()
                self.bar.update(event.index - 1 - self.bar.n)
        elif isinstance(event, TokenEvent) and self.bar is not None:
            self._show_remaining()
            self.bar.update(self.run.tokens - self.bar.n)
        elif (
            isinstance(event, ResultEvent) and self.bar is not None and self.phase is Phase.WRITING
        ):
            # Tokens that never became text are only in the final count; a story that ended
            # before --max-tokens is complete, so its bar closes full.
            result = event.result
            if self.run.clock is not None:
                self.bar.set_postfix_str("", refresh=False)  # nothing is left
            self.bar.update(result.timings.generated_tokens - self.bar.n)
            if result.finish_reason is FinishReason.STOP:
                self.bar.total = self.bar.n
                self.bar.refresh()

    def _show_remaining(self) -> None:
        left = self.run.remaining()
        if left and self.bar is not None:
            self.bar.set_postfix_str(left, refresh=False)  # drawn by the update, at tqdm's pace

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def tell_to_end(
    backend: StoryBackend,
    options: TellOptions,
    photos: Sequence[Path],
    *,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
    on_event: Callable[[object], None] | None = None,
) -> PhotosTold:
    """Run ``tell_photos`` to its end, showing each event on ``progress``; its ``PhotosTold``."""
    told: PhotosTold | None = None
    kwargs = {} if should_stop is None else {"should_stop": should_stop}
    try:
        for event in tell_photos(backend, options, photos, **kwargs):
            if isinstance(event, PhotosTold):
                told = event
                continue
            if progress is not None:
                progress.event(event)
            if on_event is not None:
                on_event(event)
    finally:
        if progress is not None:
            progress.close()
    assert told is not None  # tell_photos ends with PhotosTold unless it raised
    return told


def run_json(result: RunResult, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The ``run`` object of the JSON output: photos, parameters (the one shape runs store and
    ``album story --json`` prints), backend, model, finish reason, timings, raw output."""
    return {
        "photos": [photo.to_dict() for photo in result.photos],
        "parameters": dict(parameters),
        "backend": result.backend,
        "model": result.model,
        "finish_reason": result.finish_reason.value,
        "timings": result.timings.to_dict(),
        "raw_output": result.raw_output,
    }


def render_output(story: StoredStory, fmt: str, run: Mapping[str, Any] | None = None) -> str:
    """The story in ``fmt`` (json: ``"format": 2``, the story contract and ``run`` when given)."""
    kind = {"md": "markdown"}.get(fmt, fmt)
    extra: dict[str, Any] = {"format": JSON_FORMAT}
    if run is not None:
        extra["run"] = dict(run)
    return render_stored(kind, story, title="Story", extra=extra)


def write_stdout(text: str) -> None:
    """``text`` on stdout, ending with one newline."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


# SIGTERM (what `kill`, a service manager or a logout sends) is handled as Ctrl-C: the run
# stops and keeps its partial story (exit 130), a second one aborts at once.
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM") if hasattr(signal, name)
)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within, SIGTERM ends a command as Ctrl-C does (``KeyboardInterrupt``: exit 130)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class StopOnCtrlC:
    """A ``should_stop`` for command-line runs: the first Ctrl-C (or SIGTERM) asks the run to
    stop (keeping the partial story), a second aborts at once. Use it as a context manager
    around the run."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopOnCtrlC:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, _frame: object) -> None:
        if self.requested.is_set():
            raise KeyboardInterrupt
        self.requested.set()
        again = (
            "Ctrl-C again to abort"
            if signum == signal.SIGINT
            else f"{signal.Signals(signum).name} again to abort"
        )
        print(f"\nstoryteller: stopping ({again})", file=sys.stderr, flush=True)

    def __exit__(self, *_exc: object) -> None:
        for signum, previous in self._previous.items():
            if previous is not None:
                signal.signal(signum, previous)
        self._previous.clear()

    def __call__(self) -> bool:
        return self.requested.is_set()
