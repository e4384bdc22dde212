"""The last two stages of embedding, as pure functions on arrays: combine chunk windows, then postprocess.

- :func:`combine_windows`: a text cut into several windows gets the token-weighted mean of its
  windows' pooled vectors (hidden,); a text of one window keeps its pooled vector as it is.
- :func:`postprocess`: Matryoshka truncation to ``dimensions``, L2 normalisation, then the output
  precision (:func:`~embedlab.engine.vector_precision.quantize`), per call.

The server caches what :func:`combine_windows` returns, so one cached float vector serves every
``dimensions`` / ``normalize`` / ``precision`` a request asks for.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from embedlab.arrays import FloatArray
from embedlab.engine.tokenize import Segment
from embedlab.engine.vector_precision import EmbeddingArray, Precision, quantize
from embedlab.models.pooling import l2_normalize


def combine_windows(pooled: FloatArray, segments: Sequence[Segment], n_texts: int) -> FloatArray:
    """Per text, the token-weighted mean of its segments' pooled vectors.

    Args:
        pooled: (len(segments), hidden) float32, row i pooled from ``segments[i]``.
        segments: the segments, whose ``text_index`` runs over 0..n_texts-1 (every text has ≥ 1).
        n_texts: number of texts.

    Returns:
        (n_texts, hidden) float32; ``pooled`` itself when every text is one segment in text order.
    """
    if len(segments) == n_texts and all(s.text_index == i for i, s in enumerate(segments)):
        return pooled
    out = np.zeros((n_texts, pooled.shape[1]), dtype=np.float64)
    weights = np.zeros(n_texts, dtype=np.float64)
    for row, segment in enumerate(segments):
        weight = max(segment.weight, 1)
        out[segment.text_index] += weight * pooled[row]
        weights[segment.text_index] += weight
    return (out / weights[:, None]).astype(np.float32)


def postprocess(
    vectors: FloatArray,
    dimensions: int,
    normalize: bool,
    precision: Precision = "float32",
    ranges: npt.ArrayLike | None = None,
) -> EmbeddingArray:
    """Keep the first ``dimensions`` values of each row, L2-normalise when ``normalize``, then quantise.

    Args:
        vectors: (n, hidden) float32 combined vectors.
        dimensions: values kept per row (the full width keeps every value).
        normalize: L2-normalise each row (after truncation, as Matryoshka models expect).
        precision: output precision (``float32``, the default, returns the float vectors untouched).
        ranges: int8 / uint8 ranges (2, dimensions); None for [-1, 1].

    Returns:
        (n, min(dimensions, hidden)) C-contiguous, float32 unless ``precision`` says otherwise;
        (n, ceil(dimensions / 8)) for the bit precisions.
    """
    if dimensions < vectors.shape[1]:
        vectors = np.ascontiguousarray(vectors[:, :dimensions])
    if normalize:
        vectors = l2_normalize(vectors)
    return quantize(vectors, precision, ranges)
