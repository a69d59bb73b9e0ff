"""Errors from the layers the CLI shares reach the window in its words, not the CLI's."""

from __future__ import annotations

import pytest

from desktop_app.engine.costs import check_fits
from desktop_app.errors import StorytellerError
from desktop_app.ui.error_dialog import describe_error


def _shown(err: BaseException) -> str:
    return describe_error(err, action="Writing the story").text


def test_the_context_advice_names_the_story_length_setting() -> None:
    with pytest.raises(StorytellerError) as caught:
        check_fits(7064, n_ctx=7064, context_length=4096, memory_bytes=1, physical_bytes=None)
    assert "--max-tokens" in str(caught.value)  # the CLI keeps its flag
    text = _shown(caught.value)
    assert "--" not in text and "Story length (Settings)" in text
    assert text.startswith("This run needs 7064 tokens")


@pytest.mark.parametrize(
    ("message", "gone", "said"),
    [
        (
            "photos has no config.json: point SRC at a Hugging Face checkpoint folder "
            "(config.json, *.safetensors, tokenizer.json)",
            "SRC",
            "choose the Hugging Face checkpoint folder",
        ),
        (
            "cannot reach the server at http://x/v1: is it running? (e.g. python -m "
            "llama_cpp.server --model TEXT.gguf --clip_model_path MMPROJ.gguf --chat_format "
            "mtmd --logits_all false)",
            "python -m",
            "Start the model server",
        ),
        (
            "the server at http://x/v1 refused the API key: pass the right one with --api-key",
            "--api-key",
            "enter the right one in Settings",
        ),
        (
            "--strict-format needs --max-tokens of at least 5000 for 4 photo(s)",
            "--",
            "Strict format needs a Story length of at least 5000 tokens",
        ),
    ],
)
def test_cli_words_are_translated_and_messages_start_with_a_capital(
    message: str, gone: str, said: str
) -> None:
    text = _shown(StorytellerError(message))
    assert gone not in text and said in text, text
    assert text[0].isupper()
