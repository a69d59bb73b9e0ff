"""Build llama.cpp's own server, ``llama-server``, once per machine, for the server-backend tests.

The sources are those of the pinned llama-cpp-python (its sdist vendors llama.cpp, ``tools/server``
included), so the C++ server and the embedded engine run the same llama.cpp. Only the server's
own code is compiled (llama-common, the server, cpp-httplib): it links against the installed
wheel's ``libllama``/``libmtmd``/``libggml*`` instead of building ggml a second time. CMake's
Makefile generator builds each ``TARGET/fast`` without its dependencies; the wheel's libraries
stand in the build tree where the ``llama``/``mtmd``/``ggml`` targets would have put theirs
(the same sources and version, so the same headers and ABI).

The result lives in the user cache folder (``~/.cache/storyteller-test/llama-server-<version>-
<key>``, never in the clone), keyed by the version, the CMake flags and the wheel's libllama, and
is made in a temporary folder renamed into place. ``.ci/run`` calls this before pytest so the
build's time shows on its own line; the tests' fixture calls it too (then it is a cache hit).

Usage: ``python tests/llama_server_build.py`` prints the binary's path (building it if needed).
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

PACKAGE = "llama-cpp-python"
# The server only; no web UI (LLAMA_USE_PREBUILT_UI would download its assets at build time) and
# no HTTPS (the tests talk to 127.0.0.1). GGML_NATIVE=OFF matches the wheel's portable build.
CMAKE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=ON",
    "-DGGML_NATIVE=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_APP=OFF",
    # The binary finds llama-common and the wheel's libraries beside itself.
    "-DCMAKE_BUILD_RPATH=$ORIGIN",
)
# In dependency order; each is built with ``make TARGET/fast`` (without its dependencies).
TARGETS = (
    "llama-ui-assets",
    "llama-ui",
    "cpp-httplib",
    "llama-common-base",
    "llama-common",
    "server-context",
    "llama-server-impl",
    "llama-server",
)


class BuildError(RuntimeError):
    """llama-server could not be built; the message says which step and where its log is."""


def wheel_lib_dir() -> Path:
    """The installed llama-cpp-python's shared libraries (found without loading them)."""
    import importlib.util

    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        raise BuildError("llama-cpp-python is not installed: pip install -e '.[test]'")
    lib = Path(next(iter(spec.submodule_search_locations))) / "lib"
    if not (lib / "libllama.so").is_file():
        raise BuildError(f"{lib} has no libllama.so: llama-cpp-python was built without it")
    return lib


def cache_root() -> Path:
    from platformdirs import user_cache_dir

    return Path(os.environ.get("STORYTELLER_TEST_CACHE") or user_cache_dir("storyteller-test"))


def build_key(version: str, lib_dir: Path) -> str:
    digest = hashlib.sha256()
    digest.update(version.encode())
    digest.update("\0".join(CMAKE_FLAGS + TARGETS).encode())
    digest.update((lib_dir / "libllama.so").read_bytes())
    return digest.hexdigest()[:12]


def server_dir() -> Path:
    version = importlib.metadata.version(PACKAGE)
    return cache_root() / f"llama-server-{version}-{build_key(version, wheel_lib_dir())}"


def _run(command: list[str], log: Path, cwd: Path | None = None) -> None:
    with open(log, "ab") as out:
        out.write(("\n$ " + " ".join(command) + "\n").encode())
        out.flush()
        done = subprocess.run(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise BuildError(f"{' '.join(command[:3])} failed ({done.returncode}); log {log}:\n{tail}")


def _sources(version: str, work: Path, log: Path) -> Path:
    """The sdist's llama.cpp tree (pip downloads the sdist, or takes it from its cache)."""
    download = work / "sdist"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-binary",
            ":all:",
            "--no-deps",
            f"{PACKAGE}=={version}",
            "-d",
            str(download),
        ],
        log,
    )
    archive = next(download.glob("*.tar.gz"))
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if "/vendor/llama.cpp/" in m.name + "/"]
        tar.extractall(work / "src", members=members, filter="data")
    archive.unlink()
    (tree,) = (work / "src").glob("*/vendor/llama.cpp")
    return tree


def _build(target: Path, log: Path) -> None:
    version = importlib.metadata.version(PACKAGE)
    lib_dir = wheel_lib_dir()
    work = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
    try:
        tree = _sources(version, work, log)
        build = work / "build"
        nice = ["nice", "-n", "10"] if shutil.which("nice") else []
        _run(
            ["cmake", "-S", str(tree), "-B", str(build), "-G", "Unix Makefiles", *CMAKE_FLAGS],
            log,
        )
        (build / "bin").mkdir(exist_ok=True)
        for library in lib_dir.glob("lib*.so*"):
            shutil.copy2(library, build / "bin" / library.name)
        jobs = str(os.cpu_count() or 2)
        for name in TARGETS:
            _run([*nice, "make", "-j", jobs, f"{name}/fast"], log, cwd=build)
        binary = work / "bin"
        binary.mkdir()
        for item in (build / "bin").iterdir():
            if item.name == "llama-server" or item.name.startswith("lib"):
                shutil.copy2(item, binary / item.name, follow_symlinks=False)
        _run([str(binary / "llama-server"), "--version"], log)
        shutil.rmtree(build)
        shutil.rmtree(work / "src")
        work.rename(target)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


def ensure_llama_server(*, quiet: bool = False) -> Path:
    """The cached ``llama-server`` binary, built first if this machine has none yet."""
    target = server_dir()
    binary = target / "bin" / "llama-server"
    if binary.is_file():
        return binary
    target.parent.mkdir(parents=True, exist_ok=True)
    log = target.parent / f"{target.name}.log"
    with open(target.parent / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build per machine, even with two test runs
        if binary.is_file():
            return binary
        for tool in ("cmake", "make", "c++"):
            if shutil.which(tool) is None:
                raise BuildError(f"building llama-server needs {tool}: apt-get install cmake g++")
        if not quiet:
            print(f"building llama-server into {target} (log {log})", file=sys.stderr, flush=True)
        log.write_text("")
        started = time.monotonic()
        _build(target, log)
        if not quiet:
            minutes = (time.monotonic() - started) / 60
            print(f"built llama-server in {minutes:.1f} min", file=sys.stderr, flush=True)
    return binary


if __name__ == "__main__":
    try:
        print(ensure_llama_server())
    except BuildError as err:
        print(f"llama_server_build: {err}", file=sys.stderr)
        sys.exit(1)
