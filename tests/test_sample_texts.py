from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import embedlab
from embedlab.engine.tokenize import load_tokenizer
from embedlab.errors import ConfigError
from embedlab.sample_texts import corpus_lengths, generate_corpus, short_queries, texts_of_length


@pytest.fixture(scope="module")
def default_tokenizer() -> object:
    return load_tokenizer(embedlab.load_spec(None))


def test_generated_corpus_is_deterministic_and_mixed(default_tokenizer: object) -> None:
    corpus = generate_corpus()
    assert corpus == generate_corpus() and corpus != generate_corpus(seed=1)
    assert len(corpus) == 2000 and len(set(corpus)) > 1500
    lengths = np.array(corpus_lengths(default_tokenizer, corpus))
    assert 26 <= np.minimum(lengths, 256).mean() <= 34  # about 30 tokens a text, as the docstring says
    assert (lengths > 256).sum() >= 10  # some beyond the model's limit
    assert (lengths <= 16).mean() > 0.3  # many short queries
    with pytest.raises(ConfigError, match="at least 1 text"):
        generate_corpus(0)


def test_short_queries_are_short(default_tokenizer: object) -> None:
    lengths = corpus_lengths(default_tokenizer, short_queries(50))
    assert max(lengths) <= 16 and min(lengths) >= 4


@pytest.mark.parametrize("n_tokens", [3, 16, 128, 256])
def test_texts_of_exact_length_default_tokenizer(default_tokenizer: object, n_tokens: int) -> None:
    texts = texts_of_length(default_tokenizer, n_tokens, 5)
    assert corpus_lengths(default_tokenizer, texts) == [n_tokens] * 5
    assert len(set(texts)) == 5


def test_texts_of_exact_length_tiny_tokenizer(tiny_bert_dir: Path) -> None:
    tokenizer = load_tokenizer(embedlab.load_spec(str(tiny_bert_dir)))
    assert corpus_lengths(tokenizer, texts_of_length(tokenizer, 40, 3)) == [40] * 3
    with pytest.raises(ConfigError, match="leaves no room beside 2 special tokens"):
        texts_of_length(tokenizer, 2, 1)
