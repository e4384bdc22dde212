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


def test_prompt_excluded_from_pooling_like_sentence_transformers(
    make_tiny_bert: Callable[..., Path], tmp_path: Path
) -> None:
    import json
    import shutil

    from sentence_transformers import SentenceTransformer

    path = tmp_path / "no-prompt-pooling"
    shutil.copytree(make_tiny_bert(prompts={"query": "query: the "}), path)
    config = json.loads((path / "1_Pooling" / "config.json").read_text())
    (path / "1_Pooling" / "config.json").write_text(json.dumps({**config, "include_prompt": False}))
    ours = embedlab.load(str(path), backend="torch")
    assert ours.spec.include_prompt is False
    theirs = SentenceTransformer(str(path), device="cpu")
    np.testing.assert_allclose(
        ours.embed(TEXTS, prompt_name="query"),
        theirs.encode(TEXTS, prompt_name="query", convert_to_numpy=True),
        atol=1e-5,
    )
    with_prompt = embedlab.load(str(make_tiny_bert(prompts={"query": "query: the "})), backend="torch")
    assert not np.allclose(with_prompt.embed(TEXTS, prompt_name="query"), ours.embed(TEXTS, prompt_name="query"))
