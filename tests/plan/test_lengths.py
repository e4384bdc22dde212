"""Token-length statistics and the max-tokens rule, on known lengths and against the engine's tokenizer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import embedlab
from embedlab.engine.tokenize import tokenize_texts
from embedlab.errors import ConfigError, EmptyInputError
from embedlab.plan.lengths import (
    chunk_windows,
    histogram_png,
    length_stats,
    quantile_length,
    recommend_max_tokens,
)
from embedlab.plan.planner import count_embedded, count_lengths


def words(n: int) -> str:
    """n one-letter words: exactly n + 2 tokens with the tiny model's tokenizer."""
    return " ".join("abcdefghij"[i % 10] for i in range(n))


def test_tiny_tokenizer_counts_n_plus_two(tiny_bert_dir: Path) -> None:
    embedder = embedlab.load(str(tiny_bert_dir))
    lengths = count_lengths(embedder, [words(n) for n in (1, 5, 40, 100)], block=3)
    assert lengths.tolist() == [3, 7, 42, 102]


def test_stats_on_known_lengths() -> None:
    lengths = np.arange(3, 103, dtype=np.int64)  # 100 texts of 3..102 tokens
    stats = length_stats(lengths, limit=64)
    assert stats.n_texts == 100 and stats.min == 3 and stats.max == 102
    assert stats.percentiles == {50: 52, 90: 92, 95: 97, 99: 101}
    assert stats.texts_over_limit == 38  # 65..102
    assert stats.tokens_over_limit == sum(range(1, 39))
    assert stats.share_tokens_over_limit == pytest.approx(sum(range(1, 39)) / lengths.sum())


def test_recommendation_keeps_every_text_by_default() -> None:
    lengths = np.array([n + 2 for n in range(1, 41)], dtype=np.int64)  # longest 42
    advice = recommend_max_tokens(lengths, limit=64)
    assert advice.max_tokens == 48  # 42 rounded up to a multiple of 8
    assert advice.long_input == "truncate"
    assert advice.texts_truncated == 0 and advice.tokens_lost == 0
    assert advice.tokens_embedded == int(lengths.sum())


def test_recommendation_with_coverage() -> None:
    lengths = np.array([10] * 95 + [60] * 5, dtype=np.int64)
    advice = recommend_max_tokens(lengths, limit=64, coverage=0.95)
    assert advice.quantile_length == 10 and advice.max_tokens == 16
    assert advice.texts_truncated == 5 and advice.tokens_lost == 5 * 44
    assert recommend_max_tokens(lengths, limit=64, coverage=0.96).max_tokens == 64  # 60 → 64


def test_few_texts_over_the_limit_are_truncated_many_are_chunked() -> None:
    few = np.array([20] * 199 + [100], dtype=np.int64)  # 0.5 % over the 64 limit
    advice = recommend_max_tokens(few, limit=64)
    assert (advice.max_tokens, advice.long_input, advice.texts_truncated) == (64, "truncate", 1)
    many = np.array([20] * 90 + [100] * 10, dtype=np.int64)  # 10 % over
    advice = recommend_max_tokens(many, limit=64, chunk_overlap=8)
    assert (advice.max_tokens, advice.long_input, advice.texts_truncated, advice.tokens_lost) == (64, "chunk", 0, 0)
    assert advice.segments == 90 + 10 * 2
    assert any("chunk them" in reason for reason in advice.reasons)


def test_chunk_window_count_matches_the_engine(tiny_bert_dir: Path) -> None:
    tokenizer = embedlab.load(str(tiny_bert_dir)).tokenizer
    for n, limit, overlap in [(100, 32, 8), (30, 32, 8), (31, 32, 0), (250, 64, 32), (61, 32, 4)]:
        engine = tokenize_texts(tokenizer, [words(n)], limit, "chunk", overlap)
        predicted = chunk_windows(np.array([n + 2]), limit, 2, overlap)
        assert int(predicted[0]) == len(engine.segments), (n, limit, overlap)
        advice = recommend_max_tokens(np.array([n + 2]), limit, chunk_threshold=0.0, chunk_overlap=overlap)
        assert advice.segments == len(engine.segments)


def test_exact_embedded_count_comes_from_the_engine(tiny_bert_dir: Path) -> None:
    embedder = embedlab.load(str(tiny_bert_dir))
    texts = [words(250), words(10), words(61)]
    segments, tokens = count_embedded(embedder, texts, 64, "chunk", block=2)
    engine = tokenize_texts(embedder.tokenizer, texts, 64, "chunk", embedder.settings.chunk_overlap)
    assert (segments, tokens) == (len(engine.segments), sum(engine.tokens))
    assert count_embedded(embedder, texts, 32, "truncate") == (3, 32 + 12 + 32)


def test_quantile_is_nearest_rank() -> None:
    values = np.array([5, 1, 3, 2, 4], dtype=np.int64)
    assert [quantile_length(values, q) for q in (0.2, 0.5, 0.6, 1.0)] == [1, 3, 3, 5]


@pytest.mark.parametrize("coverage", [0.0, -0.1, 1.5])
def test_bad_coverage(coverage: float) -> None:
    with pytest.raises(ConfigError, match="coverage must be in"):
        recommend_max_tokens(np.array([5]), 64, coverage=coverage)


def test_no_lengths() -> None:
    with pytest.raises(EmptyInputError):
        length_stats(np.array([], dtype=np.int64), 64)
    with pytest.raises(EmptyInputError):
        recommend_max_tokens(np.array([], dtype=np.int64), 64)


def test_histogram_is_a_png() -> None:
    png = histogram_png(np.array([3, 4, 4, 9, 30]), limit=16, recommended=32)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
