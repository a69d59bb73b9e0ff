"""One place that turns settings into a backend, for the GUI, the CLI and the library."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from desktop_app.engine.events import StoryBackend
from desktop_app.engine.models import ModelFiles, default_model, find_models, verify
from desktop_app.errors import StorytellerError

if TYPE_CHECKING:
    from desktop_app.settings import Settings

logger = logging.getLogger(__name__)


class NoModelError(StorytellerError):
    """No model is configured and none was found in the model folders."""


def resolve_model(
    model_path: Path | None, mmproj_path: Path | None, *, sha256: bool = False
) -> ModelFiles:
    """The model files to load: the given pair, a given text GGUF's partner, or the default.

    Sizes are verified against the converter's manifest when there is one.
    """
    if model_path is not None:
        model_path = Path(model_path).expanduser()
        mmproj = Path(mmproj_path).expanduser() if mmproj_path is not None else None
        # The pair as found on disk carries its manifest (sizes, sha256) when there is one.
        found = next(
            (
                m
                for m in find_models([model_path.parent])
                if m.text_path == model_path and mmproj in (None, m.mmproj_path)
            ),
            None,
        )
        if found is None and mmproj is None:
            raise NoModelError(
                f"no vision projector (mmproj) found next to {model_path.name}: pass --mmproj"
            )
        model = found or ModelFiles(model_path, mmproj)
    else:
        found = default_model()
        if found is None:
            raise NoModelError(
                "no model configured or found in the model folders: convert one with "
                "storyteller-convert, or pass --model and --mmproj (see models/README.md)"
            )
        model = found
    verify(model, sha256=sha256)
    return model


def backend_from_settings(settings: Settings, *, verify_sha256: bool = False) -> StoryBackend:
    """The backend the settings ask for: a server when ``server_url`` is set, else llama.cpp.

    ``verify_sha256`` also checks the model files' sha256 against their manifest first.
    """
    from desktop_app.engine.llama_backend import LlamaCppBackend
    from desktop_app.engine.server_backend import OpenAIServerBackend

    if settings.server_url:
        return OpenAIServerBackend(
            settings.server_url, api_key=settings.api_key, model=settings.server_model
        )
    model = resolve_model(settings.model_path, settings.mmproj_path, sha256=verify_sha256)
    return LlamaCppBackend(
        model.text_path,
        model.mmproj_path,
        n_gpu_layers=settings.n_gpu_layers,
        n_threads=settings.n_threads,
        n_ctx=settings.n_ctx,
        manifest=model.manifest,
        speculation=settings.speculation,
    )
