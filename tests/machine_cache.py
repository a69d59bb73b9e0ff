"""What the tests build or install once per machine: llama.cpp's ``llama-server``
(tests/llama_server_build.py) and the xgrammar venv (tests/xgrammar_env.py).

Each lives in the user cache folder (``~/.cache/storyteller-test/<name>``, never in the clone;
``STORYTELLER_TEST_CACHE`` moves it), keyed in ``<name>`` by what it is made from. It is made under
a lock, so two test runs on one machine make it once, in a temporary folder renamed into place
when complete, so an interrupted make leaves nothing that looks finished; its commands' output
goes to ``<name>.log`` beside it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path


class SetupError(RuntimeError):
    """It could not be made; the message says which step and ends with its log's tail."""


def cache_root() -> Path:
    from platformdirs import user_cache_dir

    return Path(os.environ.get("STORYTELLER_TEST_CACHE") or user_cache_dir("storyteller-test"))


def run_logged(command: list[str], log: Path, cwd: Path | None = None) -> None:
    """Run ``command``, its output appended to ``log``; ``SetupError`` if it fails."""
    with open(log, "ab") as out:
        out.write(("\n$ " + " ".join(command) + "\n").encode())
        out.flush()
        done = subprocess.run(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise SetupError(f"{' '.join(command[:3])} failed ({done.returncode}); log {log}:\n{tail}")


def made_once(name: str, product: str, make: Callable[[Path, Path], None]) -> Path:
    """``<cache>/<name>/<product>``, first made by ``make(folder, log)`` if this machine has
    none yet: ``make`` fills ``folder`` (renamed to ``<cache>/<name>`` once it returns)."""
    target = cache_root() / name
    done = target / product
    if done.exists():
        return done
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one make per machine, even with two test runs
        if done.exists():
            return done
        log = target.parent / f"{name}.log"
        log.write_text("")
        work = Path(tempfile.mkdtemp(prefix=name + ".tmp-", dir=target.parent))
        try:
            make(work, log)
            work.rename(target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return done
