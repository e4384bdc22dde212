"""Every pooling mode, end to end, against sentence-transformers on tiny models built from configs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import embedlab

TEXTS = ["the cat sat on the mat", "a dog", "query: the dog sat on a cat, on a mat!", "z"]


@pytest.mark.parametrize("mode", ["mean", "cls", "max", "mean_sqrt_len", "weighted_mean", "last_token"])
@pytest.mark.parametrize("normalize", [True, False])
def test_matches_sentence_transformers(make_tiny_bert: Callable[..., Path], mode: str, normalize: bool) -> None:
    from sentence_transformers import SentenceTransformer

    path = make_tiny_bert(pooling=mode, normalize=normalize)
    ours = embedlab.load(str(path), backend="torch").embed(TEXTS)
    theirs = SentenceTransformer(str(path), device="cpu").encode(TEXTS, convert_to_numpy=True)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
