"""Strict-format grammar pieces, the embedding cache on disk, and backend selection."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from desktop_app.app.backends import NoModelError, backend_from_settings
from desktop_app.app.settings import Settings
from desktop_app.engine.embedding_cache import EmbeddingCache, embedding_key
from desktop_app.engine.grammar import StrictFormat, box_rule, defined_ids, integer_range
from desktop_app.engine.server_backend import OpenAIServerBackend
from desktop_app.errors import StorytellerError


def as_regex(gbnf: str) -> re.Pattern[str]:
    """The GBNF subset integer_range/box_rule emit (literals, classes, groups, |) as a regex."""
    parts = re.split(r'("[^"]*")', gbnf)
    pattern = "".join(
        re.escape(part[1:-1]) if part.startswith('"') else part.replace(" ", "") for part in parts
    )
    return re.compile(pattern)


@given(low=st.integers(0, 3000), span=st.integers(0, 3000))
def test_integer_range_accepts_exactly_the_range(low: int, span: int) -> None:
    high = low + span
    regex = as_regex(integer_range(low, high))
    for value in {low, high, (low + high) // 2, low - 1, high + 1, 0, 9, 10, 99, 100, 1000}:
        if value < 0:
            continue
        assert bool(regex.fullmatch(str(value))) == (low <= value <= high), value
    assert not regex.fullmatch("0" + str(high))  # no leading zeros


@given(width=st.integers(28, 2000), height=st.integers(28, 2000), data=st.data())
def test_boxes_allowed_by_the_grammar_are_inside_and_not_inverted(
    width: int, height: int, data: st.DataObject
) -> None:
    rule, max_len = box_rule(width, height)
    regex = as_regex(rule)
    x1, x2 = sorted(data.draw(st.lists(st.integers(0, width), min_size=2, max_size=2)))
    y1, y2 = sorted(data.draw(st.lists(st.integers(0, height), min_size=2, max_size=2)))
    text = f"{x1}, {y1}, {x2}, {y2}"
    if regex.fullmatch(text):
        assert x1 < x2 and y1 < y2 and len(text) <= max_len
    assert not regex.fullmatch(f"{x2}, {y2}, {x1}, {y1}")  # inverted or empty
    assert not regex.fullmatch(f"0, 0, {width + 1}, {height}")
    assert regex.fullmatch(f"0, 0, {width}, {height}")


def test_strict_caps_shrink_with_the_budget_and_refuse_when_too_small() -> None:
    roomy = StrictFormat([(448, 336)] * 2, 16000)
    tight = StrictFormat([(448, 336)] * 2, 2200)
    assert roomy.think_caps.cell > tight.think_caps.cell
    assert tight.think_worst_length(tight.think_caps) <= 2200
    with pytest.raises(StorytellerError, match="needs --max-tokens of at least"):
        StrictFormat([(448, 336)] * 5, 500)
    grammar = roomy.think_grammar()
    assert '"## Image 1\\n' in grammar and '"## Image 2\\n' in grammar
    assert '"## Image 3' not in grammar


def test_story_grammar_only_names_ids_the_frame_defined() -> None:
    think = (
        "<think>\n## Image 1\n\n### Characters\n| char1 | a |\n### Objects\n| bg1 | b |\n\n"
        "## Image 2\n\n### Characters\n| char1 | a |\n| char2 | c |\n"
        "## Narrative Structure\n| Introduction | x | y | 1, 2 |\n</think>\n"
    )
    assert defined_ids(think, 2) == [{"char1", "bg1"}, {"char1", "char2"}]
    grammar = StrictFormat([(84, 84), (84, 84)], 4000).story_grammar(think, 2000)
    assert 'gdo1id ::= ("bg1" | "char1")' in grammar
    assert 'gdl1id ::= ("bg1")' in grammar
    assert "gdl2id" not in grammar  # frame 2 has no background region to be a place
    assert 'gda2id ::= ("char1" | "char2")' in grammar


def test_embeddings_survive_on_disk_and_bad_files_are_dropped(tmp_path: Path) -> None:
    key = embedding_key("abc", (112, 84), "mmproj-1")
    assert key != embedding_key("abc", (84, 112), "mmproj-1")
    assert key != embedding_key("abc", (112, 84), "mmproj-2")
    array = np.arange(12 * 8, dtype=np.float32).reshape(12, 8)
    cache = EmbeddingCache(tmp_path)
    cache.put(key, array)
    assert not list(tmp_path.glob("*/*.npy"))  # disk writes wait for the end of the run
    cache.flush()
    fresh = EmbeddingCache(tmp_path)
    assert np.array_equal(fresh.get(key, (12, 8)), array)
    assert fresh.get(key, (12, 16)) is None  # another model width: not this embedding
    stored = next(tmp_path.glob("*/*.npy"))
    stored.write_bytes(b"garbage")
    assert EmbeddingCache(tmp_path).get(key, (12, 8)) is None
    assert not stored.exists()


def test_the_disk_cache_stays_under_its_size_limit(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, disk_bytes=3 * 4096 + 500)
    for index in range(6):
        cache.put(f"{index:064x}", np.zeros((32, 32), dtype=np.float32))  # 4 KiB + header
        cache.flush()
    kept = list(tmp_path.glob("*/*.npy"))
    assert 1 <= len(kept) <= 3
    assert sum(p.stat().st_size for p in kept) <= 3 * 4096 + 500


def test_settings_choose_the_backend(tmp_path: Path) -> None:
    server = backend_from_settings(Settings(server_url="http://127.0.0.1:9", server_model="m"))
    assert isinstance(server, OpenAIServerBackend)
    assert server.description == "server http://127.0.0.1:9/v1"
    server.close()
    with pytest.raises(NoModelError, match="no model configured or found"):
        backend_from_settings(Settings())
    with pytest.raises(StorytellerError, match=r"x\.gguf is missing"):
        backend_from_settings(
            Settings(model_path=tmp_path / "x.gguf", mmproj_path=tmp_path / "mmproj-x.gguf")
        )
