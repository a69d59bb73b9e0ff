"""``storyteller doctor``: what this installation can run, and whether the models load.

Versions, the llama.cpp build's compiled backends and devices, CPU cores and memory, the
configured and discovered models (sizes checked against their manifests) and whether each loads
— tried in a child process, because llama.cpp aborts the whole process on some malformed files.
With ``--model``/``--mmproj`` (or ``--try-story``) a one-photo story is generated with timings.
(``storyteller --self-test`` is the other check: does this installation work at all.)
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from desktop_app.cli.exit_codes import EXIT_FAILED, EXIT_OK
from desktop_app.errors import StorytellerError

PROBE_TIMEOUT_S = 600


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _gib(value: int | None) -> str:
    if not value:
        return "unknown"
    return f"{value / 2**30:.1f} GiB" if value >= 2**30 else f"{value / 2**20:.1f} MiB"


def probe(text_gguf: Path, mmproj_gguf: Path, try_story: bool) -> dict[str, Any]:
    """Load a model (and optionally tell a one-photo story); runs in the child process."""
    from PIL import Image

    from desktop_app.app.telling import TellOptions
    from desktop_app.cli.options import tell_to_end
    from desktop_app.engine.api import Detail, SamplingParams
    from desktop_app.engine.llama_backend import LlamaCppBackend

    report: dict[str, Any] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="storyteller-doctor-") as folder:
        backend = LlamaCppBackend(text_gguf, mmproj_gguf, cache_dir=Path(folder) / "cache")
        try:
            backend.preload(1024)
            report["load_s"] = round(time.perf_counter() - started, 3)
            report["backend"] = backend.description
            if try_story:
                photo = Path(folder) / "try-story.png"
                gradient = Image.linear_gradient("L").resize((224, 168)).convert("RGB")
                gradient.save(photo)
                options = TellOptions(
                    detail=Detail.AS_TRAINED, sampling=SamplingParams(max_tokens=32, seed=1)
                )
                result = tell_to_end(backend, options, [photo]).result
                report["try_story"] = {
                    "photo": [224, 168],
                    "output_chars": len(result.raw_output),
                    "finish_reason": result.finish_reason.value,
                    "timings": result.timings.to_dict(),
                }
        finally:
            backend.close()
    return report


def _probe_in_child(text_gguf: Path, mmproj_gguf: Path, try_story: bool) -> dict[str, Any]:
    text_gguf, mmproj_gguf = Path(text_gguf).resolve(), Path(mmproj_gguf).resolve()
    command = [sys.executable, "-m", "desktop_app.cli.doctor_cmd", "--probe", str(text_gguf)]
    command += [str(mmproj_gguf)] + (["--try-story"] if try_story else [])
    import desktop_app

    # The child must import this same desktop_app (a source checkout is not installed).
    root = str(Path(desktop_app.__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
            check=False,
            env=env,
            cwd=root,  # python -m puts its folder first on sys.path: never the user's
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"loading took more than {PROBE_TIMEOUT_S} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode == 0 and lines:
        return {"ok": True, **json.loads(lines[-1])}
    if lines:
        return {"ok": False, **json.loads(lines[-1])}
    tail = done.stderr.strip().splitlines()[-3:]
    return {
        "ok": False,
        "error": f"the loader crashed (exit {done.returncode}): " + " | ".join(tail),
    }


def collect(args: argparse.Namespace) -> dict[str, Any]:
    """Everything ``doctor`` reports, as data."""
    from desktop_app import __version__, paths
    from desktop_app.app.backends import resolve_model
    from desktop_app.app.settings import load_settings
    from desktop_app.engine import costs, device
    from desktop_app.engine.model_files import ModelFiles, find_models, verify

    settings = load_settings()
    report: dict[str, Any] = {
        "versions": {
            "storyteller": __version__,
            "python": platform.python_version(),
            **{
                name: _version(name)
                for name in (
                    "llama-cpp-python",
                    "gguf",
                    "numpy",
                    "pillow",
                    "pi-heif",
                    "openai",
                    "PySide6-Essentials",
                )
            },
        },
        "platform": platform.platform(),
        "compiled_backends": list(device.compiled_backends()),
        "gpu_offload": device.gpu_offload_supported(),
        "accelerator": device.accelerator(),
        "devices": [
            {
                "name": d.name,
                "description": d.description,
                "kind": d.kind,
                "memory_total": d.memory_total,
            }
            for d in device.devices()
        ],
        "physical_cores": device.physical_cores(),
        "memory_bytes": costs.physical_memory_bytes(),
        "settings_file": str(paths.settings_file()),
        "model_folders": [str(p) for p in paths.model_search_dirs()],
        "server_url": settings.server_url,
        "models": [],
    }
    candidates: list[tuple[str, ModelFiles | None, str | None]] = []
    if args.model is not None:
        try:
            candidates.append(("given", resolve_model(args.model, args.mmproj), None))
        except StorytellerError as err:
            candidates.append(("given", None, str(err)))
    else:
        if settings.model_path is not None:
            try:
                candidates.append(
                    ("configured", resolve_model(settings.model_path, settings.mmproj_path), None)
                )
            except StorytellerError as err:
                candidates.append(("configured", None, str(err)))
        candidates.extend(("found", model, None) for model in find_models())
    for role, model, error in candidates:
        entry: dict[str, Any] = {"role": role}
        if model is None:
            entry.update(ok=False, error=error)
        else:
            entry.update(
                name=model.name,
                quant=model.quant,
                text=str(model.text_path),
                mmproj=str(model.mmproj_path),
                size_bytes=model.size_bytes,
            )
            try:
                verify(model, sha256=args.sha256)
                entry.update(_probe_in_child(model.text_path, model.mmproj_path, args.try_story))
            except StorytellerError as err:
                entry.update(ok=False, error=str(err))
        report["models"].append(entry)
    return report


def _print_report(report: dict[str, Any]) -> None:
    versions = report["versions"]
    print("Storyteller " + versions["storyteller"] + f" on Python {versions['python']}")
    print(
        "  "
        + ", ".join(f"{k} {v}" for k, v in versions.items() if k not in {"storyteller", "python"})
    )
    print(f"platform: {report['platform']}")
    print(
        f"llama.cpp backends: {', '.join(report['compiled_backends']) or 'unknown'}; "
        f"running on {report['accelerator']}"
        + ("" if report["gpu_offload"] else " (this build has no GPU offload)")
    )
    for dev in report["devices"]:
        print(
            f"  device {dev['name']} ({dev['kind']}): {dev['description']}, "
            f"{_gib(dev['memory_total'])}"
        )
    print(f"CPU: {report['physical_cores']} physical cores; memory {_gib(report['memory_bytes'])}")
    print(f"settings: {report['settings_file']}")
    print(f"model folders: {', '.join(report['model_folders'])}")
    if report["server_url"]:
        print(f"server configured: {report['server_url']}")
    if not report["models"]:
        print(
            "models: none found: `storyteller-convert daniel3303/QwenStoryteller2` downloads and "
            "converts the recommended model (QwenStoryteller2; daniel3303/QwenStoryteller also "
            "works), or use the app's first-run guide; see models/README.md"
        )
    for model in report["models"]:
        label = model.get("name", "model")
        if not model.get("ok"):
            print(f"model [{model['role']}] {label}: FAILED: {model.get('error')}")
            continue
        print(
            f"model [{model['role']}] {label} ({model.get('quant') or '?'}, "
            f"{_gib(model.get('size_bytes'))}): loads in {model['load_s']:.2f} s on "
            f"{model['backend']}"
        )
        test = model.get("try_story")
        if test:
            timings = test["timings"]
            encode = sum(timings["encode_s"])
            print(
                f"  one-photo story ({test['photo'][0]}x{test['photo'][1]} photo): encode "
                f"{encode:.2f} s, prompt {timings['prompt_eval_s']:.2f} s, first token "
                f"{timings['first_token_s']:.2f} s, {timings['tokens_per_s']:.1f} tokens/s "
                f"({timings['generated_tokens']} tokens, {test['finish_reason']})"
            )


def _doctor(args: argparse.Namespace) -> int:
    if args.mmproj is not None and args.model is None:
        raise StorytellerError("--mmproj needs --model (the text GGUF it belongs to)")
    if args.model is not None:
        args.try_story = True
    report = collect(args)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_report(report)
    return EXIT_OK if all(m.get("ok") for m in report["models"]) else EXIT_FAILED


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``storyteller doctor``."""
    parser = subparsers.add_parser(
        "doctor",
        help="check the installation, GPU support and models",
        description="Report versions, llama.cpp backends, devices and models (loaded in a "
        "child process). With --model/--mmproj, also tell a one-photo story with timings.",
    )
    parser.add_argument("--model", type=Path, metavar="GGUF", help="text model to try")
    parser.add_argument("--mmproj", type=Path, metavar="GGUF", help="its vision projector")
    parser.add_argument(
        "--try-story", action="store_true", help="one-photo story with every model found"
    )
    # Its old name, before `storyteller --self-test` (the installation check) was the only one.
    parser.add_argument(
        "--self-test", dest="try_story", action="store_true", help=argparse.SUPPRESS
    )
    parser.add_argument("--sha256", action="store_true", help="also check the files' sha256")
    parser.add_argument("--json", action="store_true", help="machine-readable report")
    parser.set_defaults(func=_doctor)


def _probe_main(argv: list[str]) -> int:
    """Child-process entry: ``--probe TEXT MMPROJ [--try-story]``; prints one JSON line."""
    import logging

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    text, mmproj = Path(argv[1]), Path(argv[2])
    try:
        report = probe(text, mmproj, "--try-story" in argv)
    except StorytellerError as err:
        print(json.dumps({"error": str(err)}))
        return EXIT_FAILED
    print(json.dumps(report))
    return EXIT_OK


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "--probe":
        sys.exit(_probe_main(sys.argv[1:]))
    sys.exit(EXIT_FAILED)
