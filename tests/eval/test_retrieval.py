"""The chunked exact search (ties, exclusions) and the retrieval evaluator on real tiny models."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import embedlab
from embedlab.errors import ConfigError
from embedlab.eval.beir import RetrievalData
from embedlab.eval.metrics import rank_documents, score_run
from embedlab.eval.retrieval import (
    TopKAccumulator,
    evaluate_retrieval,
    search_chunk,
    tie_keys,
    top_k_indices,
)

CORPUS = [
    {"_id": "d1", "title": "cats", "text": "the cat sat on the mat"},
    {"_id": "d2", "title": "", "text": "  a dog barked  "},
    {"_id": "d3", "title": "stocks", "text": "markets fell"},
    {"_id": "d4", "text": "a cat and a dog"},
]
QUERIES = [
    {"_id": "q1", "text": "cat on mat"},
    {"_id": "q2", "text": "dog"},
    {"_id": "q3", "text": "not judged in this split"},
]
QRELS = [("q1", "d1", 2), ("q1", "d4", 1), ("q2", "d2", 1), ("q2", "d3", 0)]


def test_top_k_breaks_exact_ties_by_key_even_at_the_cut() -> None:
    scores = np.array([[0.5, 0.9, 0.5, 0.5, 0.1]], dtype=np.float32)
    keys = np.array([3, 0, 1, 0, 4])  # among the tied columns 0, 2, 3: column 3 first, then 2
    assert top_k_indices(scores, 2, keys).tolist() == [[1, 3]]
    assert top_k_indices(scores, 3, keys).tolist() == [[1, 3, 2]]
    assert top_k_indices(scores, 10, keys).tolist() == [[1, 3, 2, 0, 4]]


def test_chunked_search_equals_a_full_sort() -> None:
    rng = np.random.default_rng(0)
    doc_ids = [f"doc{i:03d}" for i in range(97)]
    docs = rng.normal(size=(97, 8)).astype(np.float32)
    docs[50] = docs[10]  # duplicate documents tie exactly
    docs[77] = docs[10]
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    queries = rng.normal(size=(13, 8)).astype(np.float32)
    queries[3] = docs[10]
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)

    accumulator = TopKAccumulator(13, 20, tie_keys(doc_ids))
    for start in range(0, 97, 10):
        search_chunk(accumulator, queries, docs[start : start + 10], start, query_block_size=4)
    full = queries @ docs.T
    for row, ranking in enumerate(accumulator.rankings(doc_ids)):
        expected = rank_documents({doc_ids[j]: float(full[row, j]) for j in range(97)})[:20]
        assert ranking == expected
    assert accumulator.rankings(doc_ids)[3][:3] == ["doc077", "doc050", "doc010"]


def test_excluded_documents_are_never_retrieved() -> None:
    docs = np.eye(3, dtype=np.float32)
    accumulator = TopKAccumulator(2, 5, tie_keys(["a", "b", "c"]))
    search_chunk(accumulator, docs[:2], docs, 0, excluded=np.array([0, -1]))
    first, second = accumulator.rankings(["a", "b", "c"])
    assert "a" not in first and len(first) == 2
    assert second[0] == "b" and len(second) == 3


# -- the evaluator on a tiny real model ----------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(make_tiny_bert: Callable[..., Path]) -> embedlab.Embedder:
    return embedlab.load(str(make_tiny_bert()), backend="torch", threads=1)


@pytest.fixture(scope="module")
def prompted(make_tiny_bert: Callable[..., Path]) -> embedlab.Embedder:
    return embedlab.load(
        str(make_tiny_bert(prompts={"query": "query: ", "passage": "passage: "})), backend="torch", threads=1
    )


WORDS = [
    "the",
    "cat",
    "sat",
    "on",
    "a",
    "mat",
    "dog",
    "barked",
    "at",
    "stock",
    "markets",
    "fell",
    "rose",
    "query",
    "passage",
]


def _data(n_docs: int = 40, n_queries: int = 8) -> RetrievalData:
    rng = np.random.default_rng(1)
    texts = [" ".join(rng.choice(WORDS, size=rng.integers(2, 9))) for _ in range(n_docs)]
    ids = [f"{i}" for i in range(n_docs)]
    qrels = {
        str(q): {str(d): int(rng.integers(0, 3)) for d in rng.choice(n_docs, 3, replace=False)}
        for q in range(n_queries)
    }
    queries = [" ".join(rng.choice(WORDS, size=3)) for _ in range(n_queries)]
    return RetrievalData(ids, texts, list(qrels), queries, qrels, source="generated")


def _brute_force(embedder: embedlab.Embedder, data: RetrievalData, qp: str | None, dp: str | None) -> dict:
    q = embedder.embed(data.query_texts, prompt=qp)
    d = embedder.embed(data.corpus_texts, prompt=dp)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    scores = q @ d.T
    run = {
        qid: {did: float(scores[i, j]) for j, did in enumerate(data.corpus_ids)} for i, qid in enumerate(data.query_ids)
    }
    return score_run(run, data.qrels, [1, 3, 5, 10, 100])


def test_evaluate_retrieval_matches_brute_force_cosine(tiny: embedlab.Embedder) -> None:
    data = _data()
    report = evaluate_retrieval(tiny, data, config_label="tiny", corpus_chunk_size=16, query_block_size=3)
    expected = _brute_force(tiny, data, None, None)
    for name, value in expected.items():
        assert report.metrics[name] == pytest.approx(value, abs=1e-6), name
    assert report.metric == "ndcg_at_10" and report.score == report.metrics["ndcg_at_10"]
    assert (report.n, report.details["documents"], report.details["texts"]) == (8, 40, 48)
    assert report.config == "tiny"


def test_model_prompts_are_the_default_and_can_be_overridden(prompted: embedlab.Embedder) -> None:
    data = _data(20, 4)
    report = evaluate_retrieval(prompted, data)
    assert (report.details["query_prompt"], report.details["doc_prompt"]) == ("query: ", "passage: ")
    for name, value in _brute_force(prompted, data, "query: ", "passage: ").items():
        assert report.metrics[name] == pytest.approx(value, abs=1e-6)
    bare = evaluate_retrieval(prompted, data, query_prompt="", doc_prompt="")
    for name, value in _brute_force(prompted, data, "", "").items():
        assert bare.metrics[name] == pytest.approx(value, abs=1e-6)
    assert bare.details["tokens"] < report.details["tokens"]


def test_ignore_identical_ids(tiny: embedlab.Embedder) -> None:
    texts = ["the cat sat", "a dog barked", "markets fell"]
    data = RetrievalData(["a", "b", "c"], texts, ["a"], ["the cat sat"], {"a": {"a": 1, "b": 1}})
    kept = evaluate_retrieval(tiny, data)
    dropped = evaluate_retrieval(tiny, data, ignore_identical_ids=True)
    assert kept.metrics["mrr_at_1"] == 1.0  # the query's own text is its best match
    assert dropped.metrics["recall_at_10"] == pytest.approx(0.5)  # 'a' can no longer be found


def test_evaluate_retrieval_rejects_bad_options(tiny: embedlab.Embedder) -> None:
    data = _data(5, 2)
    with pytest.raises(ConfigError, match="unknown embedding option 'prompt'"):
        evaluate_retrieval(tiny, data, prompt="x")
    with pytest.raises(ConfigError, match="cutoffs must be"):
        evaluate_retrieval(tiny, data, k_values=[0])
    with pytest.raises(ConfigError, match="corpus_chunk_size"):
        evaluate_retrieval(tiny, data, corpus_chunk_size=0)
