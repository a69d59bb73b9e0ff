"""Feed texts to llama.cpp's own grammar sampler and say how far each is accepted.

Run as ``python gbnf_probe.py MODEL.gguf`` with a JSON list of cases on stdin, each
``{"grammar": GBNF, "text": TEXT, "bytewise": BOOL}`` (or ``"hex"`` for raw bytes in place of
``"text"``); prints a JSON list of
``{"parsed": BOOL, "rejected_at": BYTE_OFFSET_OR_NULL, "complete": BOOL}``. ``bytewise`` feeds
one single-byte token per byte (every multi-byte character then ends tokens mid-sequence);
otherwise the text is tokenized normally. ``complete``: the grammar would let the output end
there. A separate process because a grammar that llama.cpp trips over aborts the process.
"""

from __future__ import annotations

import ctypes
import json
import sys

import llama_cpp


def piece(vocab: int, token: int) -> bytes:
    buffer = ctypes.create_string_buffer(64)
    size = llama_cpp.llama_token_to_piece(vocab, token, buffer, 64, 0, False)
    return buffer.raw[: max(size, 0)]


def tokenize(vocab: int, data: bytes) -> list[int]:
    tokens = (llama_cpp.llama_token * (len(data) + 8))()
    count = llama_cpp.llama_tokenize(vocab, data, len(data), tokens, len(data) + 8, False, False)
    assert count >= 0, "tokenize failed"
    return list(tokens[:count])


def allowed(sampler: int, token: int) -> bool:
    candidate = llama_cpp.llama_token_data(id=token, logit=0.0, p=0.0)
    array = llama_cpp.llama_token_data_array(
        data=ctypes.pointer(candidate), size=1, selected=-1, sorted=False
    )
    llama_cpp.llama_sampler_apply(sampler, ctypes.byref(array))
    return candidate.logit != float("-inf")


def probe(vocab: int, byte_tokens: dict[int, int], case: dict[str, object]) -> dict[str, object]:
    grammar = str(case["grammar"]).encode("utf-8")
    sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar, b"root")
    if not sampler:
        return {"parsed": False, "rejected_at": None, "complete": False}
    data = bytes.fromhex(str(case["hex"])) if "hex" in case else str(case["text"]).encode()
    tokens = [byte_tokens[b] for b in data] if case["bytewise"] else tokenize(vocab, data)
    rejected_at = None
    offset = 0
    for token in tokens:
        if not allowed(sampler, token):
            rejected_at = offset
            break
        llama_cpp.llama_sampler_accept(sampler, token)
        offset += len(piece(vocab, token))
    complete = rejected_at is None and allowed(sampler, llama_cpp.llama_vocab_eos(vocab))
    llama_cpp.llama_sampler_free(sampler)
    return {"parsed": True, "rejected_at": rejected_at, "complete": complete}


def main() -> None:
    llama_cpp.llama_backend_init()
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = llama_cpp.llama_model_load_from_file(sys.argv[1].encode(), params)
    assert model, "the model did not load"
    vocab = llama_cpp.llama_model_get_vocab(model)
    byte_tokens: dict[int, int] = {}
    for token in range(llama_cpp.llama_vocab_n_tokens(vocab)):
        data = piece(vocab, token)
        if len(data) == 1:
            byte_tokens.setdefault(data[0], token)
    results = [probe(vocab, byte_tokens, case) for case in json.load(sys.stdin)]
    llama_cpp.llama_model_free(model)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
