"""The chunked exact search (ties, exclusions) and the retrieval evaluator on real tiny models."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import embedlab
from embedlab.engine.vector_precision import PRECISIONS, dequantize, quantize, ranges_of
from embedlab.errors import ConfigError
from embedlab.eval.beir import RetrievalData
from embedlab.eval.metrics import rank_documents, score_rankings, score_run
from embedlab.eval.quantized import packed_bits
from embedlab.eval.retrieval import (
    TopKAccumulator,
    evaluate_retrieval,
    evaluate_retrieval_by_precision,
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


# -- precisions ----------------------------------------------------------------------------------


def _unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def _expected_by_precision(
    embedder: embedlab.Embedder, data: RetrievalData, precision: str, rescore: int, k_values: list[int]
) -> dict[str, float]:
    """Brute force over the whole corpus at once: first pass by hand, then sentence-transformers' rescoring."""
    queries, docs = _unit(embedder.embed(data.query_texts)), _unit(embedder.embed(data.corpus_texts))
    q_codes, d_codes = quantize(queries, precision), quantize(docs, precision)
    if precision in ("binary", "ubinary"):
        first = -((queries[:, None, :] > 0) != (docs[None, :, :] > 0)).sum(axis=2).astype(np.float64)
    else:
        levels = dequantize if precision in ("int8", "uint8") else (lambda codes, _p: codes.astype(np.float32))
        first = levels(q_codes, precision).astype(np.float64) @ levels(d_codes, precision).astype(np.float64).T
    rankings = {}
    for i, qid in enumerate(data.query_ids):
        ranking = rank_documents({did: float(first[i, j]) for j, did in enumerate(data.corpus_ids)})
        if rescore:
            position = {did: j for j, did in enumerate(data.corpus_ids)}
            kept = ranking[:rescore]
            if precision in ("binary", "ubinary"):
                stored = np.unpackbits(packed_bits(d_codes, precision), axis=1)[:, : docs.shape[1]].astype(np.float64)
            else:
                stored = dequantize(d_codes, precision).astype(np.float64)
            ranking = rank_documents({did: float(queries[i] @ stored[position[did]]) for did in kept})
        rankings[qid] = ranking
    return score_rankings(rankings, data.qrels, k_values)


def test_precision_rows_share_one_embedding_pass_and_float32_is_unchanged(tiny: embedlab.Embedder) -> None:
    data = _data()
    seen: list[tuple[str, int, int]] = []
    rows = evaluate_retrieval_by_precision(
        tiny,
        data,
        config_label="tiny",
        corpus_chunk_size=16,
        query_block_size=3,
        progress=lambda stage, done, total: seen.append((stage, done, total)),
    )
    plain = evaluate_retrieval(tiny, data, config_label="tiny", corpus_chunk_size=16, query_block_size=3)
    assert [row.config for row in rows] == [f"tiny,precision={p}" for p in PRECISIONS]
    assert rows[0].metrics == plain.metrics  # float32: today's exact cosine, the very same numbers
    assert [row.details["bytes_per_vector"] for row in rows] == [128, 64, 32, 32, 4, 4]  # d = 32
    assert [row.details["precision"] for row in rows] == list(PRECISIONS)
    assert all(row.details["texts"] == 48 for row in rows)  # 8 queries and 40 documents, embedded once
    assert [done for stage, done, _ in seen if stage == "corpus" and done == 40] == [40]
    assert plain.details["precision"] == "float32" and plain.details["bytes_per_vector"] == 128
    for row in rows[1:]:
        expected = _expected_by_precision(tiny, data, row.details["precision"], 0, [1, 3, 5, 10, 100])
        for name, value in expected.items():
            assert row.metrics[name] == pytest.approx(value, abs=1e-6), (row.config, name)
    assert rows[2].metrics == rows[3].metrics and rows[4].metrics == rows[5].metrics  # same levels, same bits


@pytest.mark.parametrize("precision", ["int8", "binary"])
def test_rescoring_the_top_k_of_the_first_pass(tiny: embedlab.Embedder, precision: str) -> None:
    data = _data()
    k_values = [1, 3, 5, 10]
    (row,) = evaluate_retrieval_by_precision(
        tiny, data, precisions=[precision], rescore=12, k_values=k_values, corpus_chunk_size=7
    )
    assert row.config == f"precision={precision},rescore=12" and row.details["rescore"] == 12
    expected = _expected_by_precision(tiny, data, precision, 12, k_values)
    for name, value in expected.items():
        assert row.metrics[name] == pytest.approx(value, abs=1e-6), name
    single = evaluate_retrieval(tiny, data, precision=precision, rescore=12, k_values=k_values)
    assert single.metrics == row.metrics and single.config == row.config


def test_rescoring_leaves_the_float_precisions_alone(tiny: embedlab.Embedder) -> None:
    data = _data(20, 4)
    rows = evaluate_retrieval_by_precision(tiny, data, precisions=["float32", "float16", "binary"], rescore=100)
    assert [row.config for row in rows] == ["precision=float32", "precision=float16", "precision=binary,rescore=100"]
    assert [row.details["rescore"] for row in rows] == [0, 0, 100]
    # 20 documents ≤ 100: the rescored ranking is the float query against every document's bits
    expected = _expected_by_precision(tiny, data, "binary", 100, [1, 3, 5, 10, 100])
    assert rows[2].metrics == pytest.approx(expected, abs=1e-6)


def test_excluded_documents_are_never_rescored_in(tiny: embedlab.Embedder) -> None:
    texts = ["the cat sat", "a dog barked", "markets fell"]
    data = RetrievalData(["a", "b", "c"], texts, ["a"], ["the cat sat"], {"a": {"a": 1, "b": 1}})
    (row,) = evaluate_retrieval_by_precision(tiny, data, precisions=["binary"], rescore=100, ignore_identical_ids=True)
    assert row.metrics["recall_at_10"] == pytest.approx(0.5)


def test_int8_ranges_from_the_corpus_or_from_calibration_texts(tiny: embedlab.Embedder) -> None:
    data = _data()
    corpus_ranges = ranges_of(_unit(tiny.embed(data.corpus_texts)))
    by_corpus = evaluate_retrieval_by_precision(tiny, data, precisions=["int8", "binary"], int8_ranges="corpus")
    given = evaluate_retrieval_by_precision(tiny, data, precisions=["int8"], int8_ranges=corpus_ranges)
    assert by_corpus[0].config == "precision=int8,int8_ranges=corpus"
    assert by_corpus[1].config == "precision=binary"  # bits have no ranges
    assert by_corpus[0].details["calibration_documents"] == 40
    assert by_corpus[0].metrics == given[0].metrics
    default = evaluate_retrieval(tiny, data, precision="int8")
    assert default.details["int8_ranges"] == "unit"

    calibration = ["the cat", "stock markets fell", "a dog barked at the mat", "query passage"]
    by_texts = evaluate_retrieval(tiny, data, precision="uint8", int8_ranges=calibration)
    from_texts = evaluate_retrieval(
        tiny, data, precision="uint8", int8_ranges=ranges_of(_unit(tiny.embed(calibration)))
    )
    assert by_texts.metrics == from_texts.metrics
    assert by_texts.details["calibration_texts"] == 4 and by_texts.config == "precision=uint8,int8_ranges=texts"
    assert by_texts.details["texts"] == 48  # calibration texts are counted apart


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"precisions": ["int4"]}, "unknown precision 'int4'; choose one of float32, float16, int8, uint8, binary"),
        ({"precisions": ["binary", "binary"]}, "given twice"),
        ({"precisions": ["float32"], "rescore": 100}, "rescoring applies to int8, uint8, binary, ubinary"),
        ({"precisions": ["binary"], "rescore": 20}, "below the largest cutoff \\(100\\)"),
        ({"precisions": ["binary"], "rescore": -3}, "≥ 0"),
        ({"precisions": ["binary"], "int8_ranges": "corpus"}, "apply to int8 and uint8"),
        ({"precisions": ["int8"], "int8_ranges": np.zeros((2, 5), dtype=np.float32)}, "shape \\(2, 32\\)"),
    ],
)
def test_bad_precision_options_fail_before_embedding(tiny: embedlab.Embedder, options: dict, message: str) -> None:
    seen: list[str] = []
    with pytest.raises(ConfigError, match=message):
        evaluate_retrieval_by_precision(tiny, _data(5, 2), progress=lambda stage, *_: seen.append(stage), **options)
    assert seen == []
    with pytest.raises(ConfigError, match="rescoring applies"):
        evaluate_retrieval(tiny, _data(5, 2), rescore=100)
