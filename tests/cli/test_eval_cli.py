"""``embedlab eval sts|retrieval`` through the real CLI entry point, on a tiny real model."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from embedlab.cli import main

STS_TSV = "sentence1\tsentence2\tscore\n" + "".join(
    f"{a}\t{b}\t{s}\n"
    for a, b, s in [
        ("the cat sat on the mat", "the cat sat on a mat", 5),
        ("a dog", "a cat", 3),
        ("the cat", "stock prices", 0.5),
        ("stock markets", "markets fell", 3.5),
        ("abc def ghi", "abc def", 4),
    ]
)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out, captured.err


@pytest.fixture(scope="module")
def model(make_tiny_bert: Callable[..., Path]) -> str:
    return str(make_tiny_bert())


@pytest.fixture
def sts_file(tmp_path: Path) -> Path:
    path = tmp_path / "pairs.tsv"
    path.write_text(STS_TSV, encoding="utf-8")
    return path


@pytest.fixture
def beir_dir(tmp_path: Path) -> Path:
    root = tmp_path / "beir"
    (root / "qrels").mkdir(parents=True)
    docs = ["the cat sat on the mat", "a dog barked", "stock markets fell", "a cat and a dog"]
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": f"d{i}", "title": "", "text": t}) + "\n" for i, t in enumerate(docs))
    )
    (root / "queries.jsonl").write_text('{"_id": "q1", "text": "cat"}\n{"_id": "q2", "text": "markets"}\n')
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td0\t1\nq1\td3\t1\nq2\td2\t1\n")
    return root


def test_sts_json_is_one_object_on_stdout(model: str, sts_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["eval", "sts", "--data", str(sts_file), "--model", model, "--json", "--threads", "1"], capsys)
    assert code == 0
    report = json.loads(out)
    assert report["task"] == "sts" and report["metric"] == "cosine_spearman" and report["n"] == 5
    assert report["config"] == "threads=1"  # what differs from the default settings
    assert -1.0 <= report["score"] <= 1.0 and report["seconds"] > 0


def test_sts_compare_table_and_saved_json(
    model: str, sts_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "out.json"
    argv = ["eval", "sts", "--data", str(sts_file), "--model", model, "-q", "--save", str(saved), "--threads", "1"]
    code, out, _ = run([*argv, "--compare", "", "--compare", "max_tokens=5;dimensions=8"], capsys)
    assert code == 0
    assert "Spearman" in out and "max_tokens=5" in out and "dimensions=8" in out
    data = json.loads(saved.read_text())
    labels = ["threads=1", "threads=1,max_tokens=5", "threads=1,dimensions=8"]  # base flags show in labels
    assert [row["config"] for row in data["results"]] == labels
    assert data["results"][0]["delta"] == 0.0
    assert data["results"][1]["details"]["truncated_texts"] > 0


def test_retrieval_table_and_json(model: str, beir_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["eval", "retrieval", "--data", str(beir_dir), "--model", model, "-q", "--threads", "1"], capsys)
    assert code == 0
    assert "nDCG@10" in out and "R@100" in out
    code, out, _ = run(
        [
            "eval",
            "retrieval",
            "--data",
            str(beir_dir),
            "--model",
            model,
            "--json",
            "--max-tokens",
            "8",
            "--threads",
            "1",
        ],
        capsys,
    )
    report = json.loads(out)
    assert report["metric"] == "ndcg_at_10" and report["n"] == 2 and report["config"] == "threads=1,max_tokens=8"
    assert set(report["metrics"]) >= {"map_at_10", "mrr_at_10", "recall_at_10", "recall_at_100"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval", "sts", "--data", "/no/such/file.tsv"], "STS file not found"),
        (["eval", "retrieval", "--data", "/no/such/dir"], "BEIR data directory not found"),
        (["eval", "sts", "--data", "{sts}", "--compare", "speed=fast"], "unknown configuration key 'speed'"),
        (["eval", "sts", "--data", "{sts}", "--long-input", "drop"], "long_input"),
        (["eval", "sts", "--data", "{sts}", "--score-column", "gold"], "no column 'gold'"),
    ],
)
def test_bad_input_is_one_error_line(
    args: list[str], message: str, model: str, sts_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [a.replace("{sts}", str(sts_file)) for a in args] + ["--model", model, "--threads", "1"]
    code, out, err = run(argv, capsys)
    assert code == 2
    assert "error:" in err and message in err
    assert "Traceback" not in err and out == ""


ALL_PRECISIONS = "float32,float16,int8,uint8,binary,ubinary"


def test_retrieval_per_precision_rows_with_rescoring(
    model: str, beir_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["eval", "retrieval", "--data", str(beir_dir), "--model", model, "--json", "--threads", "1"]
    code, out, _ = run(base, capsys)
    assert code == 0
    plain = json.loads(out)
    code, out, _ = run([*base, "--precision", ALL_PRECISIONS, "--rescore", "100"], capsys)
    assert code == 0
    result = json.loads(out)
    rows = result["results"]
    assert [row["config"] for row in rows] == [
        "threads=1,precision=float32",
        "threads=1,precision=float16",
        "threads=1,precision=int8,rescore=100",
        "threads=1,precision=uint8,rescore=100",
        "threads=1,precision=binary,rescore=100",
        "threads=1,precision=ubinary,rescore=100",
    ]
    assert rows[0]["metrics"] == plain["metrics"] and rows[0]["score"] == plain["score"]
    assert [row["details"]["bytes_per_vector"] for row in rows] == [128, 64, 32, 32, 4, 4]
    assert result["baseline"] == "threads=1,precision=float32" and rows[0]["delta"] == 0.0


def test_retrieval_precision_table_and_int8_ranges_from_a_file(
    model: str, beir_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    texts = tmp_path / "calibration.txt"
    texts.write_text("the cat sat\nstock markets fell\na dog barked at the mat\n", encoding="utf-8")
    argv = ["eval", "retrieval", "--data", str(beir_dir), "--model", model, "-q", "--threads", "1"]
    code, out, _ = run([*argv, "--precision", "int8,binary", "--int8-ranges", str(texts)], capsys)
    assert code == 0
    assert "bytes/vec" in out and "precision=int8,int8_ranges=texts" in out and "precision=binary" in out


def test_sts_per_precision_rows(model: str, sts_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["eval", "sts", "--data", str(sts_file), "--model", model, "--json", "--threads", "1"]
    code, out, _ = run(base, capsys)
    plain = json.loads(out)
    code, out, _ = run([*base, "--precision", ALL_PRECISIONS, "--int8-ranges", "corpus"], capsys)
    assert code == 0
    rows = json.loads(out)["results"]
    assert [row["details"]["precision"] for row in rows] == ALL_PRECISIONS.split(",")
    assert rows[0]["metrics"] == plain["metrics"]
    assert rows[2]["config"] == "threads=1,precision=int8,int8_ranges=corpus"
    assert rows[4]["details"]["similarity"] == "1 - hamming / d"


def test_precision_with_compare_gives_a_row_per_configuration_and_precision(
    model: str, sts_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["eval", "sts", "--data", str(sts_file), "--model", model, "--json", "--threads", "1"]
    code, out, _ = run([*argv, "--precision", "float32,binary", "--compare", "", "--compare", "dimensions=8"], capsys)
    assert code == 0
    assert [row["config"] for row in json.loads(out)["results"]] == [
        "threads=1,precision=float32",
        "threads=1,precision=binary",
        "threads=1,dimensions=8,precision=float32",
        "threads=1,dimensions=8,precision=binary",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["eval", "retrieval", "--data", "{beir}", "--precision", "float32,int4"],
            "unknown precision 'int4'; choose one of float32, float16, int8, uint8, binary, ubinary",
        ),
        (["eval", "sts", "--data", "{sts}", "--precision", "int8,int8"], "precision 'int8' is given twice"),
        (["eval", "retrieval", "--data", "{beir}", "--rescore", "100"], "rescoring applies to int8, uint8"),
        (
            ["eval", "retrieval", "--data", "{beir}", "--precision", "float32,float16", "--rescore", "100"],
            "none of the precisions (float32, float16) is one",
        ),
        (
            ["eval", "retrieval", "--data", "{beir}", "--precision", "binary", "--rescore", "10"],
            "rescore 10 is below the largest cutoff (100)",
        ),
        (["eval", "retrieval", "--data", "{beir}", "--precision", "binary", "--rescore", "-1"], "rescore must be ≥ 0"),
        (["eval", "sts", "--data", "{sts}", "--int8-ranges", "corpus"], "apply to int8 and uint8"),
        (["eval", "sts", "--data", "{sts}", "--precision", "int8", "--int8-ranges", "wide"], "no file 'wide'"),
    ],
)
def test_bad_precision_options_are_one_error_line(
    args: list[str], message: str, model: str, sts_file: Path, beir_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [a.replace("{sts}", str(sts_file)).replace("{beir}", str(beir_dir)) for a in args]
    code, out, err = run([*argv, "--model", model, "--threads", "1"], capsys)
    assert code == 2
    assert err.startswith("error:") and message in err and len(err.strip().splitlines()) == 1
    assert out == ""
