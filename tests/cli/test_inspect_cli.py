"""``embedlab inspect`` from the command line: tables, --json, --report and clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from embedlab.cli import main


def run_cli(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def test_tables(tiny_bert_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("inspect", "--model", str(tiny_bert_dir), "--batch", "2", "--seq", "16", "--threads", "1") == 0
    out = capsys.readouterr().out
    for heading in ("Parameters", "Weights memory", "FLOPs at B=2, L=16", "Activation memory", "Traced forward pass"):
        assert heading in out
    assert "(2, 2, 16, 16)" in out  # attention scores of the 2-head tiny model
    assert "agree exactly" in out


def test_json_and_reports(tiny_bert_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    html = tmp_path / "inspect.html"
    assert (
        run_cli(
            "inspect",
            "-m",
            str(tiny_bert_dir),
            "-b",
            "2",
            "-L",
            "16",
            "--json",
            "--report",
            str(html),
            "--threads",
            "1",
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["parameters"]["total"] == sum(data["parameters"]["sections"].values())
    assert data["trace"]["batch"] == 2 and data["trace"]["seq_len"] == 16
    assert data["trace"]["flops_counted"] == data["flops"]["total"]
    page = html.read_text()
    assert page.startswith("<!doctype html>") and "Traced forward pass at B=2, L=16" in page
    markdown = tmp_path / "inspect.md"
    assert run_cli("inspect", "-m", str(tiny_bert_dir), "-b", "1", "-L", "8", "--report", str(markdown)) == 0
    assert "| total |" in markdown.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--head", "sentiment:2"), "unknown head spec 'sentiment:2'"),
        (("--batch", "0"), "batch size B must be at least 1"),
        (("--seq", "-4"), "sequence length L must be at least 1"),
        (("--seq", "4096"), "above the model limit of 128 positions"),
        (("--report", "x.pdf"), "reports are .html or .md"),
    ],
)
def test_bad_input_is_one_clear_line(
    tiny_bert_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run_cli("inspect", "--model", str(tiny_bert_dir), "--seq", "16", *args) == 2
    err = capsys.readouterr().err
    assert "error:" in err and message in err and "Traceback" not in err


def test_memory_estimate_matches_a_fresh_process_with_mmapped_allocations(
    make_tiny_bert: Callable[..., Path],
) -> None:
    """With large allocations mmapped (freed memory leaves the process at once), the measured peak of the
    traced pass tracks the live-tensor estimate; this checks the activation formula against reality."""
    model = make_tiny_bert(hidden=128, layers=4, heads=4, intermediate=512)
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "embedlab",
            "inspect",
            "-m",
            str(model),
            "-b",
            "32",
            "-L",
            "128",
            "--json",
            "--no-flop-count",
            "--threads",
            "1",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    estimate = data["activations"]["inference_peak"]
    measured = data["trace"]["peak_added_bytes"]
    assert 0.75 * estimate <= measured <= 1.35 * estimate, (measured, estimate)
