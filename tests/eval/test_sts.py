"""STS loader on small files written here, bad input, and the evaluator on a tiny real model."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import embedlab
from embedlab.engine.vector_precision import PRECISIONS, dequantize, quantize, ranges_of
from embedlab.errors import ConfigError, DataFileError, InputError
from embedlab.eval.metrics import pearson, spearman
from embedlab.eval.sts import StsData, evaluate_sts, evaluate_sts_by_precision, load_sts

STSB_LINES = [
    "main-captions\tMSRvid\t2012test\t0001\t5.000\tA plane is taking off.\tAn air plane is taking off.",
    # extra trailing fields, and a bare quote character that must stay text
    'main-news\theadlines\t2015\t0002\t1.5\tHe said "no\tShe said yes.\tsource-a\tsource-b',
    "main-forums\tdeft\t2014\t0003\t0.000\tthe cat sat\tstock markets fell",
]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_the_sts_benchmark_layout(tmp_path: Path) -> None:
    data = load_sts(write(tmp_path / "sts-test.csv", "\n".join(STSB_LINES) + "\n"))
    assert len(data) == 3
    assert data.sentences1 == ["A plane is taking off.", 'He said "no', "the cat sat"]
    assert data.sentences2 == ["An air plane is taking off.", "She said yes.", "stock markets fell"]
    assert data.scores.tolist() == [5.0, 1.5, 0.0]


def test_reads_a_tsv_with_header_and_custom_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "pairs.tsv", 'left\tright\tgold\n"quoted" text\tother\t0.25\nx\ty\t4\n')
    data = load_sts(path, sentence1="left", sentence2="right", score="gold")
    assert data.sentences1 == ['"quoted" text', "x"]  # tab files: quotes are text
    assert data.scores.tolist() == [0.25, 4.0]


def test_reads_a_quoted_csv(tmp_path: Path) -> None:
    path = write(tmp_path / "pairs.csv", 'score,sentence1,sentence2\n3,"a, b",c\n1,d,"e ""f"""\n')
    data = load_sts(path)
    assert data.sentences1 == ["a, b", "d"]
    assert data.sentences2 == ["c", 'e "f"']


def test_reads_a_gzipped_file_with_a_split_column(tmp_path: Path) -> None:
    text = "split\tscore\tsentence1\tsentence2\ntrain\t1\ta\tb\ntest\t2\tc\td\ntest\t3\te\tf\n"
    path = tmp_path / "sts.tsv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    data = load_sts(path, split="test")
    assert data.sentences1 == ["c", "e"]
    with pytest.raises(DataFileError, match="holds the splits test, train; choose one"):
        load_sts(path)
    with pytest.raises(DataFileError, match="no sentence pairs for split 'dev'"):
        load_sts(path, split="dev")


def test_head_keeps_the_first_pairs(tmp_path: Path) -> None:
    data = load_sts(write(tmp_path / "s.csv", "\n".join(STSB_LINES)))
    assert data.head(2).sentences1 == data.sentences1[:2]
    with pytest.raises(ConfigError):
        data.head(0)


@pytest.mark.parametrize(
    ("name", "text", "options", "message"),
    [
        ("cols.csv", "a,b,c\n1,2,3\n", {}, "names no column 'sentence1', 'sentence2', 'score'"),
        ("cols.tsv", "sentence1\tsentence2\tgold\nx\ty\t1\n", {"score": "grade"}, "no column 'grade'"),
        ("short.csv", STSB_LINES[0] + "\nmain\tx\t2012\t01\t2.0\tonly one sentence\n", {}, "line 2 has 6"),
        (
            "score.csv",
            STSB_LINES[0].replace("5.000", "5.000") + "\ng\tf\ty\ti\thigh\ta\tb\n",
            {},
            "line 2: score 'high'",
        ),
        ("empty-sentence.tsv", "sentence1\tsentence2\tscore\n \tb\t1\n", {}, "line 2: sentence1 is empty"),
        ("nan.tsv", "sentence1\tsentence2\tscore\na\tb\tnan\n", {}, "not a finite number"),
        ("empty.csv", "\n\n", {}, "is empty"),
        ("header-only.tsv", "sentence1\tsentence2\tscore\n", {}, "holds no sentence pairs"),
        ("few-fields.tsv", "sentence1\tsentence2\tscore\na\tb\n", {}, "line 2 has 2 fields"),
    ],
)
def test_bad_files_are_clear_errors(tmp_path: Path, name: str, text: str, options: dict, message: str) -> None:
    with pytest.raises(DataFileError, match=message):
        load_sts(write(tmp_path / name, text), **options)


def test_missing_file_and_split_without_split_column(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="STS file not found"):
        load_sts(tmp_path / "nope.csv")
    with pytest.raises(ConfigError, match="no 'split' column"):
        load_sts(write(tmp_path / "s.csv", "\n".join(STSB_LINES)), split="test")


# -- the evaluator -------------------------------------------------------------------------------

PAIRS = StsData(
    sentences1=["the cat sat on the mat", "a dog", "the cat", "query one", "abc def"],
    sentences2=["the cat sat on a mat", "a cat", "stock prices", "passage two", "abc deg"],
    scores=np.array([5.0, 3.0, 0.5, 1.0, 4.0]),
    source="hand-made",
)


@pytest.fixture(scope="module")
def tiny(make_tiny_bert: Callable[..., Path]) -> embedlab.Embedder:
    return embedlab.load(str(make_tiny_bert()), backend="torch", threads=1)


def test_evaluate_sts_correlates_cosine_with_gold(tiny: embedlab.Embedder) -> None:
    report = evaluate_sts(tiny, PAIRS, "my-config")
    vectors = tiny.embed(PAIRS.sentences1 + PAIRS.sentences2)
    a, b = vectors[:5], vectors[5:]
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert report.score == pytest.approx(spearman(cosine, PAIRS.scores), abs=1e-9)
    assert report.metrics["cosine_pearson"] == pytest.approx(pearson(cosine, PAIRS.scores), abs=1e-6)
    assert (report.task, report.metric, report.config, report.n) == ("sts", "cosine_spearman", "my-config", 5)
    assert report.details["texts"] == 10
    assert report.details["tokens"] > 10
    assert report.details["settings"]["backend"] == "torch"
    assert report.tokens_per_second > 0


def test_evaluate_sts_passes_embedding_options_on(tiny: embedlab.Embedder) -> None:
    full = evaluate_sts(tiny, PAIRS)
    cut = evaluate_sts(tiny, PAIRS, max_tokens=4, dimensions=8)
    assert cut.details["truncated_texts"] > 0
    assert cut.details["settings"]["max_tokens"] == 4
    assert cut.details["settings"]["dimensions"] == 8
    assert full.details["truncated_texts"] == 0
    assert full.config == "default"


def test_progress_is_reported(tiny: embedlab.Embedder) -> None:
    seen: list[tuple[str, int, int]] = []
    evaluate_sts(tiny, PAIRS, progress=lambda stage, done, total: seen.append((stage, done, total)))
    assert seen[-1] == ("sentences", 10, 10)


def test_evaluate_sts_rejects_unusable_data_and_options(tiny: embedlab.Embedder) -> None:
    flat = StsData(["a", "b"], ["c", "d"], np.array([2.0, 2.0]))
    with pytest.raises(InputError, match=r"all gold scores .* are equal"):
        evaluate_sts(tiny, flat)
    with pytest.raises(InputError, match="at least 2"):
        evaluate_sts(tiny, StsData(["a"], ["b"], np.array([1.0])))
    with pytest.raises(ConfigError, match="unknown embedding option 'batch_size'"):
        evaluate_sts(tiny, PAIRS, batch_size=3)


# -- precisions ----------------------------------------------------------------------------------


def test_sts_rows_per_precision_from_one_embedding_pass(tiny: embedlab.Embedder) -> None:
    rows = evaluate_sts_by_precision(tiny, PAIRS, "cfg")
    plain = evaluate_sts(tiny, PAIRS, "cfg")
    assert [row.config for row in rows] == [f"cfg,precision={p}" for p in PRECISIONS]
    assert rows[0].metrics == plain.metrics  # float32: today's cosine, the very same numbers
    assert all(row.details["texts"] == 10 for row in rows)
    assert [row.details["bytes_per_vector"] for row in rows] == [128, 64, 32, 32, 4, 4]
    assert [row.details["similarity"] for row in rows] == ["cosine"] * 4 + ["1 - hamming / d"] * 2

    vectors = tiny.embed(PAIRS.sentences1 + PAIRS.sentences2)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    a, b = vectors[:5], vectors[5:]
    agreeing_bits = 1 - ((a > 0) != (b > 0)).sum(axis=1) / 32
    assert rows[4].score == pytest.approx(spearman(agreeing_bits, PAIRS.scores), abs=1e-12)
    assert rows[5].metrics == rows[4].metrics
    va = dequantize(quantize(a, "int8"), "int8").astype(np.float64)
    vb = dequantize(quantize(b, "int8"), "int8").astype(np.float64)
    cosine = (va * vb).sum(1) / np.linalg.norm(va, axis=1) / np.linalg.norm(vb, axis=1)
    assert rows[2].metrics["cosine_pearson"] == pytest.approx(pearson(cosine, PAIRS.scores), abs=1e-6)
    assert rows[3].metrics == pytest.approx(rows[2].metrics)


def test_sts_int8_ranges_measured_on_the_pairs(tiny: embedlab.Embedder) -> None:
    vectors = tiny.embed(PAIRS.sentences1 + PAIRS.sentences2)
    ranges = ranges_of(vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    by_corpus = evaluate_sts(tiny, PAIRS, precision="int8", int8_ranges="corpus")
    given = evaluate_sts(tiny, PAIRS, precision="int8", int8_ranges=ranges)
    assert by_corpus.metrics == given.metrics
    assert by_corpus.config == "precision=int8,int8_ranges=corpus" and by_corpus.details["int8_ranges"] == "corpus"
    by_texts = evaluate_sts(tiny, PAIRS, precision="int8", int8_ranges=["the cat", "a dog sat", "stock"])
    assert by_texts.details["calibration_texts"] == 3 and by_texts.details["texts"] == 10


def test_sts_rejects_bad_precisions(tiny: embedlab.Embedder) -> None:
    with pytest.raises(ConfigError, match="unknown precision 'fp8'; choose one of float32, float16"):
        evaluate_sts_by_precision(tiny, PAIRS, precisions=["float32", "fp8"])
    with pytest.raises(ConfigError, match="apply to int8 and uint8"):
        evaluate_sts(tiny, PAIRS, int8_ranges="corpus")
