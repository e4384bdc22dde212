"""Cost of the whole job: time to embed the file and the storage of its vectors per precision.

- time: tokens the model will compute on (after the max-tokens / chunking advice) divided by the
  tokens/s measured on the sample with the recommended backend and batch size;
- storage per vector of k dimensions in each output precision
  (:func:`~embedlab.engine.vector_precision.bytes_per_vector`: float32 ``4k`` bytes, float16 ``2k``, int8 and
  uint8 ``k``, binary and ubinary ``ceil(k / 8)``); one vector per text (chunk windows are averaged into one),
  raw arrays without index overhead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from embedlab.engine.vector_precision import PRECISIONS, bytes_per_vector, check_precision

STORAGE_PRECISIONS: tuple[str, ...] = PRECISIONS


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


def job_cost(
    texts: int,
    tokens: int,
    tokens_per_second: float,
    dimensions: int,
    precisions: Sequence[str] = STORAGE_PRECISIONS,
) -> JobCost:
    """Estimate time and storage (in each of ``precisions``) for ``texts`` texts of ``tokens`` tokens in all.

    Raises:
        ConfigError: an unknown precision.
    """
    seconds = tokens / tokens_per_second if tokens_per_second > 0 else float("inf")
    storage = {p: texts * bytes_per_vector(dimensions, check_precision(p)) for p in precisions}
    return JobCost(texts, tokens, tokens_per_second, seconds, dimensions, storage)
