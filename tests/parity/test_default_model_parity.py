"""The proof of the core: our vectors equal sentence-transformers' on the packaged default model."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import embedlab
from parity.corpus import parity_corpus

pytestmark = pytest.mark.slow

SEEDS = [
    "This framework generates embeddings for each input sentence",
    "Sentences are passed as a list of string.",
    "The quick brown fox jumps over the lazy dog",
]
# First values of the default model's vectors for SEEDS (sentence-transformers, fp32). Catches silent drift.
CANONICAL = np.array(
    [
        [-0.013717, -0.042852, -0.015629, 0.014054, 0.039554, 0.121796],
        [0.056452, 0.055002, 0.031380, 0.033948, -0.035425, 0.083467],
        [0.035497, 0.061286, 0.052692, 0.070705, 0.033101, -0.030670],
    ],
    dtype=np.float32,
)


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return parity_corpus()


@pytest.fixture(scope="module")
def reference(corpus: list[str]) -> Any:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(embedlab.load_spec(None).path), device="cpu")
    return model.encode(corpus, batch_size=32, convert_to_numpy=True)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_corpus_spans_short_to_beyond_the_limit(default_model: Any, corpus: list[str]) -> None:
    lengths = default_model.count_tokens(corpus)
    assert len(corpus) >= 200
    assert lengths.min() <= 3 and lengths.max() > 256
    assert (lengths > 256).sum() >= 5


def test_seed_sentences_match_canonical_values(default_model: Any) -> None:
    vectors = default_model.embed(SEEDS)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors[:, :6], CANONICAL, atol=2e-6)


def test_torch_backend_parity(default_model: Any, corpus: list[str], reference: np.ndarray) -> None:
    ours = default_model.embed(corpus)
    assert np.abs(ours - reference).max() <= 1e-5
    assert _cosines(ours, reference).min() >= 0.99999


def test_onnx_backend_parity(corpus: list[str], reference: np.ndarray) -> None:
    ours = embedlab.load(backend="onnx").embed(corpus)
    assert np.abs(ours - reference).max() <= 1e-4
    assert _cosines(ours, reference).min() >= 0.99999


def test_truncation_is_reported_like_sentence_transformers_truncates(default_model: Any, corpus: list[str]) -> None:
    result = default_model.embed_with_report(corpus)
    over = [n > 256 for n in result.input_tokens]
    assert result.truncated == over
    assert max(result.tokens) == 256
