"""The user's settings: which model or server, how to run it, story defaults; their library.

Stored as JSON in ``paths.settings_file()`` and written atomically. A missing, corrupt or foreign
file never stops the app: bad values fall back to the defaults with a logged warning.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from desktop_app import paths
from desktop_app.engine.api import Detail, Preset
from desktop_app.errors import StorytellerError
from desktop_app.fileio import atomic_write_text
from desktop_app.library.store import Library

logger = logging.getLogger(__name__)

SETTINGS_FORMAT = 1


@dataclass(frozen=True)
class Settings:
    """Everything the user can configure. ``None`` means "decide automatically"."""

    model_path: Path | None = None  # text GGUF; None: the default model found in the model folders
    mmproj_path: Path | None = None
    server_url: str | None = None  # set: use an OpenAI-compatible server instead of llama.cpp
    api_key: str | None = None
    server_model: str | None = None
    n_gpu_layers: int = -1  # -1: everything the GPU build can take; 0: CPU only
    n_threads: int | None = None  # None: physical cores
    n_ctx: int | None = None  # None: sized per run from its real token cost
    library_dir: Path | None = None
    detail: Detail = Detail.AS_TRAINED
    preset: Preset = Preset.CREATIVE
    max_tokens: int = 4096
    seed: int | None = None
    strict_format: bool = False
    # Several tokens per model evaluation (engine/speculation.py); off: strictly token by token.
    speculation: bool = True
    # Encode an open album's photos and read its prompt before Generate (app/preparation.py).
    prepare_in_background: bool = True

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"format": SETTINGS_FORMAT}
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, Path):
                value = str(value)
            elif isinstance(value, (Detail, Preset)):
                value = value.value
            data[item.name] = value
        return data


def _coerce(name: str, value: Any) -> Any:
    """Turn a JSON value into the field's type; raise ValueError/TypeError when it is not one."""
    if value is None:
        if name in {
            "n_gpu_layers",
            "max_tokens",
            "detail",
            "preset",
            "strict_format",
            "speculation",
            "prepare_in_background",
        }:
            raise ValueError("may not be null")
        return None
    if name in {"model_path", "mmproj_path", "library_dir"}:
        if not isinstance(value, str) or not value:
            raise TypeError("expected a path")
        return Path(value).expanduser()
    if name in {"server_url", "api_key", "server_model"}:
        if not isinstance(value, str):
            raise TypeError("expected text")
        return value or None
    if name == "detail":
        return Detail(value)
    if name == "preset":
        return Preset(value)
    if name in {"strict_format", "speculation", "prepare_in_background"}:
        if not isinstance(value, bool):
            raise TypeError("expected true/false")
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("expected a whole number")
    if name == "max_tokens" and value < 1:
        raise ValueError("must be at least 1")
    if name in {"n_threads", "n_ctx"} and value < 1:
        raise ValueError("must be at least 1")
    return value


def settings_from_dict(data: dict[str, Any]) -> Settings:
    """Settings from parsed JSON; bad or unknown entries are logged and ignored."""
    values: dict[str, Any] = {}
    known = {item.name for item in fields(Settings)}
    for key, value in data.items():
        if key == "format":
            continue
        if key not in known:
            logger.warning("settings: ignoring unknown setting %r", key)
            continue
        try:
            values[key] = _coerce(key, value)
        except (ValueError, TypeError) as err:
            logger.warning("settings: %s=%r is invalid (%s); using the default", key, value, err)
    return Settings(**values)


def load_settings(path: Path | None = None) -> Settings:
    """The saved settings, or the defaults when there are none or they cannot be read."""
    path = path or paths.settings_file()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Settings()
    except OSError as err:
        logger.warning("settings: cannot read %s (%s); using defaults", path, err)
        return Settings()
    try:
        data = json.loads(text)
    except ValueError as err:
        logger.warning("settings: %s is not valid JSON (%s); using defaults", path, err)
        return Settings()
    if not isinstance(data, dict):
        logger.warning("settings: %s does not hold an object; using defaults", path)
        return Settings()
    return settings_from_dict(data)


def save_settings(settings: Settings, path: Path | None = None) -> None:
    """Write ``settings`` atomically (a crash leaves the old file, never half of one)."""
    path = path or paths.settings_file()
    # Private: the file may hold the server's API key.
    atomic_write_text(
        path, json.dumps(settings.to_dict(), indent=2, sort_keys=True) + "\n", private=True
    )


def open_library(settings: Settings | None = None) -> Library:
    """Open (creating if needed) the library the settings point at, marking runs whose writer
    died as interrupted."""
    folder = settings.library_dir if settings is not None else None
    library = Library.open(folder) if folder else Library.open()
    try:
        library.recover_interrupted()
    except (StorytellerError, sqlite3.Error):  # best effort; the library itself is fine
        logger.warning("could not recover interrupted runs", exc_info=True)
    return library
