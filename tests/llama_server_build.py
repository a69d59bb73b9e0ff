"""Build llama.cpp's own server, ``llama-server``, once per machine, for the server-backend tests.

The sources are those of the pinned llama-cpp-python (its sdist vendors llama.cpp, ``tools/server``
included), so the C++ server and the embedded engine run the same llama.cpp. Only the server's
own code is compiled (llama-common, the server, cpp-httplib): it links against the installed
wheel's ``libllama``/``libmtmd``/``libggml*`` instead of building ggml a second time. CMake's
Makefile generator builds each ``TARGET/fast`` without its dependencies; the wheel's libraries
stand in the build tree where the ``llama``/``mtmd``/``ggml`` targets would have put theirs
(the same sources and version, so the same headers and ABI).

The result lives in the user cache folder (``~/.cache/storyteller-test/llama-server-<version>-
<key>``, tests/machine_cache.py), keyed by the version, the CMake flags and the wheel's libllama.
``.ci/run`` calls this before pytest so the
build's time shows on its own line; the tests' fixture calls it too (then it is a cache hit).

Usage: ``python tests/llama_server_build.py`` prints the binary's path (building it if needed).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import sys
import tarfile
import time
from pathlib import Path

from machine_cache import SetupError, cache_root, made_once, run_logged

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


class BuildError(SetupError):
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


def build_key(version: str, lib_dir: Path) -> str:
    digest = hashlib.sha256()
    digest.update(version.encode())
    digest.update("\0".join(CMAKE_FLAGS + TARGETS).encode())
    digest.update((lib_dir / "libllama.so").read_bytes())
    return digest.hexdigest()[:12]


def server_name() -> str:
    """The cache folder's name: the version and what the build is made from."""
    version = importlib.metadata.version(PACKAGE)
    return f"llama-server-{version}-{build_key(version, wheel_lib_dir())}"


def _sources(version: str, work: Path, log: Path) -> Path:
    """The sdist's llama.cpp tree (pip downloads the sdist, or takes it from its cache)."""
    download = work / "sdist"
    run_logged(
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


def _build(work: Path, log: Path) -> None:
    """Build the server in ``work``, leaving only ``work/bin`` (it and the libraries it runs on)."""
    for tool in ("cmake", "make", "c++"):
        if shutil.which(tool) is None:
            raise BuildError(f"building llama-server needs {tool}: apt-get install cmake g++")
    version = importlib.metadata.version(PACKAGE)
    lib_dir = wheel_lib_dir()
    tree = _sources(version, work, log)
    build = work / "build"
    nice = ["nice", "-n", "10"] if shutil.which("nice") else []
    run_logged(
        ["cmake", "-S", str(tree), "-B", str(build), "-G", "Unix Makefiles", *CMAKE_FLAGS],
        log,
    )
    (build / "bin").mkdir(exist_ok=True)
    for library in lib_dir.glob("lib*.so*"):
        shutil.copy2(library, build / "bin" / library.name)
    jobs = str(os.cpu_count() or 2)
    for name in TARGETS:
        run_logged([*nice, "make", "-j", jobs, f"{name}/fast"], log, cwd=build)
    binary = work / "bin"
    binary.mkdir()
    for item in (build / "bin").iterdir():
        if item.name == "llama-server" or item.name.startswith("lib"):
            shutil.copy2(item, binary / item.name, follow_symlinks=False)
    run_logged([str(binary / "llama-server"), "--version"], log)
    shutil.rmtree(build)
    shutil.rmtree(work / "src")


def ensure_llama_server(*, quiet: bool = False) -> Path:
    """The cached ``llama-server`` binary, built first if this machine has none yet."""
    name = server_name()

    def build(work: Path, log: Path) -> None:
        if not quiet:
            print(f"building llama-server into {cache_root() / name} (log {log})", file=sys.stderr)
        started = time.monotonic()
        _build(work, log)
        if not quiet:
            minutes = (time.monotonic() - started) / 60
            print(f"built llama-server in {minutes:.1f} min", file=sys.stderr, flush=True)

    return made_once(name, "bin/llama-server", build)


if __name__ == "__main__":
    try:
        print(ensure_llama_server())
    except SetupError as err:
        print(f"llama_server_build: {err}", file=sys.stderr)
        sys.exit(1)
