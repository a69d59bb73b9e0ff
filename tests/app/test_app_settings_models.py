"""Settings on disk, the model catalog, discovery and verification, GGUF pairing checks."""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from desktop_app import paths
from desktop_app.app.settings import Settings, load_settings, save_settings
from desktop_app.engine.api import Detail, Preset
from desktop_app.engine.gguf_info import (
    ModelFileError,
    check_pair,
    read_projector_info,
    read_text_model_info,
)
from desktop_app.engine.model_files import (
    ModelFiles,
    default_model,
    find_models,
    load_catalog,
    verify,
)

if TYPE_CHECKING:
    from conftest import TinyModel


def test_settings_round_trip(storyteller_home: Path) -> None:
    settings = Settings(
        model_path=Path("/models/a.gguf"),
        mmproj_path=Path("/models/mmproj-a.gguf"),
        detail=Detail.HIGH,
        preset=Preset.FAITHFUL,
        n_threads=4,
        seed=7,
        strict_format=True,
        speculation=False,
    )
    save_settings(settings)
    assert paths.settings_file().is_file()
    assert load_settings() == settings


def test_missing_settings_are_the_defaults() -> None:
    assert load_settings() == Settings()


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", ""])
def test_corrupt_settings_give_defaults_and_a_warning(
    content: str, caplog: pytest.LogCaptureFixture
) -> None:
    paths.settings_file().parent.mkdir(parents=True, exist_ok=True)
    paths.settings_file().write_text(content)
    with caplog.at_level(logging.WARNING):
        assert load_settings() == Settings()
    assert "using defaults" in caplog.text


def test_bad_values_fall_back_one_by_one(caplog: pytest.LogCaptureFixture) -> None:
    paths.settings_file().parent.mkdir(parents=True, exist_ok=True)
    paths.settings_file().write_text(
        json.dumps({"detail": "ultra", "n_threads": "many", "seed": 3, "colour": "red"})
    )
    with caplog.at_level(logging.WARNING):
        settings = load_settings()
    assert settings == Settings(seed=3)
    assert "detail" in caplog.text and "n_threads" in caplog.text and "colour" in caplog.text


def test_catalog_lists_the_known_variants_default_first() -> None:
    catalog = load_catalog()
    assert [entry.quant for entry in catalog][:1] == ["Q4_K_M"]
    assert {entry.quant for entry in catalog} == {"Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0", "F16"}
    sizes = {entry.quant: entry.size_bytes for entry in catalog}
    assert sizes["Q4_K_M"] < sizes["Q5_K_M"] < sizes["Q6_K"] < sizes["Q8_0"] < sizes["F16"]
    for entry in catalog:
        assert entry.source == "daniel3303/QwenStoryteller"
        assert entry.ram_bytes > entry.size_bytes + entry.mmproj_size_bytes
        assert entry.file.endswith(f"-{entry.quant}.gguf") and "mmproj" in entry.mmproj_file


@pytest.fixture
def model_folder(tmp_path: Path, tiny_model: TinyModel) -> Path:
    folder = paths.user_models_dir() / "tiny"
    folder.mkdir(parents=True)
    for source in (tiny_model.text_gguf, tiny_model.mmproj_gguf, tiny_model.manifest_path):
        shutil.copy(source, folder / source.name)
    return folder


def test_models_are_found_and_paired_by_manifest(model_folder: Path, tiny_model: TinyModel) -> None:
    (found,) = [m for m in find_models() if m.text_path.parent == model_folder]
    assert found.text_path.name == tiny_model.text_gguf.name
    assert found.mmproj_path.name == tiny_model.mmproj_gguf.name
    assert found.manifest is not None and found.quant == "F16"
    assert default_model() == found
    verify(found, sha256=True)


def test_loose_gguf_files_are_paired_by_name(tmp_path: Path, tiny_model: TinyModel) -> None:
    folder = tmp_path / "loose"
    folder.mkdir()
    shutil.copy(tiny_model.text_gguf, folder / "story-Q8_0.gguf")
    shutil.copy(tiny_model.mmproj_gguf, folder / "mmproj-story-F16.gguf")
    (found,) = find_models([tmp_path])
    assert (found.text_path.name, found.mmproj_path.name) == (
        "story-Q8_0.gguf",
        "mmproj-story-F16.gguf",
    )
    assert found.manifest is None


def test_verify_catches_a_cut_short_or_damaged_file(model_folder: Path) -> None:
    (model,) = find_models([model_folder.parent])
    data = model.mmproj_path.read_bytes()
    model.mmproj_path.write_bytes(data[:-10])
    with pytest.raises(ModelFileError, match="copy cut short"):
        verify(model)
    model.mmproj_path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    verify(model)  # same size: only sha256 notices
    with pytest.raises(ModelFileError, match="damaged file"):
        verify(model, sha256=True)


def test_gguf_metadata_pairs_text_and_projector(tiny_model: TinyModel) -> None:
    text = read_text_model_info(tiny_model.text_gguf)
    projector = read_projector_info(tiny_model.mmproj_gguf)
    assert text.architecture == "qwen2vl"
    assert text.embedding_length == projector.projection_dim == 256
    assert text.chat_template and "<|im_start|>" in text.chat_template
    check_pair(text, projector)


def test_a_projector_of_another_width_is_refused(tmp_path: Path, tiny_model: TinyModel) -> None:
    import gguf

    other = tmp_path / "mmproj-other.gguf"
    writer = gguf.GGUFWriter(str(other), "clip")
    writer.add_uint32("clip.vision.projection_dim", 3584)
    writer.add_string("clip.projector_type", "qwen2.5vl_merger")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ModelFileError, match="does not belong to"):
        check_pair(read_text_model_info(tiny_model.text_gguf), read_projector_info(other))


def test_projector_width_falls_back_to_the_merger_bias(tmp_path: Path) -> None:
    import gguf
    import numpy as np

    older = tmp_path / "mmproj-older.gguf"
    writer = gguf.GGUFWriter(str(older), "clip")
    writer.add_string("clip.projector_type", "qwen2.5vl_merger")
    writer.add_tensor("mm.2.bias", np.zeros(3584, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert read_projector_info(older).projection_dim == 3584


def test_metadata_of_a_full_size_tokenizer_reads_fast(tmp_path: Path) -> None:
    import time

    import gguf

    big = tmp_path / "big.gguf"
    writer = gguf.GGUFWriter(str(big), "qwen2vl")
    writer.add_uint32("qwen2vl.embedding_length", 3584)
    writer.add_uint32("qwen2vl.context_length", 128000)
    writer.add_token_list([f"t{i}".encode() for i in range(152_064)])
    writer.add_token_types([1] * 152_064)
    writer.add_string("tokenizer.chat_template", "{{ messages }}")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    started = time.perf_counter()
    info = read_text_model_info(big)
    assert time.perf_counter() - started < 3  # gguf-py's reader takes ~15 s here
    assert (info.embedding_length, info.context_length) == (3584, 128000)
    assert info.chat_template == "{{ messages }}"


def test_swapped_files_and_non_gguf_are_explained(tmp_path: Path, tiny_model: TinyModel) -> None:
    with pytest.raises(ModelFileError, match="swap --model and --mmproj"):
        read_text_model_info(tiny_model.mmproj_gguf)
    with pytest.raises(ModelFileError, match="not a vision projector"):
        read_projector_info(tiny_model.text_gguf)
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGUF" + b"\xff" * 40)
    with pytest.raises(ModelFileError, match="not a readable GGUF"):
        read_text_model_info(junk)
    with pytest.raises(ModelFileError, match="does not exist"):
        read_text_model_info(tmp_path / "none.gguf")


def test_model_files_describe_themselves(tiny_model: TinyModel) -> None:
    files = ModelFiles(tiny_model.text_gguf, tiny_model.mmproj_gguf, tiny_model.manifest)
    assert files.name == "tiny-qwen25vl" and "F16" in files.describe()


def test_a_given_model_finds_its_partner_and_manifest(
    tiny_model: TinyModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from desktop_app.app.backends import NoModelError, resolve_model

    shutil.copytree(tiny_model.directory, tmp_path / "model")
    text, mmproj = tiny_model.text_gguf.name, tiny_model.mmproj_gguf.name
    monkeypatch.setenv("HOME", str(tmp_path))
    alone = resolve_model(Path("~/model") / text, None)
    assert alone.mmproj_path == tmp_path / "model" / mmproj and alone.manifest is not None
    # Both given, the way a shell leaves a quoted "~": the manifest still comes with them.
    pair = resolve_model(Path("~/model") / text, Path("~/model") / mmproj)
    assert pair.manifest == alone.manifest
    (tmp_path / "lone").mkdir()
    shutil.copy(tiny_model.text_gguf, tmp_path / "lone" / text)
    with pytest.raises(NoModelError, match="pass --mmproj"):
        resolve_model(tmp_path / "lone" / text, None)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_settings_holding_an_api_key_are_readable_by_their_owner_only() -> None:
    save_settings(Settings(server_url="http://127.0.0.1:8080", api_key="sk-local"))
    assert stat.S_IMODE(paths.settings_file().stat().st_mode) == 0o600
    assert load_settings().api_key == "sk-local"


def test_the_catalog_knows_both_checkpoints_and_recommends_qwenstoryteller2_first() -> None:
    from desktop_app.engine.model_files import load_checkpoints

    checkpoints = load_checkpoints()
    assert [c.repo for c in checkpoints] == [
        "daniel3303/QwenStoryteller2",
        "daniel3303/QwenStoryteller",
    ]
    assert checkpoints[0].default and not checkpoints[1].default
    assert "DPO" in checkpoints[0].note
    assert "97.5%" in checkpoints[0].why and "0.31" in checkpoints[0].why
