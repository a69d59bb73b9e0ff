"""The two real servers the server backend is tested against, started on 127.0.0.1 with the tiny
model: llama-cpp-python's ``python -m llama_cpp.server`` and llama.cpp's own ``llama-server``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

API_KEY = "tiny-secret"
FLAVOURS = ("llama-cpp-python", "llama-server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningServer:
    flavour: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str) -> Any:
        """``GET path`` as JSON (with the API key)."""
        request = urllib.request.Request(
            self.url + path, headers={"Authorization": f"Bearer {API_KEY}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def busy_slots(self) -> int:
        """How many of llama-server's slots are working on a request now (``/slots``)."""
        return sum(bool(slot.get("is_processing")) for slot in self.get("/slots"))


def _command(flavour: str, model: Any, binary: Path | None, port: int, parallel: int, ctx: int):
    if flavour == "llama-cpp-python":
        return [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model.text_gguf),
            "--clip_model_path",
            str(model.mmproj_gguf),
            "--chat_format",
            "mtmd",
            "--logits_all",
            "false",
            "--n_ctx",
            str(ctx),
            "--api_key",
            API_KEY,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
    assert binary is not None
    return [
        str(binary),
        "--model",
        str(model.text_gguf),
        "--mmproj",
        str(model.mmproj_gguf),
        "--ctx-size",
        str(ctx),
        "--parallel",
        str(parallel),
        "--threads",
        "2",
        "--api-key",
        API_KEY,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-warmup",
    ]


@contextmanager
def running_server(
    flavour: str,
    model: Any,
    folder: Path,
    *,
    binary: Path | None = None,
    parallel: int = 1,
    ctx: int = 4096,
) -> Iterator[RunningServer]:
    """Start a ``flavour`` server on the tiny model; stop it on exit (if it still runs)."""
    port = free_port()
    log = folder / f"{flavour}.log"
    command = _command(flavour, model, binary, port, parallel, ctx)
    with open(log, "wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=os.environ)
    server = RunningServer(flavour, f"http://127.0.0.1:{port}", process, log)
    # llama-server answers /health with 503 while it loads; llama-cpp-python has /v1/models.
    probe = "/health" if flavour == "llama-server" else "/v1/models"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"{flavour} exited: {log.read_text(errors='replace')[-2000:]}")
            try:
                server.get(probe)
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
                if time.monotonic() > deadline:
                    pytest.fail(f"{flavour} did not start: {log.read_text()[-2000:]}")
                time.sleep(0.3)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
