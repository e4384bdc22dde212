"""The Pareto front over score, tokens/s and bytes per vector, checked on options worked out by hand."""

from __future__ import annotations

from embedlab.compare.pareto import Option, dominates, pareto_front


def test_an_option_better_or_equal_everywhere_and_better_somewhere_dominates() -> None:
    assert dominates(Option(0.80, 1000, 384), Option(0.79, 1000, 384))
    assert dominates(Option(0.80, 1000, 48), Option(0.80, 1000, 384))
    assert not dominates(Option(0.80, 1000, 384), Option(0.80, 1000, 384))  # equal: neither
    assert not dominates(Option(0.83, 300, 3072), Option(0.82, 1500, 1536))  # a trade-off: neither
    assert not dominates(Option(0.82, 1500, 1536), Option(0.83, 300, 3072))


def test_front_keeps_the_trade_offs_and_drops_the_dominated() -> None:
    options = [
        Option(0.8203, 4200, 1536),  # MiniLM float32
        Option(0.8203, 4200, 768),  # MiniLM float16: same score, half the bytes -> drops float32
        Option(0.8150, 4200, 48),  # MiniLM binary: smallest
        Option(0.8342, 900, 3072),  # MPNet float32: best score
        Option(0.8100, 900, 3072),  # slower, bigger and worse than MiniLM float16: dominated
        Option(0.8342, 900, 1536),  # MPNet float16: same score, half the bytes -> drops MPNet float32
    ]
    assert pareto_front(options) == [False, True, True, False, False, True]


def test_without_scores_only_speed_and_bytes_count() -> None:
    options = [Option(None, 4200, 1536), Option(None, 900, 3072), Option(None, 5000, 3072)]
    assert pareto_front(options) == [True, False, True]


def test_identical_options_are_both_on_the_front() -> None:
    assert pareto_front([Option(0.5, 10, 8), Option(0.5, 10, 8)]) == [True, True]
