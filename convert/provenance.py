"""Which checkpoint a folder holds, for the manifest: the model a GGUF came from stays known.

QwenStoryteller and QwenStoryteller2 (a later DPO fine-tune) have the same architecture and
convert the same way, so only the source tells their GGUFs apart. A folder says which hub
repository it is in two ways: the Hugging Face cache layout
(``.../models--OWNER--NAME/snapshots/REVISION``) and the ``_name_or_path`` that transformers
writes into ``config.json`` when it saves a model it loaded from the hub. A fingerprint of the
config and the weight files' names and sizes identifies it when neither does.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

# "owner/name" as the hub spells repository ids; a local path has other characters or a leading
# slash, dot or tilde.
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_CACHE_DIR = re.compile(r"^models--(?P<owner>[^/]+?)--(?P<name>[^/]+)$")


def checkpoint_identity(folder: Path) -> dict[str, str | None]:
    """``{"repo", "revision", "fingerprint"}`` of a checkpoint (or adapter) folder.

    ``repo`` is the hub id ("daniel3303/QwenStoryteller2") when the folder says so, else None;
    ``revision`` the cache snapshot's commit, else None; ``fingerprint`` a sha256 of
    ``config.json`` (or ``adapter_config.json``) and the weight files' names and sizes.
    """
    folder = folder.resolve()
    repo, revision = _from_cache_layout(folder)
    if repo is None:
        repo = _from_config(folder)
    return {"repo": repo, "revision": revision, "fingerprint": _fingerprint(folder)}


def _from_cache_layout(folder: Path) -> tuple[str | None, str | None]:
    if folder.parent.name != "snapshots":
        return None, None
    match = _CACHE_DIR.match(folder.parent.parent.name)
    if match is None:
        return None, None
    return f"{match['owner']}/{match['name']}", folder.name


def _from_config(folder: Path) -> str | None:
    for name in ("config.json", "adapter_config.json"):
        try:
            data = json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        value = data.get("_name_or_path") if isinstance(data, dict) else None
        if isinstance(value, str) and _REPO_ID.match(value):
            return value
    return None


def _fingerprint(folder: Path) -> str:
    digest = hashlib.sha256()
    for name in ("config.json", "adapter_config.json"):
        path = folder / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    for path in sorted(folder.glob("*.safetensors")):
        digest.update(f"{path.name}\0{path.stat().st_size}\0".encode())
    return digest.hexdigest()


def default_name(folder: Path) -> str | None:
    """The model name a checkpoint's hub id suggests ("QwenStoryteller2"), or None."""
    folder = folder.resolve()
    repo = _from_cache_layout(folder)[0] or _from_config(folder)
    return repo.split("/", 1)[1] if repo else None
