"""Fixtures for the bench tests: one small bench run of a tiny model, shared by the tests that read it."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from embedlab.bench.sweeps import BenchPlan, BenchSettings, run_bench
from embedlab.bench.synthetic import SyntheticShape

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def letter_text(n_words: int, seed: int) -> str:
    """A text of ``n_words`` one-letter words: exactly n_words + 2 tokens with the tiny tokenizer."""
    rng = random.Random(seed)
    return " ".join(rng.choice(LETTERS) for _ in range(n_words))


@pytest.fixture(scope="session")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A .txt of 30 texts from 1 to 90 words (the tiny model's limit is 64 tokens, so some are truncated)."""
    rng = random.Random(3)
    path = tmp_path_factory.mktemp("bench-data") / "texts.txt"
    path.write_text("\n".join(letter_text(rng.randint(1, 90), seed=i) for i in range(30)) + "\n")
    return path


@pytest.fixture(scope="session")
def tiny_result(tiny_bert_dir: Path, data_file: Path) -> dict[str, Any]:
    """A bench of the tiny model: torch + onnx, 2 batch sizes × 2 lengths, the data file, one synthetic shape."""
    plan = BenchPlan(
        model=str(tiny_bert_dir),
        batches=(1, 4),
        seqs=(8, 16),
        backends=("torch", "onnx"),
        threads=(1,),
        data=data_file,
        synthetic=(SyntheticShape.of(hidden=16, layers=1, heads=2),),
        settings=BenchSettings(repeat=2, warmup=1, tokens_per_run=64, cache_texts=16, request_texts=4),
    )
    progress: list[tuple[str, int, int]] = []
    result = run_bench(plan, progress=lambda what, done, total: progress.append((what, done, total)))
    result["_progress"] = progress
    return result
