"""Run inside the xgrammar environment (tests/xgrammar_env.py): take a grammar as vLLM's
xgrammar backend does and feed texts to it, token by token, as the model's tokenizer splits them.

Reads JSON on stdin: ``grammar``, ``tokenizer`` (a tokenizer.json), ``stop`` (the stop token)
and ``texts``. vLLM's steps: a grammar with a ``::=`` line is EBNF (not Lark), parsed with
``Grammar.from_ebnf`` when the request is validated, then compiled against the tokenizer and
matched per token. Prints JSON: for each text, the tokens accepted before the first refused one,
how many it has, and whether the stop token may follow the whole text.
"""

from __future__ import annotations

import json
import sys

import xgrammar as xgr
from transformers import PreTrainedTokenizerFast


def main() -> None:
    case = json.load(sys.stdin)
    grammar = case["grammar"]
    assert any("::=" in line.split("#")[0] for line in grammar.splitlines()), "not EBNF"
    xgr.Grammar.from_ebnf(grammar)  # vLLM's validation: raises on a syntax it does not take
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=case["tokenizer"])
    stop = tokenizer.convert_tokens_to_ids(case["stop"])
    info = xgr.TokenizerInfo.from_huggingface(
        tokenizer, vocab_size=len(tokenizer), stop_token_ids=[stop]
    )
    compiled = xgr.GrammarCompiler(info, max_threads=2).compile_grammar(grammar)
    results = []
    for text in case["texts"]:
        matcher = xgr.GrammarMatcher(compiled)
        ids = tokenizer.encode(text, add_special_tokens=False)
        accepted = 0
        for token in ids:
            if not matcher.accept_token(token):
                break
            accepted += 1
        may_stop = accepted == len(ids) and matcher.accept_token(stop) and matcher.is_terminated()
        results.append(
            {
                "tokens": len(ids),
                "accepted": accepted,
                "accepted_text": tokenizer.decode(ids[:accepted]),
                "may_stop": may_stop,
            }
        )
    json.dump({"results": results}, sys.stdout)


if __name__ == "__main__":
    main()
