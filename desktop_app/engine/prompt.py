"""The prompt exactly as QwenStoryteller was trained on it (docs/model-contract.md section 2).

System prompt verbatim; one user turn holding the short instruction first, then the photos in
album order; the assistant turn is left open for ``<think>...``. For llama.cpp the photos are
media markers that mtmd replaces with ``<|vision_start|>`` + image embeddings + ``<|vision_end|>``
(it adds those two tokens itself, so they must not be written around the marker).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

logger = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You are an AI storyteller that can analyze sequences of images and create creative "
    "narratives. First think step-by-step to analyze characters, objects, settings, and "
    "narrative structure. Then create a grounded story that maintains consistent character "
    "identity and object references across frames. Use <think></think> tags to show your "
    "reasoning process before writing the final story."
)

# The instructions QwenStoryteller was trained with: the training adapter drew one at random for
# every example, "" (none) among them (docs/model-contract.md section 2). The default is the first one; any
# other text is beyond training.
TRAINED_INSTRUCTIONS: tuple[str, ...] = (
    "Create a story based on these images.",
    "Tell me a story that connects these images.",
    "Generate a narrative that ties these images together.",
    "Craft a cohesive story from this sequence of images.",
    "Looking at these images, what story could they tell?",
    "Can you create a narrative that explains the progression in these images?",
    "These images form a sequence - please tell the story they represent.",
    "Write a story that captures what's happening across these images.",
    "These images tell a story - what is it?",
    "",
)
DEFAULT_INSTRUCTION = TRAINED_INSTRUCTIONS[0]


def is_trained_instruction(instruction: str) -> bool:
    """True for one of the instructions the model was trained with (or none at all)."""
    return instruction in TRAINED_INSTRUCTIONS


# llama.cpp's mtmd default media marker (mtmd_default_marker()).
MEDIA_MARKER = "<__media__>"

# Every image costs its vision tokens plus <|vision_start|> and <|vision_end|>.
TOKENS_AROUND_IMAGE = 2


def chat_messages(instruction: str, image_parts: Sequence[dict[str, object]]) -> list[dict]:
    """OpenAI-style messages: system prompt, then a user turn of instruction + images in order.

    An empty instruction (which training also used) leaves the text part out.
    """
    content: list[dict[str, object]] = []
    if instruction:
        content.append({"type": "text", "text": instruction})
    content.extend(image_parts)
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": content},
    ]


def render_chatml(instruction: str, n_images: int, marker: str = MEDIA_MARKER) -> str:
    """The Qwen2.5-VL ChatML prompt with one media marker per image, ready for ``mtmd_tokenize``.

    This is what Qwen2.5-VL's own chat template renders for these messages once each image part
    has been replaced by the marker.
    """
    return (
        f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n"
        f"<|im_start|>user\n{instruction}{marker * n_images}<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def render_with_template(
    chat_template: str,
    instruction: str,
    n_images: int,
    *,
    marker: str = MEDIA_MARKER,
    bos_token: str = "",
    eos_token: str = "",
) -> str:
    """Render the model's own chat template (GGUF ``tokenizer.chat_template``) for our prompt.

    Image parts become text parts holding the media marker, as llama-cpp-python's MTMD handler
    does, so the template's own ``<|vision_start|><|image_pad|><|vision_end|>`` branch is not
    taken and mtmd adds the vision tokens exactly once.
    """
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise ValueError(message)

    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )
    template = environment.from_string(chat_template)
    marker_parts = [{"type": "text", "text": marker} for _ in range(n_images)]
    return template.render(
        messages=chat_messages(instruction, marker_parts),
        add_generation_prompt=True,
        bos_token=bos_token,
        eos_token=eos_token,
        raise_exception=raise_exception,
    )


def build_prompt(
    instruction: str,
    n_images: int,
    *,
    chat_template: str | None = None,
    marker: str = MEDIA_MARKER,
    bos_token: str = "",
    eos_token: str = "",
) -> str:
    """The prompt text for llama.cpp: the model's template when it has one, else ChatML.

    A template that fails to render, or that drops a marker, falls back to ChatML with a warning
    (the model was trained on ChatML either way).
    """
    if chat_template:
        try:
            text = render_with_template(
                chat_template,
                instruction,
                n_images,
                marker=marker,
                bos_token=bos_token,
                eos_token=eos_token,
            )
        except Exception as err:  # a template is foreign code; any failure means "do not use"
            logger.warning("the model's chat template failed (%s); using ChatML", err)
        else:
            if text.count(marker) == n_images and SYSTEM_PROMPT in text:
                return text
            logger.warning("the model's chat template lost images or the system prompt; ChatML")
    return render_chatml(instruction, n_images, marker)
