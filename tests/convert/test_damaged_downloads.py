"""A damaged or odd download is refused with a message that says what to do, before writing.

What a cut download, a wrong file or a template kept elsewhere looks like to the converter:
convert/safetensors_source.py (short shard, truncated or unreadable header, only .bin files, a
quantized dtype) and convert/vocab.py (where the chat template is found).
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import gguf
import pytest

from convert import ConversionError, convert_checkpoint
from convert.errors import MissingFileError

CHECKPOINT = Path(__file__).resolve().parent.parent / "fixtures" / "tiny-qwen25vl" / "checkpoint"
SHARD = "model-00002-of-00002.safetensors"


@pytest.fixture
def src(tmp_path: Path) -> Path:
    return Path(shutil.copytree(CHECKPOINT, tmp_path / "checkpoint"))


def convert(src: Path, out: Path) -> Path:
    return convert_checkpoint(src, out, quant="F16", name="tiny").text_gguf


def refused(src: Path, out: Path, error: type[Exception], message: str) -> str:
    with pytest.raises(error, match=message) as caught:
        convert(src, out)
    assert not out.exists() or list(out.iterdir()) == []
    return str(caught.value)


def header_length(path: Path) -> int:
    return struct.unpack("<Q", path.read_bytes()[:8])[0]


def test_a_shard_shorter_than_its_header_says(src: Path, tmp_path: Path) -> None:
    shard = src / SHARD
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) - 1000])  # a download cut near the end
    message = refused(
        src, tmp_path / "out", ConversionError, rf"{SHARD} is truncated \(.* runs past"
    )
    assert message.endswith("download it again")


def test_a_header_cut_short(src: Path, tmp_path: Path) -> None:
    shard = src / SHARD
    shard.write_bytes(shard.read_bytes()[: 8 + header_length(shard) // 2])
    refused(src, tmp_path / "out", ConversionError, rf"{SHARD} is truncated or not a safetensors")


def test_a_file_shorter_than_the_header_length(src: Path, tmp_path: Path) -> None:
    (src / SHARD).write_bytes(b"\x10\x00")
    refused(src, tmp_path / "out", ConversionError, r"shorter than 8 bytes.*download it again")


def test_an_unreadable_header(src: Path, tmp_path: Path) -> None:
    shard = src / SHARD
    data = bytearray(shard.read_bytes())
    data[8:20] = b"\xff\xfe{garbage!!"  # not JSON, not even UTF-8
    shard.write_bytes(bytes(data))
    refused(src, tmp_path / "out", ConversionError, r"not a safetensors file \(unreadable header\)")


def test_a_folder_holding_only_bin_files(src: Path, tmp_path: Path) -> None:
    for path in src.glob("model*.safetensors*"):
        path.unlink()
    (src / "pytorch_model.bin").write_bytes(b"\x80\x02pickle")
    message = refused(src, tmp_path / "out", MissingFileError, "holds no .safetensors weights")
    assert "pytorch_model.bin: download the safetensors version" in message


def test_a_quantized_checkpoint(src: Path, tmp_path: Path) -> None:
    """A bitsandbytes/GPTQ re-upload stores packed U8/I32 tensors: the converter needs the
    original 16-bit weights."""
    shard = src / SHARD
    data = shard.read_bytes()
    length = header_length(shard)
    header = data[8 : 8 + length]
    first = header.index(b'"BF16"')
    packed = header[:first] + b'"U8"  ' + header[first + 6 :]  # JSON allows the spaces
    shard.write_bytes(data[:8] + packed + data[8 + length :])
    message = refused(src, tmp_path / "out", ConversionError, rf"in {SHARD} is stored as U8")
    assert "use the original, unquantized checkpoint" in message


def template_of(path: Path) -> str:
    return gguf.GGUFReader(path).fields["tokenizer.chat_template"].contents()


def move_template(src: Path) -> str:
    config = json.loads((src / "tokenizer_config.json").read_text())
    template = config.pop("chat_template")
    (src / "tokenizer_config.json").write_text(json.dumps(config))
    return template


def test_chat_template_from_named_templates(src: Path, tmp_path: Path) -> None:
    template = move_template(src)
    config = json.loads((src / "tokenizer_config.json").read_text())
    config["chat_template"] = [
        {"name": "tool_use", "template": "{{ 'tools' }}"},
        {"name": "default", "template": template},
    ]
    (src / "tokenizer_config.json").write_text(json.dumps(config))
    assert template_of(convert(src, tmp_path / "out")) == template


def test_chat_template_from_chat_template_jinja(src: Path, tmp_path: Path) -> None:
    template = move_template(src)  # transformers >= 4.43 saves it beside the tokenizer
    (src / "chat_template.jinja").write_text(template)
    assert template_of(convert(src, tmp_path / "out")) == template


def test_chat_template_from_chat_template_json(src: Path, tmp_path: Path) -> None:
    template = move_template(src)  # processors save it as chat_template.json
    (src / "chat_template.json").write_text(json.dumps({"chat_template": template}))
    assert template_of(convert(src, tmp_path / "out")) == template


def test_no_chat_template_anywhere(src: Path, tmp_path: Path) -> None:
    move_template(src)
    message = refused(src, tmp_path / "out", MissingFileError, "has no chat template")
    assert "copy tokenizer_config.json from Qwen/Qwen2.5-VL-7B-Instruct" in message
