from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from embedlab.engine.tokenize import load_tokenizer, tokenize_texts, validate_texts
from embedlab.errors import ConfigError, EmptyInputError, InputTooLongError, InputTypeError
from embedlab.models.resolve import ResolvedModel
from embedlab.models.spec import read_spec


@pytest.fixture(scope="module")
def tokenizer(tiny_bert_dir: Path) -> Any:
    return load_tokenizer(read_spec(ResolvedModel(str(tiny_bert_dir), tiny_bert_dir, "local")))


def words(n: int) -> str:
    """n one-letter words: exactly n content tokens with the tiny vocabulary."""
    return " ".join("abcdefghijklmnopqrstuvwxyz"[i % 26] for i in range(n))


def test_tokenizer_json_padding_and_truncation_are_switched_off(tokenizer: Any) -> None:
    assert tokenizer.padding is None and tokenizer.truncation is None
    assert len(tokenizer.encode(words(300)).ids) == 302


def test_short_texts_pass_whole(tokenizer: Any) -> None:
    out = tokenize_texts(tokenizer, [words(3), words(8)], max_tokens=10)
    assert out.tokens == [5, 10]
    assert out.truncated == [False, False]
    assert [len(s.ids) for s in out.segments] == [5, 10]
    assert out.segments[0].ids[0] == tokenizer.token_to_id("[CLS]")
    assert out.segments[0].ids[-1] == tokenizer.token_to_id("[SEP]")


def test_truncate_keeps_head_and_special_tokens(tokenizer: Any) -> None:
    out = tokenize_texts(tokenizer, [words(20)], max_tokens=10, policy="truncate")
    assert out.truncated == [True]
    assert out.input_tokens == [22]
    assert out.tokens == [10]
    (segment,) = out.segments
    full = tokenizer.encode(words(20)).ids
    assert segment.ids == [*full[:9], tokenizer.token_to_id("[SEP]")]


def test_error_names_index_length_and_limit(tokenizer: Any) -> None:
    with pytest.raises(InputTooLongError) as info:
        tokenize_texts(tokenizer, [words(2), words(20)], max_tokens=10, policy="error")
    assert (info.value.index, info.value.n_tokens, info.value.limit) == (1, 22, 10)
    assert "input 1 has 22 tokens" in str(info.value) and "limit of 10" in str(info.value)


def test_chunk_windows_overlap_and_cover_everything(tokenizer: Any) -> None:
    out = tokenize_texts(tokenizer, [words(20)], max_tokens=10, policy="chunk", overlap=2)
    content = tokenizer.encode(words(20), add_special_tokens=False).ids
    windows = [s.ids[1:-1] for s in out.segments]
    assert all(len(s.ids) <= 10 for s in out.segments)
    assert windows[0] == content[:8]
    assert windows[1] == content[6:14]  # advanced by window - overlap = 6
    assert windows[-1][-1] == content[-1]
    assert {s.text_index for s in out.segments} == {0}
    assert out.truncated == [False]
    assert sum(s.weight for s in out.segments) == sum(len(w) for w in windows)


def test_chunk_overlap_is_capped_at_half_a_window(tokenizer: Any) -> None:
    out = tokenize_texts(tokenizer, [words(40)], max_tokens=10, policy="chunk", overlap=50)
    content = tokenizer.encode(words(40), add_special_tokens=False).ids
    assert out.segments[1].ids[1:-1] == content[4:12]


def test_bad_policy_and_limits(tokenizer: Any) -> None:
    with pytest.raises(ConfigError, match="long-input policy"):
        tokenize_texts(tokenizer, ["a"], max_tokens=10, policy="drop")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="no room"):
        tokenize_texts(tokenizer, ["a"], max_tokens=2)


@pytest.mark.parametrize(
    ("texts", "error", "fragment"),
    [
        ([], EmptyInputError, "empty"),
        (["ok", ""], EmptyInputError, "input 1"),
        (["ok", "  \n\t"], EmptyInputError, "whitespace"),
        (["ok", 3], InputTypeError, "input 1 is a int"),
        (["ok", None], InputTypeError, "NoneType"),
        ("just a string", InputTypeError, "single string"),
        (5, InputTypeError, "list of strings"),
    ],
)
def test_validate_texts(texts: Any, error: type[Exception], fragment: str) -> None:
    with pytest.raises(error, match=fragment):
        validate_texts(texts)
