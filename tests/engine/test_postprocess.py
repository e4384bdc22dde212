"""Combining chunk windows and postprocessing vectors, as pure array functions."""

from __future__ import annotations

import numpy as np

from embedlab.engine.postprocess import combine_windows, postprocess
from embedlab.engine.tokenize import Segment


def seg(text: int, weight: int) -> Segment:
    return Segment(text, [0] * (weight + 2), [0] * (weight + 2), weight)


def test_one_window_per_text_passes_through_untouched() -> None:
    pooled = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert combine_windows(pooled, [seg(0, 4), seg(1, 2)], 2) is pooled


def test_windows_combine_into_their_token_weighted_mean() -> None:
    pooled = np.array([[1, 0], [0, 1], [4, 4]], dtype=np.float32)
    combined = combine_windows(pooled, [seg(0, 3), seg(0, 1), seg(1, 5)], 2)
    np.testing.assert_allclose(combined, [[0.75, 0.25], [4, 4]])
    assert combined.dtype == np.float32


def test_postprocess_truncates_then_normalises() -> None:
    vectors = np.array([[3, 4, 12], [0, 0, 0]], dtype=np.float32)
    np.testing.assert_allclose(postprocess(vectors, 2, True), [[0.6, 0.8], [0, 0]])
    np.testing.assert_array_equal(postprocess(vectors, 3, False), vectors)
    cut = postprocess(vectors, 1, False)
    assert cut.shape == (2, 1) and cut.flags.c_contiguous
