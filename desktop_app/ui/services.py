"""The one place where the GUI calls the core packages (story, engine, library, settings).

Every call the windows make into ``desktop_app.story``, ``desktop_app.engine``,
``desktop_app.library`` and ``desktop_app.settings`` goes through this module, so a change in
one of their APIs is absorbed here. Nothing in this module touches widgets.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desktop_app.engine.events import Detail

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- story


def parse_story(text: str) -> Any:
    """Parse a whole model output into a ``desktop_app.story`` Story."""
    from desktop_app.story.parser import parse_story as parse

    return parse(text)


def new_stream_parser() -> Any:
    """A parser for a story that is still being written."""
    from desktop_app.story.parser import StoryStreamParser

    return StoryStreamParser()


def validate_story(
    story: Any, frame_count: int | None, image_sizes: Mapping[int, tuple[int, int]] | None
) -> list[Any]:
    """Validation issues of ``story`` (empty when the validator is not available)."""
    from desktop_app.story.validate import validate

    return list(validate(story, frame_count=frame_count, image_sizes=image_sizes))


def boxes_for(story: Any, entity_id: str) -> dict[int, Any]:
    """Frame number -> Box of ``entity_id`` in that frame."""
    return dict(story.boxes_for(entity_id))


def box_in_frame(story: Any, entity_id: str, frame: int) -> Any | None:
    """The box of ``entity_id`` in frame ``frame``, or None."""
    return story.boxes_for(entity_id).get(frame)


def render_export(
    kind: str,
    story: Any,
    issues: Sequence[Any],
    *,
    names: Mapping[str, str],
    images: Mapping[int, str] | None = None,
    title: str | None = None,
) -> str:
    """The text of an export: ``kind`` is "html", "markdown", "json" or "text"."""
    from desktop_app.story import render

    if kind == "html":
        return render.render_html(story, issues, names=names, images=images, title=title)
    if kind == "markdown":
        return render.render_markdown(story, names=names)
    if kind == "text":
        return render.render_text(story, names=names)
    if kind == "json":
        import json

        data = render.story_to_dict(story, issues)
        if names:
            data = {**data, "display_names": dict(names)}
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    raise ValueError(f"unknown export kind {kind!r}")


# ----------------------------------------------------------------------------- engine


def prepared_size(original_size: tuple[int, int], detail: Detail) -> tuple[int, int]:
    """The size a photo is resized to before the model sees it (boxes are in these pixels)."""
    from desktop_app.engine.images import prepared_size_for

    return prepared_size_for(original_size, detail.token_budget)


def map_box(
    box: Any, prepared: tuple[int, int], original: tuple[int, int]
) -> tuple[float, float, float, float]:
    """A story ``Box`` in prepared-image pixels -> pixels of the upright original photo
    (clamped), as ``(x1, y1, x2, y2)``."""
    from desktop_app.engine.images import map_box_to_original

    corners = (box.x1, box.y1, box.x2, box.y2)
    x1, y1, x2, y2 = map_box_to_original(corners, prepared, original)
    return min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)


@dataclass(frozen=True)
class CostEstimate:
    """What a story of the current photos will cost, and why it may not fit ("" if it fits)."""

    image_tokens: int
    n_ctx: int
    memory_bytes: int
    problem: str = ""
    duration: str = ""  # "about 6 min" on this machine ("" when unknown: a server)

    def describe(self) -> str:
        gib = self.memory_bytes / 2**30
        text = f"≈ {self.image_tokens:,} image tokens · context {self.n_ctx:,} · ≈ {gib:.1f} GiB"
        return f"{text} · {self.duration}" if self.duration else text


def run_speeds(settings: Any) -> Any | None:
    """This machine's rates (``engine.speeds.Speeds``) for the configured model; None when a
    server runs the model or no model is found."""
    from desktop_app import paths
    from desktop_app.engine import device, speeds
    from desktop_app.engine.factory import resolve_model
    from desktop_app.errors import StorytellerError

    if settings is None or getattr(settings, "server_url", None):
        return None
    try:
        model = resolve_model(settings.model_path, settings.mmproj_path)
    except (StorytellerError, OSError):
        return None
    return speeds.for_model(
        speeds.SpeedBook(paths.speeds_file()),
        model.text_path,
        model.mmproj_path,
        device.accelerator(settings.n_gpu_layers),
        settings.n_threads or device.physical_cores(),
    )


def run_clock(
    rates: Any | None, sizes: Sequence[tuple[int, int]], detail: Detail, max_tokens: int
) -> Any | None:
    """A live remaining-time clock (``engine.speeds.RunClock``) for a run, or None."""
    from desktop_app.engine import costs, speeds
    from desktop_app.engine.images import estimate_tokens

    if rates is None:
        return None
    tokens = [estimate_tokens(size, detail.token_budget) for size in sizes]
    return speeds.RunClock(rates, tokens, costs.PROMPT_TEXT_TOKENS, max_tokens)


def describe_time(seconds: float, *, measured: bool, left: bool = False) -> str:
    """``about 6 min``, with ``(estimate)`` while this machine has not measured the model."""
    from desktop_app.engine import speeds

    return speeds.describe(seconds, measured=measured, left=left)


def estimate_cost(
    sizes: Sequence[tuple[int, int]], detail: Detail, max_tokens: int, rates: Any | None = None
) -> CostEstimate:
    """Estimated tokens, context, memory and (with ``rates``) time of a story over photos of
    ``sizes`` (7B model)."""
    from desktop_app.engine import costs, speeds
    from desktop_app.errors import StorytellerError

    estimate = costs.estimate_run(list(sizes), detail, max_tokens)
    problem = ""
    try:
        costs.check_fits(
            estimate.tokens,
            n_ctx=estimate.n_ctx,
            context_length=costs.QWEN25VL_7B.context_length,
            memory_bytes=estimate.memory_bytes,
            physical_bytes=costs.physical_memory_bytes(),
        )
    except StorytellerError as err:
        problem = str(err)
    duration = ""
    if rates is not None:
        run = speeds.estimate(rates, estimate.image_tokens, costs.PROMPT_TEXT_TOKENS, max_tokens)
        duration = speeds.describe(run.total_s, measured=rates.measured)
    return CostEstimate(
        sum(estimate.image_tokens), estimate.n_ctx, estimate.memory_bytes, problem, duration
    )


# ----------------------------------------------------------------------------- settings


def load_settings() -> Any:
    """The saved settings (defaults when there are none)."""
    from desktop_app.settings import load_settings as load

    return load()


def save_settings(settings: Any) -> None:
    """Save ``settings`` atomically."""
    from desktop_app.settings import save_settings as save

    save(settings)


def default_settings() -> Any:
    """Settings with every value at its default."""
    from desktop_app.settings import Settings

    return Settings()


def library_location(settings: Any) -> Path | None:
    """The library folder the settings name (None: the default one)."""
    return getattr(settings, "library_dir", None) if settings is not None else None


def open_library(settings: Any = None) -> Any:
    """Open (creating if needed) the library the settings point at."""
    from desktop_app.library.store import Library

    folder = library_location(settings)
    library = Library.open(folder) if folder else Library.open()
    try:
        library.recover_interrupted()
    except Exception:  # recovery is best effort; the library itself is fine
        logger.warning("could not recover interrupted runs", exc_info=True)
    return library


def model_configured(settings: Any) -> bool:
    """True when the settings name a server or model files, or a default model is installed."""
    if settings is None:
        return False
    if settings.server_url or settings.model_path:
        return True
    try:
        from desktop_app.engine.models import default_model

        return default_model() is not None
    except Exception:
        logger.debug("model discovery failed", exc_info=True)
        return False


def projector_beside(model: Path) -> Path | None:
    """The vision (mmproj) GGUF the engine pairs with the text GGUF ``model``, found beside it."""
    from desktop_app.engine.models import find_models

    return next((m.mmproj_path for m in find_models([model.parent]) if m.text_path == model), None)


def describe_backend_settings(settings: Any) -> str:
    """Backend and device for the status bar, before any model is loaded."""
    if settings is None:
        return "no model configured"
    if settings.server_url:
        return f"server {settings.server_url}"
    try:
        from desktop_app.engine.device import accelerator

        device = accelerator(settings.n_gpu_layers)
    except Exception:
        logger.debug("device query failed", exc_info=True)
        device = "CPU"
    return f"llama.cpp ({device})"


def backend_from_settings(settings: Any) -> Any:
    """The story backend the settings describe (may read model files: call it in a worker)."""
    from desktop_app.engine.factory import NoModelError
    from desktop_app.engine.factory import backend_from_settings as factory
    from desktop_app.errors import StorytellerError

    try:
        return factory(settings if settings is not None else default_settings())
    except NoModelError as err:  # its message speaks of command-line options
        raise StorytellerError(
            "No model is set up yet: use Help → First-run guide to locate or convert one, or "
            "File → Settings to choose the model files or a server"
        ) from err
