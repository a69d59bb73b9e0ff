"""A Python environment with xgrammar, vLLM's default structured-output backend, for one check:
the strict-format grammar a vLLM server is sent compiles there and holds (tests/engine/
test_engine_grammar_vllm.py).

xgrammar declares torch, transformers and triton, and imports torch and transformers on import
(its testing helpers and its Hugging Face tokenizer bridge). They are far too large for the test
venv, from which the bundle is built, so they live in a venv of their own, made once per machine
in the user cache folder (``~/.cache/storyteller-test/xgrammar-<key>``, tests/machine_cache.py).
torch is the CPU build this machine keeps on disk (``pip
install torch==2.13.0`` takes that file); triton is left out: only xgrammar's GPU kernels use it.
``.ci/run`` calls this before pytest so its time shows on its own line.

Usage: ``python tests/xgrammar_env.py`` prints the environment's python (making it if needed).
"""

from __future__ import annotations

import hashlib
import sys
import venv
from pathlib import Path

from machine_cache import SetupError, made_once, run_logged

# What vLLM's xgrammar backend runs (v0.12 and later); the rest as xgrammar 0.2.9 asks.
XGRAMMAR = "xgrammar==0.2.9"
REQUIREMENTS = (
    "torch==2.13.0",
    "transformers==5.25.0",
    "apache-tvm-ffi==0.1.15.post2",
    "pydantic==2.14.4",
)


def env_name() -> str:
    """The cache folder's name, keyed by what is installed in it."""
    key = hashlib.sha256("\n".join((XGRAMMAR, *REQUIREMENTS)).encode()).hexdigest()[:12]
    return f"xgrammar-{key}"


def _make(work: Path, log: Path) -> None:
    # Only ever run as ``bin/python`` (pip as ``-m pip``), so the venv may be renamed.
    venv.create(work, with_pip=True, clear=True)
    python = str(work / "bin" / "python")
    run_logged([python, "-m", "pip", "install", "-q", *REQUIREMENTS], log)
    run_logged([python, "-m", "pip", "install", "-q", "--no-deps", XGRAMMAR], log)
    run_logged([python, "-c", "import xgrammar"], log)


def ensure_xgrammar_python() -> Path:
    """The cached environment's python, made first if this machine has none yet."""
    return made_once(env_name(), "bin/python", _make)


if __name__ == "__main__":
    try:
        print(ensure_xgrammar_python())
    except SetupError as err:
        print(err, file=sys.stderr)
        sys.exit(1)
