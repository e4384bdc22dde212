"""Pooling: token vectors of a batch → one vector per sequence, as sentence-transformers defines it.

All functions take ``token_embeddings`` of shape (batch, seq_len, dim) float32 and ``mask`` of shape
(batch, seq_len) with 1 for tokens that take part and 0 for padding; they return (batch, dim) float32.
Sequences are assumed right-padded (embedlab always pads on the right).
"""

from __future__ import annotations

import numpy as np

from embedlab.arrays import FloatArray, IntArray
from embedlab.errors import ConfigError
from embedlab.models.spec import POOLING_MODES, PoolingMode


def _mask3(mask: IntArray, dtype: np.dtype[np.float32]) -> FloatArray:
    return mask[:, :, None].astype(dtype)


def mean_pool(token_embeddings: FloatArray, mask: IntArray) -> FloatArray:
    """Mean of the unmasked token vectors (sum / count, count clamped at 1e-9)."""
    m = _mask3(mask, token_embeddings.dtype)
    summed = (token_embeddings * m).sum(axis=1)
    counts = np.clip(m.sum(axis=1), 1e-9, None)
    return (summed / counts).astype(np.float32)


def mean_sqrt_len_pool(token_embeddings: FloatArray, mask: IntArray) -> FloatArray:
    """Sum of the unmasked token vectors divided by sqrt(count)."""
    m = _mask3(mask, token_embeddings.dtype)
    summed = (token_embeddings * m).sum(axis=1)
    counts = np.clip(m.sum(axis=1), 1e-9, None)
    return (summed / np.sqrt(counts)).astype(np.float32)


def weighted_mean_pool(token_embeddings: FloatArray, mask: IntArray) -> FloatArray:
    """Position-weighted mean: token i (1-based) weighs i, so later tokens count more."""
    positions = np.arange(1, token_embeddings.shape[1] + 1, dtype=token_embeddings.dtype)
    weights = _mask3(mask, token_embeddings.dtype) * positions[None, :, None]
    summed = (token_embeddings * weights).sum(axis=1)
    return (summed / np.clip(weights.sum(axis=1), 1e-9, None)).astype(np.float32)


def cls_pool(token_embeddings: FloatArray, mask: IntArray) -> FloatArray:
    """The first token's vector ([CLS])."""
    del mask
    return np.ascontiguousarray(token_embeddings[:, 0, :], dtype=np.float32)


def max_pool(token_embeddings: FloatArray, mask: IntArray) -> FloatArray:
    """Element-wise max over unmasked tokens (masked positions set to -1e9 first)."""
    masked = np.where(mask[:, :, None].astype(bool), token_embeddings, np.float32(-1e9))
    return masked.max(axis=1).astype(np.float32)


def last_token_pool(token_embeddings: FloatArray, mask: IntArray) -> FloatArray:
    """The vector of the last unmasked token of each (right-padded) sequence."""
    last = np.clip(mask.sum(axis=1) - 1, 0, None)
    return np.ascontiguousarray(token_embeddings[np.arange(token_embeddings.shape[0]), last, :], dtype=np.float32)


_POOLERS = {
    "mean": mean_pool,
    "cls": cls_pool,
    "max": max_pool,
    "mean_sqrt_len": mean_sqrt_len_pool,
    "weighted_mean": weighted_mean_pool,
    "last_token": last_token_pool,
}


def pool(token_embeddings: FloatArray, mask: IntArray, mode: PoolingMode) -> FloatArray:
    """Pool (batch, seq_len, dim) token vectors into (batch, dim) with the named mode."""
    if mode not in _POOLERS:
        raise ConfigError(f"unknown pooling mode {mode!r}; choose one of {', '.join(POOLING_MODES)}")
    return _POOLERS[mode](token_embeddings, mask)


def l2_normalize(vectors: FloatArray) -> FloatArray:
    """Scale each row of (n, dim) to unit L2 norm (rows of zeros stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.clip(norms, 1e-12, None)).astype(np.float32)
