"""Batch-size choice: sizes, budgets, and the promise that the chosen batch fits when measured again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from embedlab.errors import ConfigError
from embedlab.plan.batch import (
    BatchMeasurement,
    choose_batch,
    measure_batch_sizes,
    parse_batch_sizes,
    parse_size,
)
from embedlab.settings import EngineSettings

MiB = 2**20


def measured(batch: int, peak_mib: float, tokens_per_second: float, latency_s: float = 0.01) -> BatchMeasurement:
    return BatchMeasurement(
        batch_size=batch,
        texts=64,
        tokens=1000,
        batches=1,
        seconds=1.0,
        texts_per_second=64.0,
        tokens_per_second=tokens_per_second,
        worst_case_seq_len=64,
        worst_case_latency_s=latency_s,
        peak_rss_bytes=int(peak_mib * MiB),
        rss_before_bytes=int(300 * MiB),
    )


@pytest.mark.parametrize(
    ("text", "size"),
    [("2GiB", 2 * 2**30), ("512MiB", 512 * MiB), ("1.5GB", 1_500_000_000), ("800M", 800_000_000), ("4096", 4096)],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["2 gigs", "", "-1GiB", "0", "GiB"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_size(text)


def test_batch_size_lists() -> None:
    assert parse_batch_sizes("16, 1,4,4") == [1, 4, 16]
    for bad in ("0,4", "a,b", ""):
        with pytest.raises(ConfigError, match="batch sizes"):
            parse_batch_sizes(bad)


def test_choice_within_budget_and_latency() -> None:
    sweep = [measured(1, 400, 500), measured(16, 420, 3000), measured(64, 470, 2800), measured(256, 700, 3500, 2.0)]
    choice = choose_batch(sweep, budget=int(530 * MiB))  # 470 × 1.1 = 517 fits, 700 × 1.1 does not
    assert (choice.largest, choice.fastest, choice.recommended) == (64, 16, 16)
    assert choice.fitting == [1, 16, 64]
    roomy = choose_batch(sweep, budget=int(800 * MiB))
    assert (roomy.largest, roomy.recommended) == (256, 256)
    quick = choose_batch(sweep, budget=int(800 * MiB), target_latency_s=0.5)
    assert (quick.largest, quick.recommended) == (64, 16)
    assert choose_batch(sweep, budget=None).recommended == 256


def test_nothing_fits() -> None:
    sweep = [measured(1, 400, 500), measured(16, 420, 3000)]
    choice = choose_batch(sweep, budget=int(300 * MiB))
    assert choice.recommended is None and choice.fitting == []
    assert "no batch size fits: even b=1 peaks at 400.0 MiB" in choice.reasons[0]
    slow = choose_batch([measured(1, 400, 500, 0.2), measured(16, 420, 3000, 0.9)], None, target_latency_s=0.1)
    assert slow.recommended == 1 and "no batch size meets the latency target of 100 ms" in slow.reasons[-1]
    with pytest.raises(ConfigError):
        choose_batch(sweep, budget=None, margin=-0.1)


def test_chosen_batch_never_exceeds_the_budget_when_measured_again(make_tiny_bert: Callable[..., Path]) -> None:
    model = make_tiny_bert(hidden=128, layers=4, heads=4, intermediate=512)
    settings = EngineSettings(model=str(model), threads=1)  # one thread: no OpenMP spinning on a busy CI box
    texts = ["the cat sat on the mat"] * 8 + ["a b c d e f g h i j k l m n o p q r s t"] * 8
    sweep = measure_batch_sizes(settings, texts, [1, 16, 64], max_tokens=64)
    peaks = {m.batch_size: m.peak_rss_bytes for m in sweep}
    assert all(peak is not None and peak > 0 for peak in peaks.values())
    assert peaks[64] > peaks[1]  # (64 × 64 tokens) needs more than one sequence
    assert all(m.worst_case_seq_len == 64 and m.tokens_per_second > 0 for m in sweep)
    # a budget between what 16 and 64 need (with the 10 % margin)
    budget = int(1.1 * (peaks[16] + peaks[64]) / 2)  # type: ignore[operator]
    choice = choose_batch(sweep, budget)
    assert choice.recommended is not None and choice.largest is not None
    assert choice.largest in (1, 16) and choice.recommended <= choice.largest
    again = measure_batch_sizes(settings, texts, [choice.recommended], max_tokens=64)
    assert again[0].peak_rss_bytes is not None and again[0].peak_rss_bytes <= budget
