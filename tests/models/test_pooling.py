from __future__ import annotations

import numpy as np
import pytest

from embedlab.errors import ConfigError
from embedlab.models.pooling import l2_normalize, pool

# batch of 2, seq 3, dim 2; the second sequence has one padding position
TOKENS = np.array(
    [[[1.0, 2.0], [3.0, 4.0], [5.0, 0.0]], [[2.0, -2.0], [4.0, 6.0], [100.0, 100.0]]],
    dtype=np.float32,
)
MASK = np.array([[1, 1, 1], [1, 1, 0]], dtype=np.int64)


def test_mean_ignores_padding() -> None:
    np.testing.assert_allclose(pool(TOKENS, MASK, "mean"), [[3.0, 2.0], [3.0, 2.0]])


def test_cls_is_first_token() -> None:
    np.testing.assert_allclose(pool(TOKENS, MASK, "cls"), [[1.0, 2.0], [2.0, -2.0]])


def test_max_ignores_padding() -> None:
    np.testing.assert_allclose(pool(TOKENS, MASK, "max"), [[5.0, 4.0], [4.0, 6.0]])


def test_mean_sqrt_len() -> None:
    expected = [[9.0 / np.sqrt(3), 6.0 / np.sqrt(3)], [6.0 / np.sqrt(2), 4.0 / np.sqrt(2)]]
    np.testing.assert_allclose(pool(TOKENS, MASK, "mean_sqrt_len"), expected, rtol=1e-6)


def test_weighted_mean_weighs_later_tokens_more() -> None:
    first = (1 * np.array([1.0, 2.0]) + 2 * np.array([3.0, 4.0]) + 3 * np.array([5.0, 0.0])) / 6
    second = (1 * np.array([2.0, -2.0]) + 2 * np.array([4.0, 6.0])) / 3
    np.testing.assert_allclose(pool(TOKENS, MASK, "weighted_mean"), [first, second], rtol=1e-6)


def test_last_token_is_last_unmasked() -> None:
    np.testing.assert_allclose(pool(TOKENS, MASK, "last_token"), [[5.0, 0.0], [4.0, 6.0]])


def test_unknown_mode() -> None:
    with pytest.raises(ConfigError, match="unknown pooling mode"):
        pool(TOKENS, MASK, "median")  # type: ignore[arg-type]


def test_l2_normalize_unit_rows_and_zero_rows_stay_zero() -> None:
    out = l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])
