"""The one place where the GUI calls the core packages (story, engine, library, settings).

Every call the windows make into ``desktop_app.story``, ``desktop_app.engine``,
``desktop_app.library`` and ``desktop_app.app.settings`` goes through this module, so a change in
one of their APIs is absorbed here. Nothing in this module touches widgets.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
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
    from desktop_app.app.exports import render_export as render

    return render(kind, story, issues, names=names, images=images, title=title)


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


def estimate_cost(sizes: Sequence[tuple[int, int]], detail: Detail, max_tokens: int) -> Any:
    """Estimated tokens, context and memory of a story over photos of ``sizes`` (7B model)."""
    from desktop_app.app.costs import estimate_cost as estimate

    return estimate(sizes, detail, max_tokens)


# ----------------------------------------------------------------------------- settings


def load_settings() -> Any:
    """The saved settings (defaults when there are none)."""
    from desktop_app.app.settings import load_settings as load

    return load()


def save_settings(settings: Any) -> None:
    """Save ``settings`` atomically."""
    from desktop_app.app.settings import save_settings as save

    save(settings)


def default_settings() -> Any:
    """Settings with every value at its default."""
    from desktop_app.app.settings import Settings

    return Settings()


def library_location(settings: Any) -> Path | None:
    """The library folder the settings name (None: the default one)."""
    return getattr(settings, "library_dir", None) if settings is not None else None


def open_library(settings: Any = None) -> Any:
    """Open (creating if needed) the library the settings point at."""
    from desktop_app.app.settings import open_library as open_it

    return open_it(settings)


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
    from desktop_app.app.backends import NoModelError
    from desktop_app.app.backends import backend_from_settings as factory
    from desktop_app.errors import StorytellerError

    try:
        return factory(settings if settings is not None else default_settings())
    except NoModelError as err:  # its message speaks of command-line options
        raise StorytellerError(
            "No model is set up yet: use Help → First-run guide to locate or convert one, or "
            "File → Settings to choose the model files or a server"
        ) from err
