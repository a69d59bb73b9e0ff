"""The model catalog, and finding and verifying converted models on disk.

The converter writes a text GGUF, an mmproj GGUF and ``manifest.json`` (sizes, sha256) into one
folder. Discovery walks ``paths.model_search_dirs()`` (the user's models folder first, then
``models/`` of a source checkout), pairs files by manifest, and falls back to pairing loose GGUFs
in one folder by name. ``verify`` checks sizes (and sha256 on request) before anything loads.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from desktop_app import paths
from desktop_app.engine.gguf_info import ModelFileError
from desktop_app.fileio import sha256_file

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
CATALOG_NAME = "catalog.json"


@dataclass(frozen=True)
class CatalogEntry:
    """One known QwenStoryteller variant."""

    quant: str
    file: str
    size_bytes: int
    ram_bytes: int
    default: bool
    note: str
    mmproj_file: str
    mmproj_size_bytes: int
    source: str


@dataclass(frozen=True)
class CatalogCheckpoint:
    """A Hugging Face checkpoint the converter turns into QwenStoryteller GGUFs."""

    repo: str  # "daniel3303/QwenStoryteller2"
    name: str  # the model name its files start with
    note: str
    default: bool  # the recommended one
    why: str = ""  # one line: why it is recommended


@dataclass(frozen=True)
class ModelFiles:
    """A text GGUF and the mmproj GGUF that belongs to it."""

    text_path: Path
    mmproj_path: Path
    manifest: dict | None = None
    manifest_path: Path | None = None

    @property
    def name(self) -> str:
        if self.manifest and isinstance(self.manifest.get("name"), str):
            return self.manifest["name"]
        return self.text_path.stem

    @property
    def quant(self) -> str | None:
        if self.manifest and isinstance(self.manifest.get("quant"), str):
            return self.manifest["quant"]
        for entry in load_catalog():
            if entry.quant.lower() in self.text_path.name.lower():
                return entry.quant
        return None

    @property
    def size_bytes(self) -> int:
        return _size(self.text_path) + _size(self.mmproj_path)

    @property
    def checkpoint(self) -> str | None:
        """The hub checkpoint the files were converted from, when the manifest knows it."""
        identity = (self.manifest or {}).get("checkpoint")
        repo = identity.get("repo") if isinstance(identity, dict) else None
        return repo if isinstance(repo, str) and repo else None

    def describe(self) -> str:
        quant = f" ({self.quant})" if self.quant else ""
        return f"{self.name}{quant}: {self.text_path} + {self.mmproj_path.name}"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def load_catalog(path: Path | None = None) -> list[CatalogEntry]:
    """The known variants, default first; empty (with a log line) when no catalog is at hand."""
    path = path or paths.catalog_file()
    if path is None or not path.is_file():
        logger.debug("no model catalog found")
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    mmproj = data.get("mmproj", {})
    source = data.get("source", {}).get("checkpoint", "")
    entries = [
        CatalogEntry(
            quant=item["quant"],
            file=item["file"],
            size_bytes=int(item["size_bytes"]),
            ram_bytes=int(item["ram_bytes"]),
            default=bool(item.get("default", False)),
            note=item.get("note", ""),
            mmproj_file=mmproj.get("file", ""),
            mmproj_size_bytes=int(mmproj.get("size_bytes", 0)),
            source=source,
        )
        for item in data.get("variants", [])
    ]
    return sorted(entries, key=lambda entry: not entry.default)


def load_checkpoints(path: Path | None = None) -> list[CatalogCheckpoint]:
    """The checkpoints the catalog knows, the recommended one (QwenStoryteller2) first."""
    path = path or paths.catalog_file()
    if path is None or not path.is_file():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    checkpoints = [
        CatalogCheckpoint(
            repo=item["repo"],
            name=item.get("name") or item["repo"].split("/")[-1],
            note=item.get("note", ""),
            default=bool(item.get("default", False)),
            why=item.get("why", ""),
        )
        for item in data.get("checkpoints", [])
    ]
    return sorted(checkpoints, key=lambda checkpoint: not checkpoint.default)


def _read_manifest(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        logger.warning("ignoring unreadable model manifest %s: %s", path, err)
        return None
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        logger.warning("ignoring model manifest %s: no 'files'", path)
        return None
    return data


def _from_manifest(manifest_path: Path) -> ModelFiles | None:
    manifest = _read_manifest(manifest_path)
    if manifest is None:
        return None
    files = manifest["files"]
    try:
        text = manifest_path.parent / files["text"]["file"]
        mmproj = manifest_path.parent / files["mmproj"]["file"]
    except (KeyError, TypeError):
        logger.warning("ignoring model manifest %s: text/mmproj entries missing", manifest_path)
        return None
    if not text.is_file() or not mmproj.is_file():
        logger.warning("model manifest %s names files that are missing", manifest_path)
        return None
    return ModelFiles(text, mmproj, manifest, manifest_path)


def _is_mmproj(path: Path) -> bool:
    return "mmproj" in path.name.lower()


def _common_prefix_len(a: str, b: str) -> int:
    count = 0
    for left, right in zip(a.lower(), b.lower(), strict=False):
        if left != right:
            break
        count += 1
    return count


def _pair_loose(folder: Path, claimed: set[Path]) -> list[ModelFiles]:
    ggufs = sorted(p for p in folder.glob("*.gguf") if p.resolve() not in claimed)
    projectors = [p for p in ggufs if _is_mmproj(p)]
    if not projectors:
        return []
    found = []
    for text in (p for p in ggufs if not _is_mmproj(p)):
        stem = text.stem
        best = max(
            projectors, key=lambda p: _common_prefix_len(p.stem.replace("mmproj-", ""), stem)
        )
        found.append(ModelFiles(text, best))
    return found


def _candidate_folders(root: Path) -> Iterable[Path]:
    yield root
    try:
        children = sorted(child for child in root.iterdir() if child.is_dir())
    except OSError:
        return
    yield from children


def find_models(search_dirs: Sequence[Path] | None = None) -> list[ModelFiles]:
    """Converted models in the model folders (manifest pairs first, then loose GGUF pairs)."""
    found: list[ModelFiles] = []
    for root in search_dirs if search_dirs is not None else paths.model_search_dirs():
        if not root.is_dir():
            continue
        for folder in _candidate_folders(root):
            claimed: set[Path] = set()
            manifest_path = folder / MANIFEST_NAME
            if manifest_path.is_file():
                model = _from_manifest(manifest_path)
                if model is not None:
                    found.append(model)
                    claimed = {model.text_path.resolve(), model.mmproj_path.resolve()}
            found.extend(_pair_loose(folder, claimed))
    return found


def default_model(search_dirs: Sequence[Path] | None = None) -> ModelFiles | None:
    """The model to use when none is configured: the catalog's default quant if found, else first."""
    models = find_models(search_dirs)
    if not models:
        return None
    preference = [entry.quant for entry in load_catalog()]

    def rank(model: ModelFiles) -> int:
        quant = model.quant
        return preference.index(quant) if quant in preference else len(preference)

    return min(models, key=rank)


def verify(model_files: ModelFiles, sha256: bool = False) -> None:
    """Check both files exist and match the manifest's sizes (and sha256 when asked).

    Raises ``ModelFileError`` describing every mismatch, e.g. a download or copy cut short.
    """
    problems = []
    roles = (("text", model_files.text_path), ("mmproj", model_files.mmproj_path))
    for role, path in roles:
        if not path.is_file():
            problems.append(f"{path} is missing")
            continue
        expected = (model_files.manifest or {}).get("files", {}).get(role, {})
        size = path.stat().st_size
        if isinstance(expected.get("size"), int) and expected["size"] != size:
            problems.append(
                f"{path.name} is {size} bytes but its manifest says {expected['size']} "
                "(copy cut short or file replaced)"
            )
        elif size == 0:
            problems.append(f"{path.name} is empty")
        if sha256 and isinstance(expected.get("sha256"), str) and path.is_file():
            actual = sha256_file(path)
            if actual != expected["sha256"].lower():
                problems.append(
                    f"{path.name} has sha256 {actual[:12]}… but the manifest says "
                    f"{expected['sha256'][:12]}… (damaged file)"
                )
    if problems:
        raise ModelFileError(
            "model files do not check out: "
            + "; ".join(problems)
            + ": convert or copy the model again"
        )
