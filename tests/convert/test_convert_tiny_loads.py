"""The converted tiny model runs in real llama.cpp: text + mmproj load and generate from a photo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from llama_probe import run_probe


@pytest.mark.slow
def test_tiny_model_generates_from_an_image(tiny_model, tiny_image: Path, tmp_path: Path) -> None:
    [result] = run_probe(
        [
            {
                "kind": "generate",
                "model": str(tiny_model.text_gguf),
                "mmproj": str(tiny_model.mmproj_gguf),
                "image": str(tiny_image),
                "max_tokens": 6,
            }
        ],
        tmp_path,
    )
    assert int(result["completion_tokens"]) > 0
    assert result["text"].strip()


def test_tiny_model_manifest_describes_the_files(tiny_model) -> None:
    manifest = json.loads(tiny_model.manifest_path.read_text())
    assert manifest == tiny_model.manifest
    assert manifest["quant"] == "F16" and manifest["mmproj_type"] == "f16"
    assert manifest["files"]["text"]["file"] == tiny_model.text_gguf.name
    assert "mmproj" in manifest["files"]["mmproj"]["file"]
    assert manifest["files"]["text"]["size"] == tiny_model.text_gguf.stat().st_size
    assert manifest["text_embedding_length"] == manifest["mmproj_projection_dim"] == 256
    assert sorted(p.name for p in tiny_model.directory.iterdir()) == sorted(
        [tiny_model.text_gguf.name, tiny_model.mmproj_gguf.name, "manifest.json"]
    )
