"""The tokenizer and chat template, read from tokenizer.json + tokenizer_config.json.

llama.cpp wants (docs/llamacpp.md 1, the tokenizer keys): model ``gpt2`` (byte-level BPE) with pre-tokenizer ``qwen2``; one
token string per embedding row (unique; ids the tokenizer does not define become ``[PAD{i}]``);
int32 token types (1 normal, 3 control, 4 user-defined, 5 unused); merges as ``"left right"``
strings; bos/eos/pad ids; the chat template.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convert.config import load_json
from convert.errors import ConversionError, MissingFileError

# The fix for a tokenizer.json llama.cpp cannot use: QwenStoryteller shares Qwen's tokenizer.
_USE_QWEN_TOKENIZER = "copy tokenizer.json from Qwen/Qwen2.5-VL-7B-Instruct"

TOKEN_NORMAL = 1
TOKEN_CONTROL = 3
TOKEN_USER_DEFINED = 4
TOKEN_UNUSED = 5


@dataclass(frozen=True)
class Vocab:
    """Everything the text GGUF's tokenizer.* keys hold."""

    tokens: tuple[str, ...]
    token_types: tuple[int, ...]
    merges: tuple[str, ...]
    bos_id: int | None
    eos_id: int | None
    pad_id: int | None
    chat_template: str


def _token_content(value: Any) -> str | None:
    if isinstance(value, dict):
        return value.get("content")
    return value if isinstance(value, str) else None


def _merge_string(merge: Any) -> str:
    """One merge rule as llama.cpp reads it: ``"left right"``.

    tokenizer.json has two formats: ``"left right"`` strings and (newer) ``["left", "right"]``
    pairs; a literal space inside a pair part is written as U+0120 + 0 (chr(ord(' ') + 256)).
    """
    if isinstance(merge, str):
        return merge
    left, right = merge
    shifted = chr(ord(" ") + 256)
    return f"{left.replace(' ', shifted)} {right.replace(' ', shifted)}"


def read_chat_template(folder: Path, tokenizer_config: dict[str, Any]) -> str | None:
    """tokenizer_config.json's chat_template, else chat_template.jinja, else chat_template.json."""
    template = tokenizer_config.get("chat_template")
    if isinstance(template, list):  # named templates: take the default one
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default") or next(iter(named.values()), None)
    if template:
        return str(template)
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    json_file = folder / "chat_template.json"
    if json_file.is_file():
        value = load_json(json_file).get("chat_template")
        if value:
            return str(value)
    return None


def read_vocab(
    folder: Path, *, n_rows: int, config_bos: int | None, config_eos: int | None
) -> Vocab:
    """Build the GGUF vocabulary for a checkpoint whose embedding has ``n_rows`` rows."""
    tokenizer_path = folder / "tokenizer.json"
    if not tokenizer_path.is_file():
        raise MissingFileError(
            f"{folder} has no tokenizer.json: download it with the checkpoint (for QwenStoryteller, or "
            "copy it from Qwen/Qwen2.5-VL-7B-Instruct, whose tokenizer it shares)"
        )
    tokenizer = load_json(tokenizer_path)
    config_path = folder / "tokenizer_config.json"
    tokenizer_config = load_json(config_path) if config_path.is_file() else {}

    model = tokenizer.get("model", {})
    if model.get("type") != "BPE":
        raise ConversionError(
            f"tokenizer.json is a {model.get('type')} tokenizer; Qwen2.5-VL uses byte-level BPE: "
            f"{_USE_QWEN_TOKENIZER}"
        )
    by_id: dict[int, str] = {int(i): t for t, i in model.get("vocab", {}).items()}
    types: dict[int, int] = dict.fromkeys(by_id, TOKEN_NORMAL)
    for added in tokenizer.get("added_tokens", []):
        token_id = int(added["id"])
        content = added["content"]
        by_id[token_id] = content
        looks_control = content.startswith("<|") and content.endswith("|>")
        types[token_id] = (
            TOKEN_CONTROL if added.get("special") or looks_control else TOKEN_USER_DEFINED
        )

    if max(by_id, default=-1) >= n_rows:
        raise ConversionError(
            f"tokenizer.json defines token id {max(by_id)}, but the embedding has only {n_rows} rows: "
            f"the tokenizer belongs to another model; {_USE_QWEN_TOKENIZER}"
        )
    tokens = []
    token_types = []
    for i in range(n_rows):
        if i in by_id:
            tokens.append(by_id[i])
            token_types.append(types[i])
        else:
            tokens.append(f"[PAD{i}]")
            token_types.append(TOKEN_UNUSED)
    seen: set[str] = set()
    for token in tokens:
        if token in seen:  # llama.cpp aborts the whole process on duplicate token strings
            raise ConversionError(
                f"tokenizer.json defines the token {token!r} twice; llama.cpp needs unique tokens: "
                f"{_USE_QWEN_TOKENIZER}"
            )
        seen.add(token)

    merges = tuple(_merge_string(m) for m in model.get("merges", []))
    if not merges:
        raise ConversionError(
            "tokenizer.json has no BPE merges; llama.cpp cannot load a BPE vocabulary without them: "
            f"{_USE_QWEN_TOKENIZER}"
        )

    ids = {t: i for i, t in by_id.items()}

    def token_id(key: str) -> int | None:
        content = _token_content(tokenizer_config.get(key))
        return ids.get(content) if content else None

    bos_id, eos_id = token_id("bos_token"), token_id("eos_token")
    chat_template = read_chat_template(folder, tokenizer_config)
    if not chat_template:
        raise MissingFileError(
            f"{folder} has no chat template (tokenizer_config.json 'chat_template', chat_template.jinja or "
            "chat_template.json): copy tokenizer_config.json from Qwen/Qwen2.5-VL-7B-Instruct"
        )
    return Vocab(
        tokens=tuple(tokens),
        token_types=tuple(token_types),
        merges=merges,
        bos_id=bos_id if bos_id is not None else config_bos,
        eos_id=eos_id if eos_id is not None else config_eos,
        pad_id=token_id("pad_token"),
        chat_template=chat_template,
    )
