"""Output precision: float vectors stored as float16, 8-bit integers or packed bits (pure functions).

The semantics are those of sentence-transformers' ``quantize_embeddings`` (and Cohere's
``embedding_types``), for vectors of ``d`` values:

==========  =======  ==================  ===============================================================
precision   dtype    bytes per vector    values
==========  =======  ==================  ===============================================================
float32     float32  4·d                 the vector itself (the default; no copy, no cost)
float16     float16  2·d                 IEEE half-precision cast of each value
int8        int8     d                   ``clip(floor((x - lo) / step), 0, 255) - 128``, step = (hi - lo) / 255
uint8       uint8    d                   ``clip(floor((x - lo) / step), 0, 255)``
binary      int8     ceil(d / 8)         ``packbits(x > 0) - 128``: bit 1 for a positive value, first value
                                         in the most significant bit, the last byte padded with 0 bits
ubinary     uint8    ceil(d / 8)         ``packbits(x > 0)``
==========  =======  ==================  ===============================================================

``lo`` / ``hi`` are per-dimension ranges, shape (2, d). The default (:data:`UNIT_RANGES`, [-1, 1]
in every dimension) is the theoretical range of an L2-normalised vector: a vector's integers then
depend on nothing but the vector itself — not on the batch it came in (sentence-transformers' own
default, the min/max of the batch being quantised, changes a text's integers with its neighbours,
and the server's cache and dynamic batching would make that change from call to call) and not on a
calibration corpus that may not match the user's texts. The price is resolution: a normalised
384-value vector's values lie mostly within ±0.2, so they use about a fifth of the 256 levels; for
tighter ranges give ``ranges`` measured on your own texts (:func:`ranges_of`).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt

from embedlab.arrays import FloatArray
from embedlab.errors import ConfigError

Precision = Literal["float32", "float16", "int8", "uint8", "binary", "ubinary"]
#: every precision, in order of bytes per value (most first)
PRECISIONS: tuple[str, ...] = get_args(Precision)
#: vectors of one of the precisions: float32, float16, int8 or uint8 (see the module's table)
EmbeddingArray = npt.NDArray[Any]


def check_precision(value: str) -> Precision:
    """``value`` as a :data:`Precision`.

    Raises:
        ConfigError: not one of :data:`PRECISIONS` (the message lists them).
    """
    if value not in PRECISIONS:
        raise ConfigError(f"unknown precision {value!r}; choose one of {', '.join(PRECISIONS)}")
    return value  # type: ignore[return-value]


def unit_ranges(dim: int) -> FloatArray:
    """The default int8 / uint8 ranges: [-1, 1] in each of ``dim`` dimensions, shape (2, dim) float32."""
    return np.vstack([np.full(dim, -1.0, dtype=np.float32), np.full(dim, 1.0, dtype=np.float32)])


def ranges_of(calibration: FloatArray) -> FloatArray:
    """Per-dimension min and max of calibration vectors (n, d): the ranges, shape (2, d) float32.

    Raises:
        ConfigError: fewer than two vectors (one vector has no spread to measure).
    """
    if calibration.ndim != 2 or calibration.shape[0] < 2:
        raise ConfigError(f"int8 ranges need at least 2 calibration vectors, got shape {calibration.shape}")
    return np.vstack([calibration.min(axis=0), calibration.max(axis=0)]).astype(np.float32)


def stored_layout(dim: int, precision: Precision) -> tuple[int, np.dtype[Any]]:
    """(values per stored row, numpy dtype) of vectors of ``dim`` floats in ``precision``: ``(dim, float32)``,
    ``(dim, float16)``, ``(dim, int8)``, ``(dim, uint8)``, ``(ceil(dim / 8), int8)``, ``(ceil(dim / 8), uint8)``."""
    if precision in ("binary", "ubinary"):
        return (dim + 7) // 8, np.dtype(np.int8 if precision == "binary" else np.uint8)
    return dim, np.dtype(precision)


def bytes_per_vector(dim: int, precision: Precision) -> int:
    """Bytes one vector of ``dim`` values takes in ``precision``."""
    per_value = {"float32": 4 * dim, "float16": 2 * dim, "int8": dim, "uint8": dim}
    return per_value.get(precision, (dim + 7) // 8)


def quantize(vectors: FloatArray, precision: Precision, ranges: npt.ArrayLike | None = None) -> EmbeddingArray:
    """``vectors`` in ``precision`` (see the module's table).

    Args:
        vectors: (n, d) float32.
        precision: one of :data:`PRECISIONS`.
        ranges: int8 / uint8 only: (2, d) per-dimension min (row 0) and max (row 1); default [-1, 1].

    Returns:
        float32: ``vectors`` itself; float16 / int8 / uint8: (n, d); binary / ubinary: (n, ceil(d / 8)).

    Raises:
        ConfigError: ``ranges`` not of shape (2, d).
    """
    if precision == "float32":
        return vectors
    if precision == "float16":
        return vectors.astype(np.float16)
    if precision in ("binary", "ubinary"):
        packed = np.packbits(vectors > 0, axis=-1)
        return (packed - 128).astype(np.int8) if precision == "binary" else packed
    limits = unit_ranges(vectors.shape[1]) if ranges is None else np.asarray(ranges, dtype=np.float32)
    if limits.shape != (2, vectors.shape[1]):
        raise ConfigError(f"int8 ranges must have shape (2, {vectors.shape[1]}), got {limits.shape}")
    starts = limits[0]
    steps = (limits[1] - starts) / 255
    steps = np.where(steps == 0, 1, steps)
    levels = np.clip(np.floor((vectors - starts) / steps), 0, 255)
    return levels.astype(np.uint8) if precision == "uint8" else (levels - 128).astype(np.int8)


def dequantize(
    codes: EmbeddingArray, precision: Precision, ranges: npt.ArrayLike | None = None, dtype: npt.DTypeLike = np.float32
) -> EmbeddingArray:
    """Approximate float vectors (..., d) back from int8 / uint8 / float16 ``codes`` (each level's lower edge).

    Bit precisions have no inverse: use the float vectors to rescore them.

    Args:
        codes: (..., d) codes; any leading shape (a (queries, candidates, d) block too).
        ranges: int8 / uint8: the (2, d) ranges they were quantised with; None for [-1, 1].
        dtype: of the levels and the result: float32 (default), or float64 where sums of products must not
            round two different levels together (sentence-transformers rescores in float64).

    Raises:
        ConfigError: a bit precision.
    """
    if precision in ("float32", "float16"):
        return codes.astype(dtype)
    if precision in ("binary", "ubinary"):
        raise ConfigError(f"{precision} vectors cannot be turned back into floats")
    limits = unit_ranges(codes.shape[-1]) if ranges is None else np.asarray(ranges, dtype=np.float32)
    steps = (limits[1] - limits[0]) / 255
    steps = np.where(steps == 0, 1, steps)
    levels = codes.astype(dtype) + (128 if precision == "int8" else 0)
    return (limits[0] + levels * steps).astype(dtype)
