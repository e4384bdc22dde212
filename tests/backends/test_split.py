from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import embedlab
from embedlab.backends.base import EncodedBatch
from embedlab.backends.split import SplitBackend
from embedlab.engine.embedder import Embedder
from embedlab.errors import ConfigError


def _batch(rows: int, length: int) -> EncodedBatch:
    ids = np.random.default_rng(rows * 1000 + length).integers(5, 90, (rows, length)).astype(np.int64)
    return EncodedBatch(ids, np.ones_like(ids), np.zeros_like(ids))


SMALL_TOKENS = 48


def split_of(tiny_bert_dir: Path) -> SplitBackend:
    small = embedlab.load(str(tiny_bert_dir), backend="onnx").backend
    large = embedlab.load(str(tiny_bert_dir), backend="torch-bf16").backend
    return SplitBackend(small, large, SMALL_TOKENS, name="onnx<=48+torch-bf16")


def test_small_batches_run_on_one_runtime_and_large_ones_on_the_other(tiny_bert_dir: Path) -> None:
    split = split_of(tiny_bert_dir)
    assert split.name == "onnx<=48+torch-bf16"
    small, large = _batch(1, SMALL_TOKENS), _batch(4, SMALL_TOKENS)
    # each batch gives exactly what its runtime alone gives
    np.testing.assert_array_equal(split.forward(small), split.small.forward(small))
    np.testing.assert_array_equal(split.forward(large), split.large.forward(large))
    assert not np.allclose(split.large.forward(small), split.small.forward(small), atol=1e-6)  # bf16 differs


def test_split_vectors_agree_with_fp32(tiny_bert_dir: Path) -> None:
    texts = ["a short query", *[f"passage number {i} about cats and dogs and their habits" for i in range(40)]]
    reference = embedlab.load(str(tiny_bert_dir), backend="torch")
    exact = reference.embed(texts)
    model = Embedder(reference.spec, split_of(tiny_bert_dir), reference.tokenizer, reference.settings)
    single = model.embed(texts[:1])
    np.testing.assert_allclose(single, exact[:1], atol=1e-5)  # one short text: the exact fp32 graph
    assert ((model.embed(texts) * exact).sum(1) > 0.999).all()  # a batch: bf16


def test_devices_must_match(tiny_bert_dir: Path) -> None:
    backend = embedlab.load(str(tiny_bert_dir), backend="onnx").backend

    class Elsewhere:
        name = "elsewhere"
        device = "cuda:0"

        def forward(self, batch: EncodedBatch) -> Any:
            raise AssertionError("never run")

    with pytest.raises(ConfigError, match="share a device"):
        SplitBackend(backend, Elsewhere(), SMALL_TOKENS, name="x")


def test_split_backend_rejects_a_zero_limit(tiny_bert_dir: Path) -> None:
    backend = embedlab.load(str(tiny_bert_dir), backend="onnx").backend
    with pytest.raises(ConfigError, match="max_small_tokens"):
        SplitBackend(backend, backend, 0, name="x")
