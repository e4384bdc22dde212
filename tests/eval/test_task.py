"""Evaluation tasks (eval/task.py): an STS file or a BEIR directory, cut to a limit, scored through the eval module."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import embedlab
from embedlab.engine.embedder import Embedder
from embedlab.errors import ConfigError, DataFileError
from embedlab.eval import evaluate_sts, load_sts
from embedlab.eval.task import load_eval_task

PAIRS = [
    ("the cat sat", "the cat sat on the mat", 4.0),
    ("a dog", "the mat", 0.5),
    ("cat", "a cat", 4.5),
    ("the dog sat", "a dog sat on a mat", 3.5),
    ("query", "passage", 1.0),
]
DOCS = {"d1": "the cat sat on the mat", "d2": "a dog", "d3": "query : passage , 7 8 9", "d4": "x y z ! ? q"}
QUERIES = {"q1": "the cat sat on the mat", "q2": "a dog", "q3": "x y z ! ? q"}  # each is its relevant document
QRELS = {"q1": "d1", "q2": "d2", "q3": "d4"}


@pytest.fixture(scope="module")
def tiny(tiny_bert_dir: Path) -> Embedder:
    return embedlab.load(str(tiny_bert_dir), backend="torch", threads=1)


@pytest.fixture
def sts_file(tmp_path: Path) -> Path:
    path = tmp_path / "sts.csv"
    path.write_text("sentence1,sentence2,score\n" + "\n".join(f"{a},{b},{s}" for a, b, s in PAIRS) + "\n")
    return path


@pytest.fixture
def beir_dir(tmp_path: Path) -> Path:
    root = tmp_path / "beir"
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps({"_id": d, "text": t}) + "\n" for d, t in DOCS.items()))
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in QUERIES.items()))
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, d in QRELS.items())
    )
    return root


def test_an_sts_file(sts_file: Path) -> None:
    task = load_eval_task(sts_file)
    assert (task.kind, task.path, task.size) == ("sts", sts_file, 5)
    assert task.data.sentences1 == [a for a, _, _ in PAIRS]


def test_an_sts_limit_keeps_the_first_pairs(sts_file: Path) -> None:
    task = load_eval_task(sts_file, limit=3)
    assert task.size == 3 and len(task.data) == 3
    assert task.data.sentences2 == [b for _, b, _ in PAIRS[:3]]
    assert task.data.scores.tolist() == [s for _, _, s in PAIRS[:3]]
    assert load_eval_task(sts_file, limit=50).size == 5  # a limit above the size keeps everything


def test_a_beir_directory_and_its_limit(beir_dir: Path) -> None:
    task = load_eval_task(beir_dir)
    assert (task.kind, task.size, task.data.query_ids) == ("retrieval", 3, ["q1", "q2", "q3"])
    cut = load_eval_task(beir_dir, limit=2)
    assert cut.size == 2 and cut.data.query_ids == ["q1", "q2"]
    assert cut.data.query_texts == [QUERIES["q1"], QUERIES["q2"]]
    assert cut.data.qrels == {"q1": {"d1": 1}, "q2": {"d2": 1}}
    assert cut.data.corpus_ids == list(DOCS)  # the corpus is kept whole
    assert cut.data.source.endswith("(first 2 queries)")


def test_bad_paths_and_limits(tmp_path: Path, sts_file: Path) -> None:
    with pytest.raises(DataFileError, match="evaluation data not found"):
        load_eval_task(tmp_path / "nope.csv")
    for limit in (0, -3):
        with pytest.raises(ConfigError, match=f"--eval-limit must be at least 1, got {limit}"):
            load_eval_task(sts_file, limit=limit)
    with pytest.raises(DataFileError, match=r"missing corpus\.jsonl"):
        load_eval_task(tmp_path)  # a directory that is not BEIR


def test_run_scores_sts_like_the_eval_module(tiny: Embedder, sts_file: Path) -> None:
    task = load_eval_task(sts_file, limit=4)
    report = task.run(tiny, "limited", max_tokens=16)
    direct = evaluate_sts(tiny, load_sts(sts_file).head(4), "limited", max_tokens=16)
    assert (report.task, report.metric, report.config, report.n) == ("sts", "cosine_spearman", "limited", 4)
    assert report.score == pytest.approx(direct.score, abs=1e-9)


def test_run_scores_retrieval(tiny: Embedder, beir_dir: Path) -> None:
    report = load_eval_task(beir_dir).run(tiny, "beir")
    assert (report.task, report.metric, report.config, report.n) == ("retrieval", "ndcg_at_10", "beir", 3)
    # every query is the exact text of its one relevant document: cosine 1, ranked first, nDCG@10 = 1
    assert report.score == pytest.approx(1.0)
