"""``embedlab plan`` end to end on a tiny model: known lengths, eval, outputs, a settings file ``embed`` accepts."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from embedlab.cli import main
from embedlab.settings import EngineSettings, load_settings, read_config_file


def run_cli(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def words(n: int) -> str:
    return " ".join("abcdefghij"[i % 10] for i in range(n))


@pytest.fixture
def known_lengths(tmp_path: Path) -> Path:
    """40 texts of 1..40 one-letter words: 3..42 tokens with the tiny tokenizer."""
    data = tmp_path / "texts.txt"
    data.write_text("\n".join(words(n) for n in range(1, 41)) + "\n")
    return data


def test_plan_end_to_end(
    make_tiny_bert: Callable[..., Path], known_lengths: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = make_tiny_bert(hidden=128, layers=2, heads=4, intermediate=256)
    sts = tmp_path / "sts.csv"
    pairs = [("the cat sat", "the cat sat on the mat", 4.0), ("a dog", "the mat", 0.5), ("cat", "a cat", 4.5)]
    pairs += [(words(n), words(n + 1), 5.0 - n / 4) for n in range(1, 10)]
    sts.write_text("sentence1,sentence2,score\n" + "\n".join(f"{a},{b},{s}" for a, b, s in pairs) + "\n")
    out = tmp_path / "plan"
    code = run_cli(
        "plan", "--data", str(known_lengths), "--model", str(model), "--batch-sizes", "1,8", "--sample", "16",
        "--backends", "torch,onnx", "--eval", str(sts), "--memory-budget", "64GiB", "--threads", "1",
        "--out", str(out),
    )  # fmt: skip
    assert code == 0
    captured = capsys.readouterr()
    for heading in ("Token lengths", "Max tokens", "Backends", "Batch sizes", "Dimensions", "Cost of the whole file"):
        assert heading in captured.out
    assert "Recommended settings" in captured.out and "settings.json" in captured.err
    plan = json.loads((out / "plan.json").read_text())

    assert plan["lengths"]["max"] == 42 and plan["lengths"]["percentiles"]["p50"] == 22
    assert plan["lengths"]["texts_over_limit"] == 0
    assert plan["max_tokens"]["max_tokens"] == 48 and plan["max_tokens"]["long_input"] == "truncate"
    assert plan["max_tokens"]["tokens_embedded"] == sum(n + 2 for n in range(1, 41))
    assert [b["name"] for b in plan["backends"]] == ["torch", "onnx"]
    assert all(b["available"] and b["eval_metric"] == "cosine_spearman" for b in plan["backends"])
    assert plan["backends"][1]["agreement_min"] > 0.999
    assert [b["batch_size"] for b in plan["batch_sizes"]] == [1, 8]
    assert plan["batch_choice"]["recommended"] in (1, 8)
    assert [d["dimensions"] for d in plan["dimensions"]["measured"]] == [128, 64, 32]
    assert plan["cost"]["storage_bytes"]["float32"] == 40 * 4 * plan["cost"]["dimensions"]
    assert plan["cost"]["storage_bytes"]["binary"] == 40 * plan["cost"]["dimensions"] // 8

    settings = read_config_file(out / "settings.json")
    assert settings == plan["settings"]
    assert settings["max_tokens"] == 48 and settings["max_batch_size"] == plan["batch_choice"]["recommended"]
    assert settings["max_batch_tokens"] == 48 * settings["max_batch_size"]
    EngineSettings(**settings)
    from embedlab.server.settings import ServerSettings

    served = load_settings(ServerSettings, out / "settings.json")  # what `embedlab serve --config` reads
    assert (served.backend, served.max_tokens, served.max_batch_tokens) == (
        settings["backend"],
        48,
        settings["max_batch_tokens"],
    )
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "Recommended settings" in page
    assert (out / "lengths.png").read_bytes().startswith(b"\x89PNG")

    vectors = tmp_path / "vectors.npy"
    assert (
        run_cli("embed", "-i", str(known_lengths), "-o", str(vectors), "--config", str(out / "settings.json"), "-q")
        == 0
    )
    assert np.load(vectors).shape == (40, settings.get("dimensions", 128))


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("", (), "holds no texts"),
        ("\n\n", (), "line 1 is empty"),
        ("a b c\n", ("--memory-budget", "lots"), "cannot read memory size 'lots'"),
        ("a b c\n", ("--backends", "torch,tpu"), "unknown backend(s) tpu"),
        ("a b c\n", ("--batch-sizes", "0,2"), "batch sizes must be at least 1"),
        ("a b c\n", ("--eval", "missing-sts.csv"), "evaluation data not found"),
        ("a b c\n", ("--coverage", "0"), "coverage must be in (0, 1]"),
        ("a b c\n", ("--target-latency", "-5"), "target latency must be positive"),
    ],
)
def test_bad_input_is_one_clear_line(
    tiny_bert_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    content: str,
    args: tuple[str, ...],
    message: str,
) -> None:
    data = tmp_path / "data.txt"
    data.write_text(content)
    monkeypatch.chdir(tmp_path)
    assert run_cli("plan", "--data", str(data), "--model", str(tiny_bert_dir), "--threads", "1", *args) == 2
    err = capsys.readouterr().err
    assert "error:" in err and message in err and "Traceback" not in err


def test_missing_data_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("plan", "--data", str(tmp_path / "nope.txt")) == 2
    assert "no such file" in capsys.readouterr().err
