"""Settings -> story backend, and what identifies the model a backend runs, for GUI and CLI."""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path
from typing import Any

from desktop_app.app.settings import Settings
from desktop_app.engine.api import StoryBackend
from desktop_app.engine.model_files import ModelFiles, default_model, find_models, verify
from desktop_app.errors import StorytellerError

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


def _file_identity(path: Path, manifest_entry: dict[str, Any] | None) -> dict[str, Any]:
    identity: dict[str, Any] = {"file": path.name, "size": None, "sha256": None}
    with contextlib.suppress(OSError):
        identity["size"] = path.stat().st_size
    if manifest_entry and manifest_entry.get("file") == path.name:
        identity["sha256"] = manifest_entry.get("sha256")
        if identity["size"] is None:
            identity["size"] = manifest_entry.get("size")
    return identity


def model_identity(text_path: Path, mmproj_path: Path | None = None) -> dict[str, Any]:
    """File names, sizes and (from a ``manifest.json`` beside them, when there) sha256.

    Never hashes the model files themselves: they are gigabytes.
    """
    manifest: dict[str, Any] = {}
    manifest_path = text_path.parent / "manifest.json"
    try:
        loaded = json.loads(manifest_path.read_text(encoding="utf-8"))
        if isinstance(loaded, dict):
            manifest = loaded
    except (OSError, ValueError):
        pass
    files = manifest.get("files") if isinstance(manifest.get("files"), dict) else {}
    identity: dict[str, Any] = {"text": _file_identity(text_path, files.get("text"))}
    if mmproj_path is not None:
        identity["mmproj"] = _file_identity(mmproj_path, files.get("mmproj"))
    if manifest.get("name"):
        identity["name"] = manifest["name"]
    return identity


def backend_model_identity(backend: StoryBackend) -> dict[str, Any]:
    """The identity of the model files an embedded backend loads; {} for a server (its model id
    arrives with the run's result)."""
    # Any backend that runs local files exposes them (LlamaCppBackend does); others do not.
    model_path = getattr(backend, "model_path", None)
    if not model_path:
        return {}
    mmproj_path = getattr(backend, "mmproj_path", None)
    return model_identity(Path(model_path), Path(mmproj_path) if mmproj_path else None)


def model_configured(settings: Settings) -> bool:
    """True when the settings name a server or model files, or a default model is installed."""
    if settings.server_url or settings.model_path:
        return True
    try:
        return default_model() is not None
    except Exception:  # discovery is a convenience: a broken model folder means "none found"
        logger.debug("model discovery failed", exc_info=True)
        return False


def projector_beside(model: Path) -> Path | None:
    """The vision (mmproj) GGUF the engine pairs with the text GGUF ``model``, found beside it."""
    return next((m.mmproj_path for m in find_models([model.parent]) if m.text_path == model), None)


def describe_settings_backend(settings: Settings) -> str:
    """Backend and device the settings ask for, before any model is loaded (status bar)."""
    if settings.server_url:
        return f"server {settings.server_url}"
    try:
        from desktop_app.engine.device import accelerator

        device = accelerator(settings.n_gpu_layers)
    except Exception:  # a device query must never stop the window from opening
        logger.debug("device query failed", exc_info=True)
        device = "CPU"
    return f"llama.cpp ({device})"
