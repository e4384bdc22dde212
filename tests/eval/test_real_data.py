"""End to end on slices of the real STS Benchmark and SciFact data (skipped when ../shared/data is absent).

The full-size reproductions of the published MTEB figures are in docs/eval.md; these slices keep the
test run short while still exercising the real files, the real model and the whole pipeline.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import embedlab
from embedlab.eval.beir import load_beir
from embedlab.eval.report import EvalReport
from embedlab.eval.retrieval import evaluate_retrieval_by_precision
from embedlab.eval.sts import evaluate_sts, evaluate_sts_by_precision, load_sts

# nDCG@10 of this slice, measured with the torch backend (ONNX gives the same to 1e-6)
REFERENCE_NDCG = 0.9815


def test_loaders_read_the_full_real_files(shared_data: Path) -> None:
    sts = load_sts(shared_data / "stsbenchmark" / "sts-test.csv")
    assert len(sts) == 1379  # the README's count; 284 lines carry extra trailing fields
    assert sts.scores.min() == 0.0 and sts.scores.max() == 5.0
    packed = load_sts(shared_data / "stsbenchmark" / "stsbenchmark.tsv.gz", split="test")
    assert packed.sentences1 == sts.sentences1 and packed.scores.tolist() == sts.scores.tolist()

    scifact = load_beir(shared_data / "scifact")
    assert len(scifact.corpus_ids) == 5183
    assert len(scifact.query_ids) == 300  # of 1109 queries, those judged in the test split
    assert sum(len(j) for j in scifact.qrels.values()) == 339


@pytest.mark.slow
def test_sts_on_the_first_100_pairs(default_model: embedlab.Embedder, shared_data: Path) -> None:
    data = load_sts(shared_data / "stsbenchmark" / "sts-test.csv").head(100)
    report = evaluate_sts(default_model, data)
    assert report.n == 100
    assert report.score == pytest.approx(0.9336, abs=0.005)  # measured with the torch backend
    assert report.details["truncated_texts"] == 0


@pytest.mark.slow
def test_scifact_slice(scifact_slice_report: EvalReport) -> None:
    report = scifact_slice_report
    assert (report.n, report.details["documents"]) == (20, 49)
    assert report.score == pytest.approx(REFERENCE_NDCG, abs=0.005)
    assert report.details["truncated_texts"] > 0  # SciFact abstracts run past 256 tokens
    assert report.details["query_prompt"] is None  # all-MiniLM-L6-v2 ships no prompts
    assert report.metrics["recall_at_100"] == 1.0  # every document of the slice is retrieved


@pytest.mark.slow
def test_scifact_slice_per_precision(
    default_model: embedlab.Embedder, scifact_slice: Path, scifact_slice_report: EvalReport
) -> None:
    rows = evaluate_retrieval_by_precision(
        default_model, load_beir(scifact_slice), precisions=["float32", "int8", "binary"], corpus_chunk_size=32
    )
    assert rows[0].metrics == scifact_slice_report.metrics  # the float32 row is the plain evaluation
    # measured with the torch backend: int8 ties float32 on this slice, bits lose a little
    assert [row.score for row in rows[1:]] == [pytest.approx(0.9815, abs=0.005), pytest.approx(0.9715, abs=0.005)]
    assert [row.details["bytes_per_vector"] for row in rows] == [1536, 384, 48]
    (rescored,) = evaluate_retrieval_by_precision(
        default_model, load_beir(scifact_slice), precisions=["binary"], rescore=100, corpus_chunk_size=32
    )
    assert rescored.config == "precision=binary,rescore=100"
    assert rescored.metrics["recall_at_100"] == 1.0  # 49 documents: all of them are rescored


@pytest.mark.slow
def test_sts_first_100_pairs_per_precision(default_model: embedlab.Embedder, shared_data: Path) -> None:
    data = load_sts(shared_data / "stsbenchmark" / "sts-test.csv").head(100)
    rows = evaluate_sts_by_precision(default_model, data, precisions=["float32", "int8", "binary"])
    # measured with the torch backend; float32 is test_sts_on_the_first_100_pairs' figure
    expected = [0.9336, 0.9338, 0.9232]
    assert [row.score for row in rows] == [pytest.approx(value, abs=0.005) for value in expected]
