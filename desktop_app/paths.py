"""Every directory Storyteller uses, computed in one place.

``STORYTELLER_HOME`` moves everything (data, cache, config) under one folder; tests and portable
installs use it. Otherwise the platform's user folders (platformdirs) are used.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import platformdirs

APP_NAME = "Storyteller"
HOME_ENV = "STORYTELLER_HOME"


def _home_override() -> Path | None:
    value = os.environ.get(HOME_ENV, "").strip()
    return Path(value).expanduser().resolve() if value else None


def data_dir() -> Path:
    """User data: the library database and converted models."""
    home = _home_override()
    return home / "data" if home else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def cache_dir() -> Path:
    """Regenerable files: thumbnails, image-embedding caches."""
    home = _home_override()
    return home / "cache" if home else Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def config_dir() -> Path:
    """Settings."""
    home = _home_override()
    return (
        home / "config" if home else Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))
    )


def settings_file() -> Path:
    return config_dir() / "settings.json"


def model_download_file() -> Path:
    """What the first-run guide downloaded from the Hub: a paused download to resume, and
    whether the checkpoint in the Hugging Face cache is this app's to delete."""
    return config_dir() / "model_download.json"


def user_models_dir() -> Path:
    """Where converted models live for this user."""
    return data_dir() / "models"


def source_checkout_models_dir() -> Path | None:
    """``models/`` of a source checkout, when Storyteller runs from one."""
    candidate = Path(__file__).resolve().parent.parent / "models"
    return candidate if (candidate / "catalog.json").is_file() else None


def catalog_file() -> Path | None:
    """The model catalogue: ``models/catalog.json`` of a source checkout (or a bundle), else the
    copy a wheel installs under ``<prefix>/share/storyteller`` (pyproject's data-files)."""
    checkout = source_checkout_models_dir()
    if checkout is not None:
        return checkout / "catalog.json"
    installed = Path(sys.prefix) / "share" / "storyteller" / "catalog.json"
    return installed if installed.is_file() else None


def model_search_dirs() -> list[Path]:
    """Folders searched for converted models, the user's own first."""
    dirs = [user_models_dir()]
    checkout = source_checkout_models_dir()
    if checkout is not None:
        dirs.append(checkout)
    return dirs


def unsaved_stories_dirs() -> list[Path]:
    """Where a finished story goes when its own destination's disk is full, in order: the user
    data folder, then the temporary folder (``tell --out``'s fallback; a library run kept here
    is brought back by the library's recovery at its next start)."""
    return [
        data_dir() / "unsaved-stories",
        Path(tempfile.gettempdir()) / "storyteller-unsaved-stories",
    ]


def thumbnails_dir() -> Path:
    return cache_dir() / "thumbnails"


def embeddings_cache_dir() -> Path:
    return cache_dir() / "embeddings"


def prompt_cache_dir() -> Path:
    """Saved KV states of prompts, so Generate-again skips reading photos and prompt."""
    return cache_dir() / "prompts"


def speeds_file() -> Path:
    """This machine's measured speeds per model, for the time estimates."""
    return cache_dir() / "speeds.json"
