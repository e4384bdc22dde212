"""The storage choice: the best score whose total fits the budget, worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embedlab.errors import ConfigError, DataFileError
from embedlab.plan.storage import StorageOption, choose_storage, options_from_compare


def option(model: str, dims: int, precision: str, size: int, score: float | None) -> StorageOption:
    return StorageOption(model, dims, precision, size, score, None if score is None else "ndcg_at_10", "plan")


OPTIONS = [
    option("minilm", 384, "float32", 1536, 0.6451),
    option("minilm", 384, "int8", 384, 0.6420),
    option("minilm", 384, "binary", 48, 0.5800),
    option("mpnet", 768, "float32", 3072, 0.6554),
    option("mpnet", 768, "int8", 768, 0.6540),
    option("mpnet", 768, "binary", 96, 0.6100),
]


@pytest.mark.parametrize(
    ("budget", "expected"),
    [
        (None, ("mpnet", "float32")),  # no budget: the best score
        (10_000 * 3072, ("mpnet", "float32")),  # exactly fits
        (10_000 * 3072 - 1, ("mpnet", "int8")),  # one byte short: the best that fits
        (10_000 * 767, ("minilm", "int8")),  # mpnet int8 no longer fits
        (10_000 * 100, ("mpnet", "binary")),  # only bits fit: mpnet's bits score better
        (10_000 * 60, ("minilm", "binary")),
    ],
)
def test_the_best_score_that_fits(budget: int | None, expected: tuple[str, str]) -> None:
    choice = choose_storage(OPTIONS, 10_000, budget)
    assert choice.recommended is not None
    assert (choice.recommended.model, choice.recommended.precision) == expected
    assert all(o.total_bytes(10_000) <= (budget or 1 << 60) for o in choice.fitting)
    assert choice.reasons[0].startswith(choice.recommended.label())


def test_the_price_of_the_budget_is_said() -> None:
    choice = choose_storage(OPTIONS, 10_000, 10_000 * 767)
    assert "the budget costs 0.0134" in choice.reasons[1]  # 0.6554 - 0.6420


def test_nothing_fits() -> None:
    choice = choose_storage(OPTIONS, 10_000, 10_000 * 47)
    assert choice.recommended is None and choice.fitting == []
    assert "the smallest option (minilm, d=384, binary) needs 468.8 KiB" in choice.reasons[0]


def test_equal_scores_prefer_fewer_bytes() -> None:
    tied = [option("m", 64, "float32", 256, 0.5), option("m", 64, "float16", 128, 0.5)]
    assert choose_storage(tied, 1, None).recommended == tied[1]


def test_without_scores_the_most_bytes_that_fit_and_a_warning() -> None:
    unscored = [option("m", 384, p, b, None) for p, b in (("float32", 1536), ("int8", 384), ("binary", 48))]
    choice = choose_storage(unscored, 100, 100 * 400)
    assert choice.recommended is not None and choice.recommended.precision == "int8"
    assert "not measured (give --eval" in choice.reasons[0]


def test_scores_of_different_metrics_are_refused() -> None:
    mixed = [OPTIONS[0], StorageOption("x", 8, "float32", 32, 0.8, "cosine_spearman", "plan")]
    with pytest.raises(ConfigError, match="different metrics"):
        choose_storage(mixed, 1, None)
    with pytest.raises(ConfigError, match="no storage options"):
        choose_storage([], 1, None)


def test_options_from_a_compare_result(tmp_path: Path) -> None:
    payload = {
        "metric": "cosine_spearman",
        "data": "sts-test.csv",
        "data_limit": None,
        "models": [
            {
                "name": "m",
                "options": [
                    {"dimensions": 8, "precision": "float32", "bytes_per_vector": 32, "score": 0.8},
                    {"dimensions": 8, "precision": "binary", "bytes_per_vector": 1, "score": None},
                ],
            }
        ],
    }
    path = tmp_path / "compare.json"
    path.write_text(json.dumps(payload))
    options, data, limit = options_from_compare(path)
    assert (data, limit) == ("sts-test.csv", None)
    assert [(o.model, o.precision, o.bytes_per_vector, o.score, o.metric) for o in options] == [
        ("m", "float32", 32, 0.8, "cosine_spearman"),
        ("m", "binary", 1, None, "cosine_spearman"),
    ]
    path.write_text('{"points": []}')
    with pytest.raises(DataFileError, match="not a result of `embedlab compare --json`"):
        options_from_compare(path)
