from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import embedlab
from embedlab.cli import main

SEEDS = [
    "This framework generates embeddings for each input sentence",
    "Sentences are passed as a list of string.",
    "The quick brown fox jumps over the lazy dog",
]


def run_cli(*args: str) -> tuple[int, str]:
    """Run ``embedlab ARGS`` in-process; return (exit code, stderr-ish output is on the capsys side)."""
    try:
        main(list(args))
    except SystemExit as exit_:
        return int(exit_.code or 0), ""
    return 0, ""


@pytest.mark.slow
def test_default_model_end_to_end_in_a_subprocess(tmp_path: Path) -> None:
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(SEEDS) + "\n")
    out = tmp_path / "vectors.npy"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "embedlab", "embed", "--input", str(texts), "--output", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    vectors = np.load(out)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert "embedded 3 texts (35 tokens, 0 truncated)" in done.stderr
    assert "tokens/s" in done.stderr


def test_jsonl_to_parquet_with_ids(tmp_path: Path, tiny_bert_dir: Path) -> None:
    data = tmp_path / "in.jsonl"
    data.write_text("\n".join(json.dumps({"id": f"d{i}", "body": "the cat " * (i + 1)}) for i in range(7)))
    out = tmp_path / "out.parquet"
    code, _ = run_cli(
        "embed", "-i", str(data), "-o", str(out), "--model", str(tiny_bert_dir), "--text-field", "body", "-q"
    )
    assert code == 0
    table = pq.read_table(out)
    assert table.column("id").to_pylist() == [f"d{i}" for i in range(7)]
    expected = embedlab.load(str(tiny_bert_dir)).embed(["the cat " * (i + 1) for i in range(7)])
    np.testing.assert_allclose(np.array(table.column("vector").to_pylist(), dtype=np.float32), expected, atol=1e-5)


def test_options_reach_the_engine(tmp_path: Path, tiny_bert_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "in.txt"
    data.write_text("a b c d e f g h i j k l m n o p q r s t u v w x y z\nthe cat\n")
    out = tmp_path / "out.jsonl"
    code, _ = run_cli(
        "embed", "-i", str(data), "-o", str(out), "-m", str(tiny_bert_dir), "--max-tokens", "8", "--dimensions", "16"
    )
    assert code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [len(r["embedding"]) for r in rows] == [16, 16]
    assert "1 truncated" in capsys.readouterr().err


def test_config_file_sets_defaults(tmp_path: Path, tiny_bert_dir: Path) -> None:
    data = tmp_path / "in.txt"
    data.write_text("the cat sat\n")
    config = tmp_path / "settings.json"
    config.write_text(json.dumps({"model": str(tiny_bert_dir), "dimensions": 8, "backend": "onnx"}))
    out = tmp_path / "out.npy"
    assert run_cli("embed", "-i", str(data), "-o", str(out), "--config", str(config), "-q")[0] == 0
    assert np.load(out).shape == (1, 8)
    config.write_text(json.dumps({"modle": "typo"}))
    assert run_cli("embed", "-i", str(data), "-o", str(out), "--config", str(config), "--overwrite")[0] == 2


@pytest.mark.parametrize(
    ("setup", "args", "fragment"),
    [
        ("none", ["-i", "{tmp}/missing.txt", "-o", "{tmp}/o.npy"], "no such file"),
        ("empty_line", ["-i", "{tmp}/in.txt", "-o", "{tmp}/o.npy"], "line 2 is empty"),
        ("ok", ["-i", "{tmp}/in.txt", "-o", "{tmp}/in.txt.bad"], "unsupported output type"),
        ("exists", ["-i", "{tmp}/in.txt", "-o", "{tmp}/o.npy"], "already exists"),
        ("ok", ["-i", "{tmp}/in.txt", "-o", "{tmp}/o.npy", "-m", "nobody/nothing-here"], "not found; tried"),
        ("ok", ["-i", "{tmp}/in.txt", "-o", "{tmp}/o.npy", "--long-input", "drop"], "long_input"),
        ("long", ["-i", "{tmp}/in.txt", "-o", "{tmp}/o.npy", "--long-input", "error", "-m", "{tiny}"], "input 0 has"),
    ],
)
def test_errors_are_one_clear_line_and_exit_2(
    tmp_path: Path,
    tiny_bert_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    setup: str,
    args: list[str],
    fragment: str,
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    text = {"empty_line": "a\n\nb\n", "long": "a " * 200 + "\n"}.get(setup, "the cat\n")
    if setup != "none":
        (tmp_path / "in.txt").write_text(text)
    if setup == "exists":
        (tmp_path / "o.npy").write_bytes(b"x")
    argv = [a.format(tmp=tmp_path, tiny=tiny_bert_dir) for a in args]
    code, _ = run_cli("embed", *argv, "-q")
    err = capsys.readouterr().err
    assert code == 2
    assert fragment in err
    assert "Traceback" not in err
    if setup == "exists":
        assert (tmp_path / "o.npy").read_bytes() == b"x"


@pytest.mark.parametrize("precision", ["float16", "int8", "uint8", "binary", "ubinary"])
def test_precision_is_stored_in_every_format(tmp_path: Path, tiny_bert_dir: Path, precision: str) -> None:
    """The file holds exactly what ``embed(precision=...)`` returns: its dtype and width, in .npy, .parquet, .jsonl."""
    from embedlab.engine.vector_precision import quantize

    texts = ["the cat sat", "a dog on the mat", "query passage"]
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(texts) + "\n")
    floats = embedlab.load(str(tiny_bert_dir), backend="torch").embed(texts)
    expected = quantize(floats, precision)  # type: ignore[arg-type]
    common = [
        "embed",
        "-i",
        str(source),
        "-m",
        str(tiny_bert_dir),
        "--backend",
        "torch",
        "--precision",
        precision,
        "-q",
    ]
    for suffix in (".npy", ".parquet", ".jsonl"):
        assert run_cli(*common, "-o", str(tmp_path / f"v{suffix}"))[0] == 0
    stored = np.load(tmp_path / "v.npy")
    assert stored.dtype == expected.dtype and stored.shape == expected.shape == (3, 4 if "binary" in precision else 32)
    np.testing.assert_array_equal(stored, expected)
    table = pq.read_table(tmp_path / "v.parquet")
    np.testing.assert_array_equal(np.array(table.column("vector").to_pylist(), dtype=expected.dtype), expected)
    assert str(table.schema.field("vector").type.value_type) == {"float16": "halffloat"}.get(
        precision, expected.dtype.name
    )
    rows = [json.loads(line)["embedding"] for line in (tmp_path / "v.jsonl").read_text().splitlines()]
    np.testing.assert_array_equal(np.array(rows, dtype=expected.dtype), expected)


def test_a_bad_precision_is_one_line(tmp_path: Path, tiny_bert_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "texts.txt"
    source.write_text("the cat\n")
    code, _ = run_cli(
        "embed", "-i", str(source), "-o", str(tmp_path / "v.npy"), "-m", str(tiny_bert_dir), "--precision", "int4"
    )
    assert code == 2
    assert (
        "unknown precision 'int4'; choose one of float32, float16, int8, uint8, binary, ubinary"
        in capsys.readouterr().err
    )
    assert not (tmp_path / "v.npy").exists()
