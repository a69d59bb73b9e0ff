"""Messages from the engine, the converter and the app in the window's words.

Those layers speak to the command line too, so their messages name its flags (``--max-tokens``,
``--api-key``), its arguments (``SRC``) and shell commands, and start in lower case. The window
translates them here, at its one error road (``error_dialog.describe_error``), instead of
teaching every layer a second voice: the CLI keeps its wording and its tests, and one table
says what each flag is called in the GUI.
"""

from __future__ import annotations

import re

_WORDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"fewer --max-tokens"), "a shorter Story length (Settings)"),
    (
        re.compile(r"--strict-format needs --max-tokens of at least (\d+)"),
        r"strict format needs a Story length of at least \1 tokens (Settings)",
    ),
    (re.compile(r"--max-tokens"), "the Story length (Settings)"),
    (re.compile(r"raise n_ctx"), "raise the Context size (Settings)"),
    (re.compile(r"n_ctx is set to"), "the Context size in Settings is"),
    (re.compile(r"pass the right one with --api-key"), "enter the right one in Settings"),
    (
        re.compile(r"\s*\(e\.g\. python -m llama_cpp\.server[^)]*\)"),
        " Start the model server, or choose “On this computer” in Settings.",
    ),
    (
        re.compile(r"point SRC at a Hugging Face checkpoint folder"),
        "choose the Hugging Face checkpoint folder",
    ),
    (
        re.compile(r"pass the base Qwen2\.5-VL checkpoint as SRC and this folder with --lora"),
        "choose the base Qwen2.5-VL checkpoint folder, and this folder as its adapter",
    ),
    (
        re.compile(r"pass --force to replace them, or choose another --outdir"),
        "use them with “Locate model files…”, or delete them first",
    ),
    (re.compile(r"--([a-z][a-z-]+)"), r"\1"),  # any other flag: its bare name
)


def gui_text(message: str) -> str:
    """``message`` as the window says it: GUI names for CLI flags, and a capital first letter
    unless it starts with a file name."""
    text = message
    for pattern, words in _WORDS:
        text = pattern.sub(words, text)
    first = text.split(" ", 1)[0]
    if first.isalpha() and first.islower():  # a word, not a file name such as photo.heic
        text = text[:1].upper() + text[1:]
    return text
