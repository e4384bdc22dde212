"""Planning forward batches: sort by length, fill up to a padded-token budget, then pad into one array.

A batch's cost is ``batch_size × longest sequence`` padded tokens (what the model computes on).
Sorting by length first keeps sequences of similar length together, so padding stays small.
What one batch gives back is a :class:`BatchOutput`, whichever model ran it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from embedlab.arrays import FloatArray
from embedlab.backends.base import EncodedBatch
from embedlab.engine.tokenize import Segment
from embedlab.errors import ConfigError


@dataclass(frozen=True)
class BatchOutput:
    """One forward batch: one row per sequence, padded tokens computed, seconds in the model / after it.

    Attributes:
        pooled: (batch, width) float32 in the batch's order: an embedding model's pooled vectors
            (width = hidden), or a cross-encoder's logits (width = num_labels).
        padded_tokens: tokens the model computed on, padding included.
        model_seconds: seconds in the backend's forward.
        pool_seconds: seconds pooling the token vectors (0 for a cross-encoder).
    """

    pooled: FloatArray
    padded_tokens: int
    model_seconds: float
    pool_seconds: float


def plan_batches(
    lengths: Sequence[int],
    max_batch_tokens: int,
    max_batch_size: int,
    bucket_ratio: float | None = None,
    max_attention_cells: int | None = None,
) -> list[list[int]]:
    """Group sequence indices into batches whose padded size fits the budget.

    Args:
        lengths: token count of each sequence.
        max_batch_tokens: budget of padded tokens per batch (batch size × longest sequence).
        max_batch_size: cap on sequences per batch.
        bucket_ratio: length bucketing: a batch only takes sequences at least ``longest / bucket_ratio``
            long, so its padded tokens stay within ``bucket_ratio`` × its real tokens. None: no bucketing.
        max_attention_cells: also cap batch size × longest² (the attention score cells per head, which
            grow with the square of the length); None: no cap.

    Returns:
        Lists of indices into ``lengths``, longest sequences first; every index appears exactly once.
        A sequence longer than the budget still gets a batch of its own.
    """
    if max_batch_tokens < 1 or max_batch_size < 1:
        raise ConfigError("max_batch_tokens and max_batch_size must be at least 1")
    if bucket_ratio is not None and bucket_ratio < 1.0:
        raise ConfigError(f"bucket_ratio must be ≥ 1.0, got {bucket_ratio}")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for index in order:
        length = lengths[index]
        full = (len(current) + 1) * longest > max_batch_tokens or len(current) >= max_batch_size
        if max_attention_cells is not None:
            full = full or (len(current) + 1) * longest * longest > max_attention_cells
        too_short = bucket_ratio is not None and length * bucket_ratio < longest
        if current and (full or too_short):
            batches.append(current)
            current = []
        if not current:
            longest = length
        current.append(index)
    if current:
        batches.append(current)
    return batches


def pad_segments(segments: Sequence[Segment], pad_id: int, with_token_types: bool = True) -> EncodedBatch:
    """Right-pad segments into an :class:`EncodedBatch` of shape (len(segments), longest)."""
    longest = max(len(s.ids) for s in segments)
    input_ids = np.full((len(segments), longest), pad_id, dtype=np.int64)
    attention = np.zeros((len(segments), longest), dtype=np.int64)
    types = np.zeros((len(segments), longest), dtype=np.int64) if with_token_types else None
    for row, segment in enumerate(segments):
        n = len(segment.ids)
        input_ids[row, :n] = segment.ids
        attention[row, :n] = 1
        if types is not None:
            types[row, :n] = segment.type_ids
    return EncodedBatch(input_ids=input_ids, attention_mask=attention, token_type_ids=types)
