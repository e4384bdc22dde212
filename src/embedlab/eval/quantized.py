"""How a vector store scores quantised vectors, and sentence-transformers' rescoring (pure functions).

Vectors are stored as :func:`embedlab.engine.vector_precision.quantize` writes them (sentence-transformers'
``quantize_embeddings``); ``d`` is the number of float values per vector, ``width`` the stored values per
vector (``d``, or ``ceil(d / 8)`` bytes of packed bits).

**First pass** (:func:`first_pass_scores`): what a store computes between its stored documents and a
query quantised the same way; higher is better.

================  ===============================================================================
precision         score
================  ===============================================================================
float32           cosine of the float vectors (their dot product: the evaluators' rows are unit length)
float16           cosine of the float16 values
int8, uint8       dot product of the dequantised codes (each code's level, ``lo + level · step``)
binary, ubinary   minus the Hamming distance of the packed bits (:func:`hamming_distances`)
================  ===============================================================================

int8 and uint8 store the same 256 levels (a uint8 code is the int8 code + 128), binary and ubinary the
same bits (a binary byte is the ubinary byte with its top bit flipped), so each pair scores the same; they
differ in how a store reads the bytes, not in what the bytes say. A store that took the dot product of the
raw uint8 codes, without dequantising, would rank worse; that is not what is measured here.

**Rescoring** (:func:`rescore_candidates`): the ``K`` best candidates of the first pass are scored again by
the *float32* query against the documents' stored vectors and re-ranked, as ``semantic_search_faiss`` and
``semantic_search_usearch`` do in sentence-transformers 6.3 (``sentence_transformers/util/quantization.py``):

- the candidates' stored vectors are decoded (:func:`decode_for_rescoring`): packed bits are unpacked to
  {0, 1} and trimmed to ``d`` (``np.unpackbits(codes, axis=-1)[..., :d].astype(int)``; usearch first undoes
  the binary offset with ``view(np.uint8) ^ 0x80``), int8 / uint8 codes are dequantised in float64 with the
  ranges they were quantised with (``_dequantize_embeddings``: ``(code [+ 128 for int8]) · step + lo``;
  earlier sentence-transformers releases took the dot product of the raw int8 codes instead);
- the score is ``np.einsum("ij,ikj->ik", query, decoded)`` in float64; empty candidate slots score -inf;
- rescoring happens only when the corpus precision is not float32. A float16 store is searched as a float
  one (usearch's ``"float32"`` corpus precision covers f16 indexes), so float16 is not rescored:
  :data:`RESCORABLE` lists the precisions that are.

Ties: sentence-transformers re-ranks with an unstable ``argsort``; here equal scores are ordered by the
caller's tie keys (the evaluators pass trec_eval's order, document id descending, as in
:mod:`embedlab.eval.metrics`), in the first pass as in rescoring.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np
import numpy.typing as npt

from embedlab.arrays import Float64Array, FloatArray, IntArray
from embedlab.engine.vector_precision import PRECISIONS, EmbeddingArray, Precision, check_precision, dequantize
from embedlab.errors import ConfigError
from embedlab.models.pooling import l2_normalize

#: precisions whose first-pass candidates can be rescored with the float32 query (sentence-transformers'
#: "corpus precision is not float32"; float16 is searched as a float store)
RESCORABLE: tuple[str, ...] = ("int8", "uint8", "binary", "ubinary")
#: precisions stored as packed bits
BIT_PRECISIONS: tuple[str, ...] = ("binary", "ubinary")
#: precisions with int8 / uint8 ranges
RANGED_PRECISIONS: tuple[str, ...] = ("int8", "uint8")
UInt8Array = npt.NDArray[np.uint8]
#: scores, float32 or float64 (see :func:`first_pass_scores`)
ScoreArray = FloatArray | Float64Array


def check_precisions(values: Sequence[str]) -> tuple[Precision, ...]:
    """``values`` as precisions, in the order given.

    Raises:
        ConfigError: none given, an unknown one (the message lists :data:`PRECISIONS`), or one given twice.
    """
    if not values:
        raise ConfigError(f"give at least one precision; choose from {', '.join(PRECISIONS)}")
    checked = tuple(check_precision(value) for value in values)
    for index, value in enumerate(checked):
        if value in checked[:index]:
            raise ConfigError(f"precision {value!r} is given twice")
    return checked


def precision_label(precision: str, rescore: int = 0, int8_ranges: str = "unit") -> str:
    """A report row's label: ``precision=binary,rescore=100``, ``precision=int8,int8_ranges=corpus``.

    ``rescore`` is left out when 0, ``int8_ranges`` when ``unit`` (the default) or the precision has no ranges.
    """
    label = f"precision={precision}"
    if rescore:
        label += f",rescore={rescore}"
    if precision in RANGED_PRECISIONS and int8_ranges != "unit":
        label += f",int8_ranges={int8_ranges}"
    return label


def packed_bits(codes: EmbeddingArray, precision: str) -> UInt8Array:
    """The raw packed bits, (n, ceil(d / 8)) uint8, of ``binary`` (int8, offset by -128) or ``ubinary`` codes."""
    raw = np.ascontiguousarray(codes).view(np.uint8)
    return cast(UInt8Array, raw ^ np.uint8(0x80)) if precision == "binary" else raw


def _signed_bits(codes: EmbeddingArray, precision: str) -> FloatArray:
    """Each stored bit as -1 (0) or +1 (1), padding bits included: (n, 8 · bytes) float32."""
    bits = np.unpackbits(packed_bits(codes, precision), axis=-1)
    return (bits.astype(np.float32) * 2 - 1).astype(np.float32)


def _bit_agreement(query_codes: EmbeddingArray, doc_codes: EmbeddingArray, precision: str) -> tuple[FloatArray, int]:
    """(agreements - disagreements) of every query-document pair, (m, n) float32, and the bits per vector.

    Exact: the products are integers below 2^24 for fewer than 2^24 bits. The padding bits of the last
    byte are 0 in every vector, so they always agree and leave the Hamming distance unchanged.
    """
    signed_queries = _signed_bits(query_codes, precision)
    agreement = signed_queries @ _signed_bits(doc_codes, precision).T
    return agreement, signed_queries.shape[1]


def hamming_distances(query_codes: EmbeddingArray, doc_codes: EmbeddingArray, precision: str) -> IntArray:
    """Bits that differ between every query and every document.

    Args:
        query_codes: (m, bytes) ``binary`` or ``ubinary`` codes.
        doc_codes: (n, bytes) codes of the same precision.
        precision: ``binary`` or ``ubinary``.
    Returns:
        (m, n) int64 Hamming distances, from 0 to d.
    """
    agreement, bits = _bit_agreement(query_codes, doc_codes, precision)
    return np.rint((bits - agreement) / 2).astype(np.int64)


def first_pass_scores(
    query_codes: EmbeddingArray,
    doc_codes: EmbeddingArray,
    precision: str,
    ranges: FloatArray | None = None,
) -> ScoreArray:
    """What a store scores between queries and documents stored in ``precision`` (module table), higher better.

    Args:
        query_codes: (m, width) queries quantised like the documents (float32: unit rows).
        doc_codes: (n, width) stored documents.
        precision: one of :data:`PRECISIONS`.
        ranges: int8 / uint8: the (2, d) ranges both were quantised with; None for [-1, 1].
    Returns:
        (m, n): cosine (float32, float16: float32), dot product of levels (int8, uint8: float64, so that
        levels whose products differ are told apart; their sum of ``d`` terms in float32 can round two
        of them together) or -Hamming distance (binary, ubinary: whole numbers in float32, exact).
    """
    if precision == "float32":
        return cast(FloatArray, query_codes @ doc_codes.T)
    if precision == "float16":
        return l2_normalize(query_codes.astype(np.float32)) @ l2_normalize(doc_codes.astype(np.float32)).T
    if precision in BIT_PRECISIONS:
        agreement, bits = _bit_agreement(query_codes, doc_codes, precision)
        return ((agreement - bits) / 2).astype(np.float32)
    level = cast(Precision, precision)
    query_levels = dequantize(query_codes, level, ranges).astype(np.float64)
    return cast(Float64Array, query_levels @ dequantize(doc_codes, level, ranges).astype(np.float64).T)


def decode_for_rescoring(
    codes: EmbeddingArray, precision: str, dim: int, ranges: FloatArray | None = None
) -> Float64Array:
    """Stored vectors as sentence-transformers' rescoring reads them (module docstring), float64.

    Args:
        codes: (..., width) codes of a :data:`RESCORABLE` precision.
        precision: int8, uint8, binary or ubinary.
        dim: d, the float values per vector (bits are trimmed to it).
        ranges: int8 / uint8: (2, d) ranges the codes were quantised with; None for [-1, 1].
    Returns:
        (..., d) float64: bits as 0 / 1, or each code's level ``(code [+ 128]) · step + lo``.
    """
    if precision in BIT_PRECISIONS:
        return np.unpackbits(packed_bits(codes, precision), axis=-1)[..., :dim].astype(np.float64)
    if precision not in RANGED_PRECISIONS:
        raise ConfigError(f"{precision} vectors are not rescored; rescoring applies to {', '.join(RESCORABLE)}")
    return cast(Float64Array, dequantize(codes, cast(Precision, precision), ranges, dtype=np.float64))


def rescore_candidates(
    query_vectors: FloatArray,
    candidates: IntArray,
    doc_codes: EmbeddingArray,
    precision: str,
    keys: IntArray,
    top: int,
    ranges: FloatArray | None = None,
) -> tuple[IntArray, Float64Array]:
    """Re-rank first-pass candidates by the float32 query against the stored vectors (module docstring).

    Args:
        query_vectors: (m, d) float32 queries, not quantised.
        candidates: (m, K) int64 rows of ``doc_codes`` per query, -1 for an empty slot.
        doc_codes: (n, width) every stored document.
        precision: one of :data:`RESCORABLE`.
        keys: (n,) tie-break keys, lower first among equal scores.
        top: how many to keep per query (at most K).
        ranges: int8 / uint8: the ranges the documents were quantised with; None for [-1, 1].
    Returns:
        ((m, top) int64 document rows, -1 for an empty slot; (m, top) float64 scores, -inf there),
        best first.
    """
    valid = candidates >= 0
    safe = np.where(valid, candidates, 0)
    decoded = decode_for_rescoring(doc_codes[safe], precision, query_vectors.shape[1], ranges)
    scores = np.einsum("ij,ikj->ik", query_vectors, decoded).astype(np.float64, copy=False)
    scores[~valid] = -np.inf
    order = np.lexsort((keys[safe], -scores), axis=-1)[:, :top]
    chosen = np.take_along_axis(candidates, order, axis=1)
    chosen_scores = np.take_along_axis(scores, order, axis=1)
    return np.where(np.isfinite(chosen_scores), chosen, -1), chosen_scores


def pair_hamming(first: EmbeddingArray, second: EmbeddingArray, precision: str) -> IntArray:
    """Bits that differ between row i of ``first`` and row i of ``second``, (n,) int64 (packed codes, (n, bytes))."""
    return np.unpackbits(packed_bits(first, precision) ^ packed_bits(second, precision), axis=-1).sum(
        axis=-1, dtype=np.int64
    )


def pair_similarity(
    first: EmbeddingArray, second: EmbeddingArray, precision: str, dim: int, ranges: FloatArray | None = None
) -> Float64Array:
    """The similarity of each pair of rows (STS), float64 (n,).

    float32: the dot product of the (unit) rows in float64; float16: cosine of the float16 values; int8 / uint8:
    cosine of the dequantised codes; binary / ubinary: ``1 - hamming / d`` (the share of the ``d`` bits that
    agree; the padding bits of the last byte are not counted).

    Args:
        first, second: (n, width) codes of the same precision (float32: unit rows).
        precision: one of :data:`PRECISIONS`.
        dim: d, the float values per vector.
        ranges: int8 / uint8: the ranges both were quantised with; None for [-1, 1].
    """
    if precision in BIT_PRECISIONS:
        return cast(Float64Array, 1.0 - pair_hamming(first, second, precision) / dim)
    if precision == "float32":
        return cast(Float64Array, np.einsum("ij,ij->i", first.astype(np.float64), second.astype(np.float64)))
    if precision == "float16":
        values_a, values_b = first.astype(np.float64), second.astype(np.float64)
    else:
        level = cast(Precision, precision)
        values_a = dequantize(first, level, ranges).astype(np.float64)
        values_b = dequantize(second, level, ranges).astype(np.float64)
    norms = np.linalg.norm(values_a, axis=1) * np.linalg.norm(values_b, axis=1)
    return cast(Float64Array, np.einsum("ij,ij->i", values_a, values_b) / np.clip(norms, 1e-300, None))


#: ``int8_ranges`` an evaluator takes: ``"unit"`` ([-1, 1], the engine's default), ``"corpus"`` (measured on the
#: evaluated texts themselves), calibration texts, or the (2, d) ranges themselves
Int8Ranges = str | Sequence[str] | FloatArray
#: the names ``int8_ranges`` may take
INT8_RANGE_NAMES: tuple[str, ...] = ("unit", "corpus")


def int8_ranges_name(int8_ranges: Int8Ranges, precisions: Sequence[str]) -> str:
    """How ``int8_ranges`` is reported: ``unit``, ``corpus``, ``texts`` (calibration texts) or ``given`` (an array).

    Raises:
        ConfigError: an unknown name, fewer than 2 calibration texts, an array not of shape (2, d), or ranges
            other than ``unit`` when no precision has ranges (they would be silently unused).
    """
    if isinstance(int8_ranges, np.ndarray):
        if int8_ranges.ndim != 2 or int8_ranges.shape[0] != 2:
            raise ConfigError(f"int8 ranges must have shape (2, dimensions), got {int8_ranges.shape}")
        name = "given"
    elif isinstance(int8_ranges, str):
        if int8_ranges not in INT8_RANGE_NAMES:
            raise ConfigError(
                f"unknown int8 ranges {int8_ranges!r}; use {' or '.join(INT8_RANGE_NAMES)}, or calibration texts"
            )
        name = int8_ranges
    else:
        if len(int8_ranges) < 2:
            raise ConfigError(f"int8 ranges need at least 2 calibration texts, got {len(int8_ranges)}")
        name = "texts"
    if name != "unit" and not any(p in RANGED_PRECISIONS for p in precisions):
        raise ConfigError(
            f"int8 ranges apply to {' and '.join(RANGED_PRECISIONS)}, and none of the precisions "
            f"({', '.join(precisions)}) is one"
        )
    return name


def check_rescore(rescore: int, precisions: Sequence[str], largest_cutoff: int) -> None:
    """Check a rescoring depth ``K`` (0: none) against the precisions and the cutoffs of the metrics.

    Raises:
        ConfigError: a negative K; K > 0 when no precision is :data:`RESCORABLE`; K below the largest
            cutoff (the rescored list must hold every rank a metric reads).
    """
    if rescore < 0:
        raise ConfigError(f"rescore must be ≥ 0 (0: no rescoring), got {rescore}")
    if rescore == 0:
        return
    if not any(p in RESCORABLE for p in precisions):
        raise ConfigError(
            f"rescoring applies to {', '.join(RESCORABLE)}, and none of the precisions ({', '.join(precisions)}) "
            "is one; drop --rescore or add a quantised precision"
        )
    if rescore < largest_cutoff:
        raise ConfigError(
            f"rescore {rescore} is below the largest cutoff ({largest_cutoff}): the rescored list must hold "
            f"every rank a metric reads; use at least {largest_cutoff}, or 0 for no rescoring"
        )
