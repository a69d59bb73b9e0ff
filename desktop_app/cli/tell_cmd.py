"""``storyteller tell PHOTO...``: a grounded story from photos, without the GUI.

Progress goes to stderr (one bar per phase), the story to stdout or ``--out`` (written
atomically). Ctrl-C stops between tokens (or during prompt reading) and keeps the partial story;
a second Ctrl-C aborts at once. Exit codes: 0 done, 1 failed, 130 interrupted.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from desktop_app.app.exports import render_stored
from desktop_app.app.settings import Settings
from desktop_app.app.stored_story import StoredStory
from desktop_app.app.telling import TellOptions
from desktop_app.cli.exit_codes import EXIT_INTERRUPTED, EXIT_OK
from desktop_app.engine.events import (
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
    StoryRequest,
    TokenEvent,
)
from desktop_app.engine.speeds import RunClock, describe
from desktop_app.errors import StorytellerError

FORMATS = ("json", "text", "md", "html")


def add_tell_options(parser: argparse.ArgumentParser) -> None:
    """The model/server and story options shared by ``tell`` and ``album tell``."""
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
    story.add_argument("--max-tokens", type=int, default=None, metavar="N", help="default 4096")
    story.add_argument(
        "--strict-format",
        action="store_true",
        default=None,
        help="constrain the output so it always parses and validates (terser tables)",
    )
    story.add_argument("--instruction", default=None, help="text before the photos")


def _settings() -> Settings:
    from desktop_app.app.settings import load_settings

    return load_settings()


def backend_from_args(args: argparse.Namespace) -> StoryBackend:
    """The backend the options (falling back to the settings) ask for."""
    from desktop_app.app.backends import backend_from_settings

    settings = _settings()
    model_arg = getattr(args, "model", None)
    mmproj_arg = getattr(args, "mmproj", None)
    server = getattr(args, "server", None) or (None if model_arg else settings.server_url)
    if not server and mmproj_arg and not model_arg:
        raise StorytellerError("--mmproj needs --model (the text GGUF it belongs to)")
    n_gpu_layers = getattr(args, "n_gpu_layers", None)
    chosen = settings.replace(
        server_url=server,
        api_key=getattr(args, "api_key", None) or settings.api_key,
        server_model=getattr(args, "server_model", None) or settings.server_model,
        # A --model given alone pairs with its own mmproj, never with the configured one.
        model_path=model_arg or settings.model_path,
        mmproj_path=mmproj_arg or (None if model_arg else settings.mmproj_path),
        n_gpu_layers=settings.n_gpu_layers if n_gpu_layers is None else n_gpu_layers,
        n_threads=getattr(args, "threads", None) or settings.n_threads,
        speculation=settings.speculation and not getattr(args, "no_speculation", False),
    )
    return backend_from_settings(chosen, verify_sha256=getattr(args, "verify_sha256", False))


def options_from_args(args: argparse.Namespace) -> TellOptions:
    """How to tell the story: the options, falling back to the settings."""
    settings = _settings()
    chosen: dict[str, Any] = {}
    if getattr(args, "preset", None):
        chosen["preset"] = Preset(args.preset)
    if getattr(args, "detail", None):
        chosen["detail"] = Detail(args.detail)
    for name in ("max_tokens", "seed", "strict_format"):
        if getattr(args, name, None) is not None:
            chosen[name] = getattr(args, name)
    options = TellOptions.from_settings(
        settings.replace(**chosen),
        temperature=getattr(args, "temperature", None),
        top_p=getattr(args, "top_p", None),
        instruction=getattr(args, "instruction", None),
    )
    sampling = options.sampling
    if sampling.max_tokens < 1:
        raise StorytellerError("--max-tokens must be at least 1")
    if not 0 < sampling.top_p <= 1:
        raise StorytellerError("--top-p must be in (0, 1]")
    if sampling.temperature < 0:
        raise StorytellerError("--temperature cannot be negative")
    return options


def request_from_args(args: argparse.Namespace, photos: Sequence[Path]) -> StoryRequest:
    """The story request for ``photos`` (album order) from the options and the settings."""
    return options_from_args(args).request(photos)


class Progress:
    """tqdm bars on stderr: photos prepared, photos encoded, tokens written; a line otherwise.

    With a ``clock`` each bar ends with the run's remaining time ("about 3 min left"), updated
    on every phase and token.
    """

    def __init__(self, enabled: bool, max_tokens: int, clock: RunClock | None = None) -> None:
        self.enabled = enabled
        self.max_tokens = max_tokens
        self.clock = clock
        self.bar: Any = None
        self.phase: Phase | None = None

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
            postfix=self._remaining(),
        )

    def event(self, event: object) -> None:
        if not self.enabled:
            return
        self._tick(event)
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
            self.bar.update(event.tokens)
        elif (
            isinstance(event, ResultEvent) and self.bar is not None and self.phase is Phase.WRITING
        ):
            # Tokens that never became text are only in the final count; a story that ended
            # before --max-tokens is complete, so its bar closes full.
            result = event.result
            if self.clock is not None:
                self.bar.set_postfix_str("", refresh=False)  # nothing is left
            self.bar.update(result.timings.generated_tokens - self.bar.n)
            if result.finish_reason is FinishReason.STOP:
                self.bar.total = self.bar.n
                self.bar.refresh()

    def _tick(self, event: object) -> None:
        if self.clock is None:
            return
        if isinstance(event, PhaseEvent):
            self.clock.on_phase(event.phase, event.index)
        elif isinstance(event, TokenEvent):
            self.clock.on_tokens(event.tokens)

    def _remaining(self) -> str | None:
        if self.clock is None:
            return None
        return describe(self.clock.remaining_s(), measured=self.clock.speeds.measured, left=True)

    def _show_remaining(self) -> None:
        left = self._remaining()
        if left is not None and self.bar is not None:
            self.bar.set_postfix_str(left, refresh=False)  # drawn by the update, at tqdm's pace

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def run_plan(backend: StoryBackend, request: StoryRequest) -> RunClock | None:
    """The remaining-time clock of a run of ``request`` on ``backend``, made before the run
    starts with what it will find cached (None: the backend's speed is unknown, a server)."""
    rates = getattr(backend, "speeds", None)  # the embedded backend; a server's speed is unknown
    if rates is None:
        return None
    from PIL import Image

    from desktop_app.app.costs import cached_parts, run_clock
    from desktop_app.imaging import upright_size

    sizes: list[tuple[int, int]] = []
    readable: list[int] = []
    for index, photo in enumerate(request.photos):
        known = request.known[index] if index < len(request.known) else None
        try:
            if known is not None:
                sizes.append(known.upright_size)
            else:
                with Image.open(photo) as image:
                    sizes.append(upright_size(image))
        except (OSError, ValueError):
            continue  # the run itself reports the photo it cannot read
        readable.append(index)
    cached = cached_parts(backend, request).select(readable)
    return run_clock(rates(), sizes, request.detail, request.sampling.max_tokens, cached)


def time_estimate(clock: RunClock, request: StoryRequest) -> str:
    """``about 6 min for 5 photos at As trained (estimate; 2 of 5 photos cached)``."""
    measured = clock.speeds.measured
    photos = len(clock.encode_s)
    text = describe(clock.plan.total_s, measured=measured).replace(" (estimate)", "")
    notes = ["estimate" if measured else "estimate from the model's size, until it has run here"]
    cached = clock.cached.describe(photos)
    if cached:
        notes.append(cached)
    counted = f"{photos} photo" if photos == 1 else f"{photos} photos"
    return f"{text} for {counted} at {request.detail.label} ({'; '.join(notes)})"


def run_story(
    backend: StoryBackend,
    request: StoryRequest,
    *,
    show_progress: bool,
    should_stop: ShouldStop | None = None,
    on_event: Callable[[object], None] | None = None,
) -> RunResult:
    """Run ``request`` on ``backend`` to its result, with progress bars on stderr if asked."""
    clock = run_plan(backend, request) if show_progress else None
    if clock is not None:
        print(f"storyteller: {time_estimate(clock, request)}", file=sys.stderr, flush=True)
    progress = Progress(show_progress, request.sampling.max_tokens, clock)
    result: RunResult | None = None
    try:
        for event in backend.generate(request, should_stop=should_stop or (lambda: False)):
            progress.event(event)
            if on_event is not None:
                on_event(event)
            if isinstance(event, ResultEvent):
                result = event.result
    finally:
        progress.close()
    if result is None:
        raise StorytellerError(f"{backend.description} ended without a result")
    return result


def run_to_dict(result: RunResult, request: StoryRequest) -> dict[str, Any]:
    """The ``run`` object of the JSON output: photos, parameters, backend, timings."""
    return {
        "photos": [photo.to_dict() for photo in result.photos],
        "parameters": {
            **result.sampling.to_dict(),
            "detail": request.detail.value,
            "token_budget": request.detail.token_budget,
            "strict_format": request.strict_format,
            "instruction": request.instruction,
        },
        "backend": result.backend,
        "model": result.model,
        "finish_reason": result.finish_reason.value,
        "timings": result.timings.to_dict(),
        "raw_output": result.raw_output,
    }


def render_output(story: StoredStory, fmt: str, run: Mapping[str, Any] | None = None) -> str:
    """The story in ``fmt`` (json: the story contract plus ``run``, when given)."""
    kind = {"md": "markdown"}.get(fmt, fmt)
    return render_stored(
        kind, story, title="Storyteller", extra={"run": dict(run)} if run is not None else None
    )


class StopOnCtrlC:
    """A ``should_stop`` for command-line runs: the first Ctrl-C asks the run to stop (keeping
    the partial story), a second aborts at once. Use it as a context manager around the run."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self._previous: Any = None

    def __enter__(self) -> StopOnCtrlC:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, _signum: int, _frame: object) -> None:
        if self.requested.is_set():
            raise KeyboardInterrupt
        self.requested.set()
        print("\nstoryteller: stopping (Ctrl-C again to abort)", file=sys.stderr, flush=True)

    def __exit__(self, *_exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def __call__(self) -> bool:
        return self.requested.is_set()


def _tell(args: argparse.Namespace) -> int:
    from desktop_app.fileio import atomic_write_text

    request = request_from_args(args, args.photos)
    show_progress = not args.quiet
    backend = backend_from_args(args)
    try:
        with StopOnCtrlC() as interrupt:
            result = run_story(backend, request, show_progress=show_progress, should_stop=interrupt)
    finally:
        backend.close()
    output = render_output(StoredStory.of_result(result), args.format, run_to_dict(result, request))
    if args.out is not None:
        atomic_write_text(args.out, output)
        print(f"storyteller: story written to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(output if output.endswith("\n") else output + "\n")
        sys.stdout.flush()
    timings = result.timings
    if show_progress:
        print(
            f"storyteller: {result.finish_reason.value}; {timings.generated_tokens} tokens at "
            f"{timings.tokens_per_s:.1f}/s, first after {timings.first_token_s:.1f} s "
            f"({result.backend})",
            file=sys.stderr,
        )
    return EXIT_INTERRUPTED if result.cancelled else EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``storyteller tell``."""
    parser = subparsers.add_parser(
        "tell",
        help="tell the story of some photos (headless)",
        description="Tell a grounded story of PHOTOs, in the order given.",
    )
    parser.add_argument("photos", nargs="+", type=Path, metavar="PHOTO")
    parser.add_argument("--format", choices=FORMATS, default="text", help="default text")
    parser.add_argument("--out", type=Path, metavar="FILE", help="write here instead of stdout")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    add_tell_options(parser)
    parser.set_defaults(func=_tell)
