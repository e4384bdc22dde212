"""Cost of the whole job: time to embed the file and the storage of its vectors per precision.

- time: tokens the model will compute on (after the max-tokens / chunking advice) divided by the
  tokens/s measured on the sample with the recommended backend and batch size;
- storage per vector of k dimensions: float32 ``4k`` bytes, float16 ``2k``, int8 ``k`` (one byte per
  value, scale kept elsewhere), binary ``ceil(k / 8)`` (one bit per value, sign quantisation); one vector
  per text (chunk windows are averaged into one), raw arrays without index overhead.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

STORAGE_PRECISIONS: tuple[str, ...] = ("float32", "float16", "int8", "binary")


def bytes_per_vector(dimensions: int, precision: str) -> int:
    """Bytes of one vector of ``dimensions`` values stored in ``precision``."""
    if precision == "float32":
        return 4 * dimensions
    if precision == "float16":
        return 2 * dimensions
    if precision == "int8":
        return dimensions
    if precision == "binary":
        return math.ceil(dimensions / 8)
    raise ValueError(f"unknown precision {precision!r}")


@dataclass(frozen=True)
class JobCost:
    """What embedding the whole file will take.

    Attributes:
        texts: vectors to store (one per text).
        tokens: tokens the model will compute on.
        tokens_per_second: measured rate used for the estimate.
        seconds: estimated embedding time.
        dimensions: dimensions stored per vector.
        storage_bytes: precision → bytes for all vectors.
    """

    texts: int
    tokens: int
    tokens_per_second: float
    seconds: float
    dimensions: int
    storage_bytes: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


def job_cost(texts: int, tokens: int, tokens_per_second: float, dimensions: int) -> JobCost:
    """Estimate time and storage for ``texts`` texts of ``tokens`` tokens in all."""
    seconds = tokens / tokens_per_second if tokens_per_second > 0 else float("inf")
    storage = {p: texts * bytes_per_vector(dimensions, p) for p in STORAGE_PRECISIONS}
    return JobCost(texts, tokens, tokens_per_second, seconds, dimensions, storage)
