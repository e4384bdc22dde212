from __future__ import annotations

import random

import numpy as np
import pytest

from embedlab.engine.batch_plan import pad_segments, plan_batches
from embedlab.engine.tokenize import Segment
from embedlab.errors import ConfigError


def test_every_index_once_and_budget_respected() -> None:
    rng = random.Random(0)
    lengths = [rng.randint(3, 200) for _ in range(500)]
    batches = plan_batches(lengths, max_batch_tokens=1024, max_batch_size=64)
    seen = sorted(i for batch in batches for i in batch)
    assert seen == list(range(500))
    for batch in batches:
        longest = max(lengths[i] for i in batch)
        assert len(batch) <= 64
        assert len(batch) * longest <= 1024 or len(batch) == 1


def test_sorting_keeps_padding_small() -> None:
    rng = random.Random(1)
    lengths = [rng.randint(5, 120) for _ in range(2000)]
    batches = plan_batches(lengths, max_batch_tokens=4096, max_batch_size=256)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    assert padded / sum(lengths) <= 1.05


def test_sequence_over_budget_gets_its_own_batch() -> None:
    batches = plan_batches([500, 3, 4], max_batch_tokens=100, max_batch_size=8)
    assert batches[0] == [0]
    assert sorted(batches[1]) == [1, 2]


def test_count_cap() -> None:
    assert [len(b) for b in plan_batches([1] * 10, max_batch_tokens=1000, max_batch_size=4)] == [4, 4, 2]


def test_invalid_budget() -> None:
    with pytest.raises(ConfigError):
        plan_batches([1, 2], max_batch_tokens=0, max_batch_size=4)


def test_pad_segments_right_pads_with_mask() -> None:
    batch = pad_segments(
        [Segment(0, [2, 7, 3], [0, 0, 0], 1), Segment(1, [2, 3], [0, 0], 0)], pad_id=0, with_token_types=True
    )
    np.testing.assert_array_equal(batch.input_ids, [[2, 7, 3], [2, 3, 0]])
    np.testing.assert_array_equal(batch.attention_mask, [[1, 1, 1], [1, 1, 0]])
    assert batch.token_type_ids is not None and batch.token_type_ids.shape == (2, 3)
    assert batch.real_tokens == 5 and batch.shape == (2, 3)


def test_bucketing_bounds_padding_per_batch() -> None:
    rng = random.Random(2)
    lengths = [rng.choice([rng.randint(3, 30), rng.randint(100, 256)]) for _ in range(300)]
    batches = plan_batches(lengths, max_batch_tokens=8192, max_batch_size=256, bucket_ratio=1.05)
    assert sorted(i for b in batches for i in b) == list(range(300))
    for batch in batches:
        longest = max(lengths[i] for i in batch)
        assert len(batch) * longest <= 1.05 * sum(lengths[i] for i in batch)
    with pytest.raises(ConfigError, match="bucket_ratio"):
        plan_batches([1], 10, 10, bucket_ratio=0.5)


def test_attention_cap_limits_rows_of_long_sequences_only() -> None:
    lengths = [256] * 6 + [32] * 40
    plan = plan_batches(lengths, 1024, 256, None, max_attention_cells=1024 * 128)
    long_batches = [b for b in plan if lengths[b[0]] == 256]
    assert [len(b) for b in long_batches] == [2, 2, 2]  # 3 x 256² would pass 1024 x 128 cells
    assert [len(b) for b in plan if lengths[b[0]] == 32] == [32, 8]  # the token budget alone
    assert sorted(i for b in plan for i in b) == list(range(len(lengths)))
    assert len(plan_batches(lengths, 1024, 256)[0]) == 4  # no cap: 4 x 256 tokens
