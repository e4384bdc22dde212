"""The MTEB encoder adapter: the protocol itself, and real ``mteb.evaluate`` runs checked against our evaluators."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import embedlab
from embedlab.eval.beir import load_beir
from embedlab.eval.mteb_adapter import MtebEncoder
from embedlab.eval.retrieval import evaluate_retrieval
from embedlab.eval.sts import StsData, evaluate_sts

from .helpers import write_beir


@pytest.fixture(scope="module")
def prompted(make_tiny_bert: Callable[..., Path]) -> embedlab.Embedder:
    return embedlab.load(
        str(make_tiny_bert(prompts={"query": "query: ", "passage": "passage: "})), backend="torch", threads=1
    )


def test_encode_reads_batches_and_applies_prompts(prompted: embedlab.Embedder) -> None:
    encoder = MtebEncoder(prompted)
    texts = ["the cat sat", "a dog", "markets fell"]
    batches = [{"text": texts[:2]}, {"text": texts[2:]}]  # what MTEB's DataLoader yields
    as_query = encoder.encode(batches, prompt_type="query")
    assert as_query.shape == (3, prompted.dim)
    np.testing.assert_allclose(as_query, prompted.embed(texts, prompt="query: "), atol=1e-6)
    np.testing.assert_allclose(
        encoder.encode(texts, prompt_type="passage"), prompted.embed(texts, prompt="passage: "), atol=1e-6
    )
    np.testing.assert_allclose(encoder.encode(texts, prompt_type=None), prompted.embed(texts), atol=1e-6)
    bare = MtebEncoder(prompted, query_prompt="")
    np.testing.assert_allclose(bare.encode(texts, prompt_type="query"), prompted.embed(texts, prompt=""), atol=1e-6)


def test_blank_texts_are_embedded_not_refused(prompted: embedlab.Embedder) -> None:
    vectors = MtebEncoder(prompted).encode(["the cat", "", "  "], prompt_type="document")
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(vectors[1], vectors[2])
    np.testing.assert_allclose(vectors[0], prompted.embed(["the cat"], prompt="passage: ")[0], atol=1e-6)
    # an empty document under a prompt is the prompt alone
    np.testing.assert_allclose(vectors[1], prompted.embed(["passage:"], prompt="")[0], atol=1e-5)


def test_similarity_is_cosine(prompted: embedlab.Embedder) -> None:
    a = np.array([[1.0, 0.0], [3.0, 4.0]], dtype=np.float32)
    b = np.array([[0.0, 2.0], [6.0, 8.0]], dtype=np.float32)
    np.testing.assert_allclose(np.asarray(MtebEncoder.similarity(a, b)), [[0.0, 0.6], [0.8, 1.0]], atol=1e-6)
    np.testing.assert_allclose(np.asarray(MtebEncoder.similarity_pairwise(a, b)), [0.0, 1.0], atol=1e-6)


def test_model_meta(prompted: embedlab.Embedder) -> None:
    pytest.importorskip("mteb", reason="mteb is not installed")
    meta = MtebEncoder(prompted, dimensions=16).mteb_model_meta
    assert meta.embed_dim == 16
    assert str(meta.similarity_fn_name.value) == "cosine"
    assert "/" in meta.name


def _scores(result: Any) -> dict[str, float]:
    (task_result,) = result.task_results
    return task_result.scores["test"][0]


def test_mteb_runs_its_mock_tasks_like_our_evaluators(prompted: embedlab.Embedder, tmp_path: Path) -> None:
    mteb = pytest.importorskip("mteb", reason="mteb is not installed")
    from mteb.mocks.mock_tasks.retrieval import MockRetrievalTask, base_retrieval_datasplit
    from mteb.mocks.mock_tasks.sts import MockSTSTask

    encoder = MtebEncoder(prompted)
    retrieval = _scores(mteb.evaluate(encoder, MockRetrievalTask(), cache=None, show_progress_bar=False))
    split = base_retrieval_datasplit()
    root = write_beir(
        tmp_path / "mock",
        [{"_id": d["id"], "title": d["title"], "text": d["text"]} for d in split["corpus"]],
        [{"_id": q["id"], "text": q["text"]} for q in split["queries"]],
        [(q, d, g) for q, judged in split["relevant_docs"].items() for d, g in judged.items()],
    )
    ours = evaluate_retrieval(prompted, load_beir(root))
    for key in ("ndcg_at_1", "ndcg_at_10", "map_at_10", "mrr_at_10", "recall_at_10"):
        assert ours.metrics[key] == pytest.approx(retrieval[key], abs=1e-5), key

    task = MockSTSTask()
    sts = _scores(mteb.evaluate(encoder, task, cache=None, show_progress_bar=False))
    task.load_data()
    rows = task.dataset["test"]
    pairs = StsData(list(rows["sentence1"]), list(rows["sentence2"]), np.asarray(rows["score"], dtype=float))
    assert evaluate_sts(prompted, pairs).score == pytest.approx(sts["cosine_spearman"], abs=1e-9)


@pytest.mark.slow
def test_mteb_on_a_scifact_slice_matches_evaluate_retrieval(
    default_model: embedlab.Embedder, scifact_slice: Path, scifact_slice_report: Any
) -> None:
    """The full MTEB pipeline (its data loader, search and pytrec_eval) and ours agree on real data."""
    mteb = pytest.importorskip("mteb", reason="mteb is not installed")
    from datasets import Dataset
    from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData
    from mteb.mocks.mock_tasks.retrieval import MockRetrievalTask

    corpus = [json.loads(line) for line in (scifact_slice / "corpus.jsonl").read_text().splitlines()]
    queries = [json.loads(line) for line in (scifact_slice / "queries.jsonl").read_text().splitlines()]
    qrels = load_beir(scifact_slice).qrels

    class SciFactSlice(MockRetrievalTask):
        def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
            split = RetrievalSplitData(
                queries=Dataset.from_list([{"id": q["_id"], "text": q["text"]} for q in queries]),
                corpus=Dataset.from_list([{"id": d["_id"], "title": d["title"], "text": d["text"]} for d in corpus]),
                relevant_docs=qrels,
                top_ranked=None,
            )
            self.dataset = {"default": {"test": split}}
            self.data_loaded = True

    task = SciFactSlice()
    task.metadata.eval_splits = ["test"]
    theirs = _scores(mteb.evaluate(MtebEncoder(default_model), task, cache=None, show_progress_bar=False))
    for key in ("ndcg_at_1", "ndcg_at_10", "map_at_10", "mrr_at_10", "recall_at_10", "recall_at_100"):
        assert scifact_slice_report.metrics[key] == pytest.approx(theirs[key], abs=1e-5), key
