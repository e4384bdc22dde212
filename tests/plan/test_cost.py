"""Job cost: time from a measured rate, raw storage per precision, worked out by hand."""

from __future__ import annotations

import math

import pytest

from embedlab.engine.vector_precision import bytes_per_vector
from embedlab.errors import ConfigError
from embedlab.plan.cost import STORAGE_PRECISIONS, job_cost


@pytest.mark.parametrize(
    ("dimensions", "float32", "float16", "int8", "binary"),
    [
        (384, 1536, 768, 384, 48),
        (768, 3072, 1536, 768, 96),
        (385, 1540, 770, 385, 49),  # a 49th byte for the last bit
        (1, 4, 2, 1, 1),
        (7, 28, 14, 7, 1),
        (9, 36, 18, 9, 2),
    ],
)
def test_bytes_per_vector(dimensions: int, float32: int, float16: int, int8: int, binary: int) -> None:
    got = [bytes_per_vector(dimensions, p) for p in ("float32", "float16", "int8", "binary")]
    assert got == [float32, float16, int8, binary]


def test_unknown_precision() -> None:
    with pytest.raises(ConfigError, match="unknown precision 'bfloat16'"):
        job_cost(10, 100, 1.0, 384, precisions=("bfloat16",))


def test_job_cost_by_hand() -> None:
    cost = job_cost(texts=1000, tokens=50_000, tokens_per_second=2_500.0, dimensions=384)
    assert cost.seconds == pytest.approx(20.0)
    assert cost.storage_bytes == {
        "float32": 1_536_000,
        "float16": 768_000,
        "int8": 384_000,
        "uint8": 384_000,
        "binary": 48_000,
        "ubinary": 48_000,
    }
    assert list(cost.storage_bytes) == list(STORAGE_PRECISIONS)
    assert cost.to_dict() == {
        "texts": 1000,
        "tokens": 50_000,
        "tokens_per_second": 2_500.0,
        "seconds": cost.seconds,
        "dimensions": 384,
        "storage_bytes": cost.storage_bytes,
    }


def test_storage_follows_the_stored_dimensions_not_the_model() -> None:
    full, short = job_cost(10, 100, 1.0, 384), job_cost(10, 100, 1.0, 96)
    assert full.storage_bytes["float32"] == 4 * short.storage_bytes["float32"] == 10 * 1536
    assert short.storage_bytes["binary"] == 10 * 12


def test_no_measured_rate_means_unknown_time() -> None:
    assert math.isinf(job_cost(10, 100, 0.0, 384).seconds)
    assert math.isinf(job_cost(10, 100, -5.0, 384).seconds)
    empty = job_cost(0, 0, 100.0, 384)
    assert empty.seconds == 0.0 and set(empty.storage_bytes.values()) == {0}
