"""A Python environment with xgrammar, vLLM's default structured-output backend, for one check:
the strict-format grammar a vLLM server is sent compiles there and holds (tests/engine/
test_engine_grammar_vllm.py).

xgrammar declares torch, transformers and triton, and imports torch and transformers on import
(its testing helpers and its Hugging Face tokenizer bridge). They are far too large for the test
venv, from which the bundle is built, so they live in a venv of their own, made once per machine
in the user cache folder (``~/.cache/storyteller-test/xgrammar-<key>``, never in the clone) and
renamed into place when complete. torch is the CPU build this machine keeps on disk (``pip
install torch==2.13.0`` takes that file); triton is left out: only xgrammar's GPU kernels use it.
``.ci/run`` calls this before pytest so its time shows on its own line.

Usage: ``python tests/xgrammar_env.py`` prints the environment's python (making it if needed).
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

from llama_server_build import cache_root

# What vLLM's xgrammar backend runs (v0.12 and later); the rest as xgrammar 0.2.9 asks.
XGRAMMAR = "xgrammar==0.2.9"
REQUIREMENTS = (
    "torch==2.13.0",
    "transformers==5.25.0",
    "apache-tvm-ffi==0.1.15.post2",
    "pydantic==2.14.4",
)


class SetupError(RuntimeError):
    """The environment could not be made; the log's tail says why."""


def env_dir() -> Path:
    key = hashlib.sha256("\n".join((XGRAMMAR, *REQUIREMENTS)).encode()).hexdigest()[:12]
    return cache_root() / f"xgrammar-{key}"


def _pip(python: Path, args: list[str], log: Path) -> None:
    with open(log, "ab") as output:
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *args],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise SetupError(f"pip install {' '.join(args)} failed (log {log}):\n{tail}")


def ensure_xgrammar_python() -> Path:
    """The cached environment's python, made first if this machine has none yet."""
    target = env_dir()
    python = target / "bin" / "python"
    if python.exists():
        return python
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one set-up per machine, even with two test runs
        if python.exists():
            return python
        log = target.parent / f"{target.name}.log"
        log.write_text("")
        work = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
        try:
            # Only ever run as ``bin/python`` (pip as ``-m pip``), so the venv may be renamed.
            venv.create(work, with_pip=True, clear=True)
            made = work / "bin" / "python"
            _pip(made, list(REQUIREMENTS), log)
            _pip(made, ["--no-deps", XGRAMMAR], log)
            check = subprocess.run([str(made), "-c", "import xgrammar"], capture_output=True)
            if check.returncode != 0:
                raise SetupError(f"xgrammar does not import: {check.stderr.decode()[-2000:]}")
            work.rename(target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return python


if __name__ == "__main__":
    try:
        print(ensure_xgrammar_python())
    except SetupError as err:
        print(err, file=sys.stderr)
        sys.exit(1)
