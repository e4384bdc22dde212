"""The Reranker against sentence-transformers' CrossEncoder on tiny random cross-encoders it saved itself."""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import embedlab
from embedlab.engine.rerank import Reranker, rank
from embedlab.errors import ConfigError, EmptyInputError, InputTypeError, ModelKindError, PairTooLongError

TOLERANCE = {"torch": 1e-5, "onnx": 1e-4}
MODELS = {
    "one label, sigmoid": {},
    "three labels, identity": {"num_labels": 3},
    "one label, tanh": {"activation": "Tanh"},
    "three labels, softmax": {"num_labels": 3, "activation": "Softmax"},
    "legacy folder, one label": {"layout": "legacy"},
}


def words(n: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(["the", "cat", "sat", "on", "mat", "dog", "a", "b", "c"]) for _ in range(n))


# short pairs, a long document, a long query, both long: the last three are cut to the 64-token limit
PAIRS = [
    ("the cat", "sat on the mat"),
    ("a dog", "the cat sat on the mat"),
    ("mat", "a b c"),
    ("the dog sat", words(12, seed=1)),
    ("cat", words(100, seed=2)),
    (words(80, seed=3), "the mat"),
    (words(40, seed=4), words(45, seed=5)),
]


def cross_encoder(path: Path, **options: Any) -> Any:
    from sentence_transformers import CrossEncoder

    return CrossEncoder(str(path), device="cpu", **options)


def predict(model: Any, pairs: list[tuple[str, str]], **options: Any) -> Any:
    """``model.predict``; a saved ``nn.Softmax`` is restored without ``dim`` and warns that torch picks dim 1."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Implicit dimension choice for softmax", UserWarning)
        return model.predict(pairs, **options)


@pytest.fixture(scope="module")
def reranker(tiny_cross_encoder_dir: Path) -> Reranker:
    return embedlab.load_reranker(str(tiny_cross_encoder_dir), backend="torch", max_batch_tokens=128)


@pytest.mark.parametrize("backend", ["torch", "onnx"])
@pytest.mark.parametrize("model", list(MODELS))
def test_scores_equal_cross_encoder_predict(
    make_tiny_cross_encoder: Callable[..., Path], model: str, backend: str
) -> None:
    from torch import nn

    path = make_tiny_cross_encoder(**MODELS[model])
    ours = embedlab.load_reranker(str(path), backend=backend)
    theirs = cross_encoder(path)
    result = ours.predict(PAIRS)
    expected = predict(theirs, PAIRS)
    assert result.scores.shape == expected.shape and result.scores.dtype == np.float32
    np.testing.assert_allclose(result.scores, expected, atol=TOLERANCE[backend], rtol=0)
    raw = ours.predict(PAIRS, raw_scores=True).scores
    expected_raw = predict(theirs, PAIRS, activation_fn=nn.Identity())
    np.testing.assert_allclose(raw, expected_raw, atol=TOLERANCE[backend], rtol=0)
    assert result.truncated == [False, False, False, False, True, True, True]
    assert result.n_truncated == 3
    assert result.tokens[4:] == [64, 64, 64] and result.input_tokens[4] == 104


def test_packed_batches_come_back_in_the_callers_order(reranker: Reranker, tiny_cross_encoder_dir: Path) -> None:
    pairs = [(words(1 + i % 5, seed=i), words(1 + (7 * i) % 60, seed=100 + i)) for i in range(40)]
    together = reranker.predict(pairs).scores  # 128-token batches: many of them, longest pairs first
    one_by_one = np.array([reranker.predict([pair]).scores[0] for pair in pairs])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5, rtol=0)
    np.testing.assert_allclose(together, cross_encoder(tiny_cross_encoder_dir).predict(pairs), atol=1e-5, rtol=0)
    assert set(reranker.predict(pairs).timings) == {"tokenize", "model", "total"}


def test_two_workers_give_the_same_scores(tiny_cross_encoder_dir: Path, reranker: Reranker) -> None:
    pairs = [(words(3, seed=i), words(5 + 3 * i, seed=i)) for i in range(30)]
    path = str(tiny_cross_encoder_dir)
    two = embedlab.load_reranker(path, backend="torch", workers=2, threads=1, max_batch_tokens=64)
    assert two.workers == 2
    np.testing.assert_allclose(two.predict(pairs).scores, reranker.predict(pairs).scores, atol=1e-5, rtol=0)


def test_rerank_scores_documents_and_ranks_them(reranker: Reranker, tiny_cross_encoder_dir: Path) -> None:
    query = "the cat"
    documents = [d for _, d in PAIRS]
    result = reranker.rerank(query, documents)
    np.testing.assert_allclose(result.scores, reranker.predict([(query, d) for d in documents]).scores, atol=1e-6)
    expected = cross_encoder(tiny_cross_encoder_dir).rank(query, documents)
    assert result.ranking == [hit["corpus_id"] for hit in expected]
    assert [score for _, score in result.top()] == sorted(result.scores.tolist(), reverse=True)
    top = reranker.rerank(query, documents, top_n=2)
    assert top.ranking == result.ranking[:2] and top.scores.shape == (len(documents),)
    assert reranker.rerank(query, documents, top_n=100).ranking == result.ranking
    assert result.n_truncated == 1  # the 100-word document


def test_equal_scores_keep_the_documents_order(reranker: Reranker) -> None:
    result = reranker.rerank("the cat", ["a dog", "sat", "a dog", "a dog"])
    dog = [i for i in result.ranking if i != 1]
    assert dog == [0, 2, 3]
    assert rank(np.array([0.5, 0.9, 0.5, 0.9], dtype=np.float32), 3) == [1, 3, 0]


def test_raw_scores_are_the_logits(reranker: Reranker) -> None:
    raw = reranker.rerank("the cat", ["sat on the mat", "a"], raw_scores=True).scores
    scored = reranker.rerank("the cat", ["sat on the mat", "a"]).scores
    np.testing.assert_allclose(scored, 1 / (1 + np.exp(-raw.astype(np.float64))), atol=1e-6)


def test_token_limit_setting_truncates_as_cross_encoder_max_length(tiny_cross_encoder_dir: Path) -> None:
    short = embedlab.load_reranker(str(tiny_cross_encoder_dir), backend="torch", max_tokens=16)
    result = short.predict(PAIRS)
    expected = cross_encoder(tiny_cross_encoder_dir, max_length=16).predict(PAIRS)
    np.testing.assert_allclose(result.scores, expected, atol=1e-5, rtol=0)
    assert max(result.tokens) == 16 and result.n_truncated == 4
    with pytest.raises(ConfigError, match="max_tokens must be at most the model's limit 64, got 65"):
        embedlab.load_reranker(str(tiny_cross_encoder_dir), backend="torch", max_tokens=65)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda r: r.rerank("q", []), EmptyInputError, "no documents given"),
        (lambda r: r.rerank("", ["a"]), EmptyInputError, "query is empty"),
        (lambda r: r.rerank(None, ["a"]), InputTypeError, "query is a NoneType, not a string"),
        (lambda r: r.rerank("q", ["a", 3]), InputTypeError, "document 1 is a int, not a string"),
        (lambda r: r.rerank("q", ["a", " "]), EmptyInputError, "document 1 is empty or whitespace only"),
        (lambda r: r.rerank("q", ["a"], top_n=0), ConfigError, "top_n must be a whole number of at least 1, got 0"),
        (lambda r: r.rerank("q", ["a"], top_n=True), ConfigError, "top_n must be a whole number"),
        (lambda r: r.rerank("q", ["a"], raw_scores="yes"), ConfigError, "raw_scores must be true or false, got 'yes'"),
        (lambda r: r.predict([("q", "d")], truncate=1), ConfigError, "truncate must be true or false, got 1"),
        (lambda r: r.predict([]), EmptyInputError, "no pairs given"),
        (
            lambda r: r.rerank("q", ["a", words(70)], truncate=False),
            PairTooLongError,
            "pair 1 .the query with document 1. has 74 tokens, over the limit of 64",
        ),
    ],
)
def test_bad_input_is_a_typed_error(reranker: Reranker, call: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        call(reranker)


def test_a_model_of_several_labels_predicts_but_cannot_rank(make_tiny_cross_encoder: Callable[..., Path]) -> None:
    three = embedlab.load_reranker(str(make_tiny_cross_encoder(num_labels=3)), backend="torch")
    assert three.predict([("q", "d")]).scores.shape == (1, 3)
    with pytest.raises(ConfigError, match=r"gives 3 scores per pair \(LABEL_0, LABEL_1, LABEL_2\).*use predict"):
        three.rerank("q", ["d"])


def test_models_of_the_wrong_kind_are_refused_by_name(tiny_bert_dir: Path, tiny_cross_encoder_dir: Path) -> None:
    with pytest.raises(ModelKindError, match=f"model {tiny_bert_dir} is an embedding model, not a cross-encoder"):
        embedlab.load_reranker(str(tiny_bert_dir))
    with pytest.raises(ModelKindError, match=f"model {tiny_cross_encoder_dir} is a cross-encoder"):
        embedlab.load(str(tiny_cross_encoder_dir))


def test_backends_that_cannot_run_a_cross_encoder_are_named(tiny_cross_encoder_dir: Path) -> None:
    message = "backend 'openvino' runs embedding models only; for a cross-encoder choose one of torch, torch-bf16, onnx"
    with pytest.raises(ConfigError, match=message):
        embedlab.load_reranker(str(tiny_cross_encoder_dir), backend="openvino")
    assert embedlab.load_reranker(str(tiny_cross_encoder_dir), backend="auto").backend.name == "torch"


@pytest.mark.parametrize("backend", ["torch-bf16", "onnx-int8"])
def test_low_precision_backends_rank_alike(tiny_cross_encoder_dir: Path, reranker: Reranker, backend: str) -> None:
    documents = [d for _, d in PAIRS]
    low = embedlab.load_reranker(str(tiny_cross_encoder_dir), backend=backend)
    assert low.backend.name == backend
    exact = reranker.rerank("the cat", documents, raw_scores=True).scores
    np.testing.assert_allclose(low.rerank("the cat", documents, raw_scores=True).scores, exact, atol=0.1)
