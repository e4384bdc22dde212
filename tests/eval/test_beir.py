"""The BEIR loader: folders written here, other splits and layouts, and bad input named clearly."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from embedlab.errors import DataFileError
from embedlab.eval.beir import document_text, load_beir

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


def test_document_text_is_title_space_text_like_mteb() -> None:
    assert document_text("Title", "body ") == "Title body"
    assert document_text("", " body ") == "body"
    assert document_text(None, "body") == "body"


def test_load_beir(beir_writer: Callable[..., Path]) -> None:
    data = load_beir(beir_writer("ok", CORPUS, QUERIES, QRELS))
    assert data.corpus_ids == ["d1", "d2", "d3", "d4"]
    assert data.corpus_texts == [
        "cats the cat sat on the mat",
        "a dog barked",
        "stocks markets fell",
        "a cat and a dog",
    ]
    assert data.query_ids == ["q1", "q2"]  # q3 has no judgments in the split
    assert data.query_texts == ["cat on mat", "dog"]
    assert data.qrels == {"q1": {"d1": 2, "d4": 1}, "q2": {"d2": 1, "d3": 0}}
    assert data.notes == []


def test_load_beir_reads_other_splits_trec_layout_and_integral_floats(tmp_path: Path) -> None:
    root = tmp_path / "trec"
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in CORPUS))
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUERIES))
    (root / "qrels" / "dev.tsv").write_text("q1 0 d1 1\nq2 0 d2 2.0\n")
    data = load_beir(root, split="dev")
    assert data.qrels == {"q1": {"d1": 1}, "q2": {"d2": 2}}


@pytest.mark.parametrize(
    ("corpus", "queries", "qrels", "message"),
    [
        (CORPUS, QUERIES, [("q9", "d1", 1)], r"1 query id\(s\) not in queries.jsonl: 'q9'"),
        (CORPUS, QUERIES, [("q1", "d9", 1), ("q1", "d8", 1)], r"2 document id\(s\) not in corpus.jsonl: 'd8', 'd9'"),
        ([*CORPUS, {"_id": "d1", "text": "again"}], QUERIES, QRELS, "repeats document id 'd1'"),
        ([{"title": "no id", "text": "x"}], QUERIES, QRELS, "line 1 has no '_id'"),
        ([{"_id": "d1", "title": "", "text": "  "}], QUERIES, [("q1", "d1", 1)], "'d1' has no title and no text"),
        ([], QUERIES, QRELS, "holds no documents"),
        (CORPUS, [{"_id": "q1", "text": " "}], [("q1", "d1", 1)], "query 'q1' has no text"),
        (CORPUS, QUERIES, [("q1", "d1", "0.5")], "not an integer grade"),
        (CORPUS, QUERIES, [("q1", "d1", "high")], "relevance 'high' is not a number"),
        (CORPUS, QUERIES, [("q1", "d1", 1), ("q1", "d1", 2)], "judges document 'd1' twice"),
        (CORPUS, QUERIES, [], "holds no relevance judgments"),
    ],
)
def test_bad_folders_are_clear_errors(
    beir_writer: Callable[..., Path], corpus: list, queries: list, qrels: list, message: str
) -> None:
    with pytest.raises(DataFileError, match=message):
        load_beir(beir_writer("bad", corpus, queries, qrels))


def test_missing_pieces_are_named(beir_writer: Callable[..., Path], tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="BEIR data directory not found"):
        load_beir(tmp_path / "nowhere")
    root = beir_writer("parts", CORPUS, QUERIES, QRELS)
    with pytest.raises(DataFileError, match=r"missing qrels file .*dev\.tsv; splits present: test"):
        load_beir(root, split="dev")
    (root / "queries.jsonl").unlink()
    with pytest.raises(DataFileError, match=r"missing queries\.jsonl"):
        load_beir(root)


def test_invalid_json_line_is_named(beir_writer: Callable[..., Path]) -> None:
    root = beir_writer("json", CORPUS, QUERIES, QRELS)
    (root / "corpus.jsonl").write_text('{"_id": "d1", "text": "x"}\nnot json\n')
    with pytest.raises(DataFileError, match=r"corpus\.jsonl: line 2 is not valid JSON"):
        load_beir(root)


def test_lenient_load_drops_unknown_queries_and_keeps_unknown_documents(beir_writer: Callable[..., Path]) -> None:
    root = beir_writer("lenient", CORPUS, QUERIES, [*QRELS, ("q9", "d1", 1), ("q2", "d9", 1)])
    data = load_beir(root, strict=False)
    assert data.query_ids == ["q1", "q2"]
    assert data.qrels["q2"] == {"d2": 1, "d3": 0, "d9": 1}
    assert len(data.notes) == 2
    with pytest.raises(DataFileError, match="no judged query"):
        load_beir(beir_writer("none", CORPUS, QUERIES, [("q9", "d1", 1)]), strict=False)


# -- search --------------------------------------------------------------------------------------
