from __future__ import annotations

import json
from pathlib import Path

import pytest

from embedlab.cli import main


def run_cli(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


@pytest.fixture(scope="module")
def two_results(tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("bench-cli")
    common = ["bench", "-m", str(tiny_bert_dir), "--seq", "8", "--threads", "1", "--repeat", "1", "--quiet"]
    common += ["--warmup", "0", "--tokens-per-run", "16", "--no-cache"]
    assert run_cli(*common, "--batch", "1,2", "-o", str(out / "a.json"), "--report", str(out / "a.html")) == 0
    assert run_cli(*common, "--batch", "2,4", "-o", str(out / "b.json"), "--json") == 0
    return out / "a.json", out / "b.json"


def test_bench_saves_json_and_report(two_results: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    a, _ = two_results
    result = json.loads(a.read_text())
    assert [p["config"]["batch"] for p in result["points"]] == [1, 2]
    assert result["cache"] == {"status": "skipped", "reason": "turned off (--no-cache)"}
    assert "cache point skipped: turned off (--no-cache)" in result["notes"]
    assert a.with_suffix(".html").read_text().startswith("<!doctype html>")


def test_bench_prints_a_table(tiny_bert_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bench", "-m", str(tiny_bert_dir), "--seq", "8", "--batch", "2", "--threads", "1", "--repeat", "1"]
    assert run_cli(*args, "--warmup", "0", "--tokens-per-run", "8", "--no-cache", "-q") == 0
    out = capsys.readouterr().out
    assert "real tok/s" in out and "p50/p95/p99 ms" in out and "tok/model/pool/other %" in out
    assert "1 timed runs per point" in out and "fp32 matmul peak" in out


def test_compare_prints_ratios(two_results: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    a, b = two_results
    capsys.readouterr()
    assert run_cli("bench", "compare", str(a), str(b)) == 0
    out = capsys.readouterr().out
    assert "throughput B/A" in out and "1 points matched" in out
    assert "only in A" in out and "batch=1" in out and "only in B" in out and "batch=4" in out
    assert run_cli("bench", "compare", str(a), str(b), "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["points"]) == 1 and data["points"][0]["key"].endswith("batch=2|seq=8|threads=1")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch", "0"], "--batch: values must be at least 1, got 0"),
        (["--batch", "1,two"], "--batch: values must be whole numbers"),
        (["--backend", "torch,tensorrt"], "unknown backend 'tensorrt'"),
        (["--seq", "65"], "sequence length 65 is above the limit"),
        (["--threads", "0"], "--threads: values must be at least 1"),
        (["--synthetic", "hidden=64"], "--synthetic needs layers"),
        (["--data", "missing-file.txt"], "missing-file.txt"),
    ],
)
def test_bad_input_is_one_clear_error(
    tiny_bert_dir: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert run_cli("bench", "-m", str(tiny_bert_dir), "-q", *args) == 2
    err = capsys.readouterr().err
    assert "error:" in err and message in " ".join(err.split()) and "Traceback" not in err


def test_compare_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x.json").write_text("[]")
    assert run_cli("bench", "compare", str(tmp_path / "x.json"), str(tmp_path / "x.json")) == 2
    assert "not an embedlab bench result" in capsys.readouterr().err


def test_calibrate_prints_the_table_and_inspect_then_shows_the_choice(
    tiny_bert_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EMBEDLAB_CACHE_DIR", str(tmp_path / "cache"))
    inspect_args = ["inspect", "-m", str(tiny_bert_dir), "-b", "1", "-L", "8", "--threads", "1", "--no-flop-count"]
    assert run_cli(*inspect_args) == 0
    assert "not calibrated here yet" in capsys.readouterr().out
    assert run_cli("bench", "--calibrate", "-m", str(tiny_bert_dir), "--threads", "1", "--json") == 0
    record = json.loads(capsys.readouterr().out)
    chosen = record["decision"]["small"]
    assert not record["fallback"] and record["facts"]["threads"] == 1
    assert {c["name"] for c in record["candidates"] if c["proven"]} >= {"torch", "onnx"}
    assert run_cli(*inspect_args, "--json") == 0
    summary = json.loads(capsys.readouterr().out)["auto_backend"]
    assert summary["key"] == record["key"] and summary["chosen"].startswith(chosen)
    assert run_cli("bench", "--calibrate", "-m", str(tiny_bert_dir), "--threads", "1") == 0
    out = capsys.readouterr().out
    assert "auto -> " in out and "reference torch" in out and "query" in out
    assert run_cli("bench", "--calibrate", "-m", str(tiny_bert_dir), "--threads", "1,2") == 2
