from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import embedlab
from embedlab.backends import HYBRID_SMALL_TOKENS
from embedlab.backends.base import EncodedBatch
from embedlab.backends.split import SplitBackend
from embedlab.errors import ConfigError


def _batch(rows: int, length: int) -> EncodedBatch:
    ids = np.random.default_rng(rows * 1000 + length).integers(5, 90, (rows, length)).astype(np.int64)
    return EncodedBatch(ids, np.ones_like(ids), np.zeros_like(ids))


def test_hybrid_runs_small_batches_on_onnx_and_large_ones_on_bf16(tiny_bert_dir: Path) -> None:
    model = embedlab.load(str(tiny_bert_dir), backend="hybrid")
    hybrid = model.backend
    assert isinstance(hybrid, SplitBackend) and hybrid.name == "hybrid"
    assert (hybrid.small.name, hybrid.large.name) == ("onnx", "torch-bf16")
    small, large = _batch(1, HYBRID_SMALL_TOKENS), _batch(4, HYBRID_SMALL_TOKENS)
    # each batch gives exactly what its runtime alone gives
    np.testing.assert_array_equal(hybrid.forward(small), hybrid.small.forward(small))
    np.testing.assert_array_equal(hybrid.forward(large), hybrid.large.forward(large))
    assert not np.allclose(hybrid.large.forward(small), hybrid.small.forward(small), atol=1e-6)  # bf16 differs


def test_hybrid_vectors_agree_with_fp32(tiny_bert_dir: Path) -> None:
    texts = ["a short query", *[f"passage number {i} about cats and dogs and their habits" for i in range(40)]]
    exact = embedlab.load(str(tiny_bert_dir), backend="torch").embed(texts)
    hybrid = embedlab.load(str(tiny_bert_dir), backend="hybrid")
    single = hybrid.embed(texts[:1])
    np.testing.assert_allclose(single, exact[:1], atol=1e-5)  # one short text: the exact fp32 graph
    assert ((hybrid.embed(texts) * exact).sum(1) > 0.999).all()  # a batch: bf16


def test_hybrid_is_cpu_only(tiny_bert_dir: Path) -> None:
    with pytest.raises(ConfigError, match="hybrid backend is for CPUs"):
        embedlab.load(str(tiny_bert_dir), backend="hybrid", device="cuda")


def test_split_backend_rejects_a_zero_limit(tiny_bert_dir: Path) -> None:
    backend = embedlab.load(str(tiny_bert_dir), backend="onnx").backend
    with pytest.raises(ConfigError, match="max_small_tokens"):
        SplitBackend(backend, backend, 0, name="x")
