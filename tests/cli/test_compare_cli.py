"""``embedlab compare`` from the command line: tables, --json with the fields scripts read, plots, one-line errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from embedlab.cli import main

FAST = ["--backends", "onnx", "--sample", "20", "--rounds", "1", "--queries", "5"]
JSON_FIELDS = {
    "name",
    "params",
    "embedding_params",
    "layers",
    "hidden",
    "dim",
    "max_tokens",
    "disk_mb",
    "peak_rss_mb",
    "tokens_per_s",
    "query_p50_ms",
    "truncated_share",
    "score",
    "bytes_per_vector",
    "pareto",
}


def run_cli(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def test_json_has_every_field_a_script_chooses_by(
    make_tiny_bert: Callable[..., Path], sts_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small, large = make_tiny_bert(), make_tiny_bert(hidden=64, layers=3, heads=4, intermediate=128, seed=1)
    assert run_cli("compare", "--models", f"{small},{large}", "--data", str(sts_file), "--json", *FAST) == 0
    payload = json.loads(capsys.readouterr().out)
    assert len(payload["models"]) == 2 and payload["metric"] == "cosine_spearman"
    for model in payload["models"]:
        assert set(model) >= JSON_FIELDS
        assert model["bytes_per_vector"] == {
            "float32": 4 * model["dim"],
            "float16": 2 * model["dim"],
            "int8": model["dim"],
            "uint8": model["dim"],
            "binary": model["dim"] // 8,
            "ubinary": model["dim"] // 8,
        }
        assert isinstance(model["score"], float) and isinstance(model["pareto"], bool)
    assert payload["models"][1]["params"] > payload["models"][0]["params"]


def test_tables_and_plots(
    tiny_bert_dir: Path, texts_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png, html = tmp_path / "front.png", tmp_path / "front.html"
    args = ["compare", "--models", str(tiny_bert_dir), "--texts", str(texts_file), *FAST]
    assert run_cli(*args, "--plot", str(png), "--save", str(tmp_path / "out.json")) == 0
    out = capsys.readouterr().out
    for heading in ("Models: what they are", "Measured on this machine", "Options: output dimension × precision"):
        assert heading in out
    assert "no --data: no quality column" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "out.json").read_text())["models"][0]["score"] is None
    assert run_cli(*args, "--plot", str(html)) == 0
    page = html.read_text()
    assert "<table>" in page and "data:image/png;base64," in page


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--precisions", "float32,int4"], "unknown precision 'int4'; choose one of float32, float16"),
        (["--plot", "front.svg"], "plots are .png or .html"),
        (["--dimensions", "128,x"], "--dimensions takes comma-separated whole numbers"),
        (["--models", "nobody/no-such-model"], "model 'nobody/no-such-model' not found; tried: local directory"),
    ],
)
def test_errors_are_one_line_and_exit_2(
    tiny_bert_dir: Path,
    texts_file: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    extra: list[str],
    message: str,
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = run_cli("compare", "--models", str(tiny_bert_dir), "--texts", str(texts_file), *FAST, *extra)
    err = capsys.readouterr().err
    assert code == 2
    assert message in " ".join(err.split())
    assert "Traceback" not in err
