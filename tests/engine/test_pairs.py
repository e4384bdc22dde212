"""Pairs checked with errors that name what is wrong, and tokenised exactly as CrossEncoder's tokenizer call does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from embedlab.engine.pairs import PairTokenizer, rerank_pairs, validate_pairs
from embedlab.engine.tokenize import load_tokenizer
from embedlab.errors import ConfigError, EmptyInputError, InputTypeError, PairTooLongError
from embedlab.models.cross_encoder import read_cross_encoder_spec
from embedlab.models.resolve import ResolvedModel


def words(n: int, letter: str = "a") -> str:
    return " ".join([letter] * n)


@pytest.fixture(scope="module")
def pair_tokenizer(tiny_cross_encoder_dir: Path) -> PairTokenizer:
    spec = read_cross_encoder_spec(ResolvedModel(str(tiny_cross_encoder_dir), tiny_cross_encoder_dir, "local"))
    return PairTokenizer(load_tokenizer(spec))


@pytest.mark.parametrize(
    ("query", "documents", "error", "message"),
    [
        (3, ["a"], InputTypeError, "query is a int, not a string"),
        ("  ", ["a"], EmptyInputError, "query is empty or whitespace only"),
        ("q", [], EmptyInputError, "no documents given: the list is empty"),
        ("q", "a document", InputTypeError, "documents must be a list of strings, not a single string"),
        ("q", 5, InputTypeError, "documents must be a list of strings, got int"),
        ("q", ["a", None], InputTypeError, "document 1 is a NoneType, not a string"),
        ("q", ["a", "b", "\n"], EmptyInputError, "document 2 is empty or whitespace only"),
    ],
)
def test_rerank_input_errors_name_the_problem(query: Any, documents: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        rerank_pairs(query, documents)


def test_rerank_pairs_keep_the_documents_order() -> None:
    assert rerank_pairs("q", ["b", "a"]) == [("q", "b"), ("q", "a")]


@pytest.mark.parametrize(
    ("pairs", "error", "message"),
    [
        ([], EmptyInputError, "no pairs given: the list is empty"),
        (("q", "d"), InputTypeError, "not a single one .wrap it in a list."),
        ("q", InputTypeError, "not a single one"),
        (7, InputTypeError, "pairs must be a list of .query, document. pairs, got int"),
        ([("q", "d"), "qd"], InputTypeError, "pair 1 is a str, not a .query, document. pair"),
        ([("q", "d", "e")], InputTypeError, "pair 0 has 3 items, not a query and a document"),
        ([("q", 1)], InputTypeError, "the document of pair 0 is a int, not a string"),
        ([("q", "d"), (" ", "d")], EmptyInputError, "the query of pair 1 is empty or whitespace only"),
    ],
)
def test_pair_errors_name_the_pair(pairs: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        validate_pairs(pairs)


def test_lists_count_as_pairs() -> None:
    assert validate_pairs([["q", "d"], ("q2", "d2")]) == [("q", "d"), ("q2", "d2")]


def test_ids_equal_the_hugging_face_tokenizer_call_of_cross_encoder(
    pair_tokenizer: PairTokenizer, tiny_cross_encoder_dir: Path
) -> None:
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(tiny_cross_encoder_dir))
    pairs = [
        ("the cat", "sat on the mat"),
        ("a dog", words(100, "b")),  # only the document is cut
        (words(50, "q"), words(30, "d")),  # both are cut, the longer first
        (words(90, "q"), "d"),  # only the query is cut
        (words(31, "q"), words(31, "d")),  # exactly the limit: 31 + 31 + 3 = 65 > 64, one token off
    ]
    theirs = hf([q for q, _ in pairs], [d for _, d in pairs], truncation="longest_first", max_length=64)
    tokenized = pair_tokenizer.tokenize(pairs, 64)
    assert [s.ids for s in tokenized.segments] == theirs["input_ids"]
    assert [s.type_ids for s in tokenized.segments] == theirs["token_type_ids"]
    assert [s.text_index for s in tokenized.segments] == [0, 1, 2, 3, 4]
    assert tokenized.input_tokens == [9, 105, 83, 94, 65]
    assert tokenized.tokens == [9, 64, 64, 64, 64]
    assert tokenized.truncated == [False, True, True, True, True]


def test_without_truncation_a_long_pair_is_refused_by_index(pair_tokenizer: PairTokenizer) -> None:
    pairs = [("q", "d"), ("q", words(62)), ("q", words(60))]  # 5, 66 and 64 tokens
    assert pair_tokenizer.tokenize(pairs[::2], 64, truncate=False).tokens == [5, 64]
    message = r"pair 1 \(the query with document 1\) has 66 tokens, over the limit of 64 tokens \(use truncate=True"
    with pytest.raises(PairTooLongError, match=message) as caught:
        pair_tokenizer.tokenize(pairs, 64, truncate=False)
    assert (caught.value.index, caught.value.n_tokens, caught.value.limit) == (1, 66, 64)


def test_a_limit_without_room_for_both_texts_is_refused(pair_tokenizer: PairTokenizer) -> None:
    pair_tokenizer.check_limit(5)
    with pytest.raises(ConfigError, match="max_tokens=4 leaves no room for a query and a document beside 3 special"):
        pair_tokenizer.check_limit(4)
