"""File helpers shared by the engine and the library.

Atomic writes (a reader sees the old file or the new one, never half of one) and content hashes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO


def _create_temporary(target: Path) -> str:
    """Create a new, empty temporary file beside ``target`` and return its name.

    Created with ``os.open(..., 0o666)`` so the user's umask decides its permissions, as for any
    file a program saves (``tempfile.mkstemp`` would make every export private, 0600).
    """
    while True:
        name = str(target.parent / f".{target.name}.{secrets.token_hex(6)}.part")
        try:
            os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return name
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str],
    mode: str = "w",
    *,
    private: bool = False,
    **kwargs: object,
) -> Iterator[IO]:
    """Open a temporary file beside ``path``; rename it over ``path`` only if the block succeeds.

    ``private`` makes the file readable by its owner only (settings that may hold an API key).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_name = _create_temporary(target)
    try:
        if private:
            os.chmod(tmp_name, 0o600)
        with open(tmp_name, mode, **kwargs) as handle:  # type: ignore[call-overload]
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str, *, private: bool = False) -> None:
    with atomic_open(path, "w", private=private, encoding="utf-8", newline="") as handle:
        handle.write(text)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def write_text_somewhere(
    text: str, targets: Sequence[str | os.PathLike[str]]
) -> tuple[Path | None, list[OSError]]:
    """Write ``text`` atomically to the first of ``targets`` that can be written.

    Returns that file (None when none could be) and the errors of those that could not, in order:
    a finished story is not given up because its first destination's disk is full.
    """
    errors: list[OSError] = []
    for target in targets:
        try:
            atomic_write_text(target, text)
        except OSError as err:
            errors.append(err)
            continue
        return Path(target), errors
    return None, errors


_HASH_CHUNK = 4 * 1024 * 1024


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's content, read in chunks (photos and models can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
