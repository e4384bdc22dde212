"""The scoring math of quantised vectors, checked against by-hand numpy and sentence-transformers' own code."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from embedlab.engine.vector_precision import quantize, ranges_of
from embedlab.errors import ConfigError
from embedlab.eval.metrics import rank_documents
from embedlab.eval.quantized import (
    check_precisions,
    check_rescore,
    decode_for_rescoring,
    first_pass_scores,
    hamming_distances,
    int8_ranges_name,
    packed_bits,
    pair_similarity,
    precision_label,
    rescore_candidates,
)
from embedlab.eval.retrieval import TopKAccumulator, merge_block, tie_keys


def unit_rows(n: int, dim: int, seed: int) -> npt.NDArray[np.float32]:
    vectors = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


# -- first pass ------------------------------------------------------------------------------------


@pytest.mark.parametrize("dim", [8, 13, 64])
@pytest.mark.parametrize("precision", ["binary", "ubinary"])
def test_hamming_distance_of_packed_bits_matches_a_count_by_hand(precision: str, dim: int) -> None:
    queries, docs = unit_rows(7, dim, 0), unit_rows(11, dim, 1)
    docs[3] = queries[2]  # distance 0
    docs[4] = -queries[2]  # every bit differs (no value is exactly 0)
    distances = hamming_distances(quantize(queries, precision), quantize(docs, precision), precision)
    by_hand = ((queries[:, None, :] > 0) != (docs[None, :, :] > 0)).sum(axis=2)
    assert distances.dtype == np.int64
    assert distances.tolist() == by_hand.tolist()
    assert distances[2, 3] == 0 and distances[2, 4] == dim
    xor_popcount = np.unpackbits(
        packed_bits(quantize(queries, precision), precision)[:, None, :]
        ^ packed_bits(quantize(docs, precision), precision)[None, :, :],
        axis=2,
    ).sum(axis=2)
    assert distances.tolist() == xor_popcount.tolist()


def test_binary_and_ubinary_hold_the_same_bits() -> None:
    vectors = unit_rows(5, 20, 2)
    assert packed_bits(quantize(vectors, "binary"), "binary").tolist() == quantize(vectors, "ubinary").tolist()
    assert packed_bits(quantize(vectors, "ubinary"), "ubinary").tolist() == np.packbits(vectors > 0, axis=1).tolist()


def test_first_pass_of_bits_is_minus_the_hamming_distance() -> None:
    queries, docs = unit_rows(4, 30, 3), unit_rows(9, 30, 4)
    for precision in ("binary", "ubinary"):
        q, d = quantize(queries, precision), quantize(docs, precision)
        scores = first_pass_scores(q, d, precision)
        assert scores.dtype == np.float32
        assert (-scores).astype(np.int64).tolist() == hamming_distances(q, d, precision).tolist()


@pytest.mark.parametrize("calibrated", [False, True])
def test_int8_first_pass_is_the_dot_product_of_the_dequantised_codes(calibrated: bool) -> None:
    queries, docs = unit_rows(5, 16, 5), unit_rows(12, 16, 6)
    ranges = ranges_of(docs) if calibrated else None
    lo, hi = (ranges[0], ranges[1]) if ranges is not None else (np.full(16, -1.0), np.full(16, 1.0))
    step = (hi - lo) / 255
    scores = {}
    for precision, offset in (("int8", 128), ("uint8", 0)):
        q, d = quantize(queries, precision, ranges), quantize(docs, precision, ranges)
        by_hand = (lo + (q.astype(np.float64) + offset) * step) @ (lo + (d.astype(np.float64) + offset) * step).T
        scores[precision] = first_pass_scores(q, d, precision, ranges)
        np.testing.assert_allclose(scores[precision], by_hand, rtol=1e-5, atol=1e-6)
    assert scores["int8"].tolist() == scores["uint8"].tolist()  # the same levels, stored signed or not


def test_int8_dot_products_of_the_codes_at_the_default_ranges() -> None:
    # with [-1, 1] a level is (2 · code + 1) / 255, so the score is the code dot product shifted by the sums
    queries, docs = unit_rows(3, 10, 7), unit_rows(6, 10, 8)
    q = quantize(queries, "int8").astype(np.int64)
    d = quantize(docs, "int8").astype(np.int64)
    codes = q @ d.T + (q.sum(1)[:, None] + d.sum(1)[None, :]) / 2 + 10 / 4
    np.testing.assert_allclose(
        first_pass_scores(quantize(queries, "int8"), quantize(docs, "int8"), "int8"), 4 * codes / 255**2, rtol=1e-5
    )


def test_float_first_passes_are_cosines() -> None:
    queries, docs = unit_rows(4, 24, 9), unit_rows(7, 24, 10)
    assert first_pass_scores(queries, docs, "float32").tolist() == (queries @ docs.T).tolist()
    q16, d16 = queries.astype(np.float16).astype(np.float64), docs.astype(np.float16).astype(np.float64)
    cosine = (q16 @ d16.T) / np.linalg.norm(q16, axis=1)[:, None] / np.linalg.norm(d16, axis=1)[None, :]
    scores = first_pass_scores(quantize(queries, "float16"), quantize(docs, "float16"), "float16")
    np.testing.assert_allclose(scores, cosine, atol=1e-6)


def test_hamming_ties_are_broken_by_document_id_descending_like_trec_eval() -> None:
    docs = unit_rows(30, 8, 11)
    doc_ids = [f"doc{i:02d}" for i in range(30)]
    queries = unit_rows(3, 8, 12)
    q, d = quantize(queries, "binary"), quantize(docs, "binary")
    scores = first_pass_scores(q, d, "binary")
    accumulator = TopKAccumulator(3, 12, tie_keys(doc_ids))
    for start in range(0, 30, 7):
        merge_block(accumulator, scores[:, start : start + 7].copy(), 0, start)
    for row, ranking in enumerate(accumulator.rankings(doc_ids)):
        expected = rank_documents({doc_ids[j]: float(scores[row, j]) for j in range(30)})[:12]
        assert ranking == expected
    assert len(set(scores[0].tolist())) < 30  # 8 bits: ties are certain, so the order above was tested


# -- rescoring -------------------------------------------------------------------------------------


def sentence_transformers_rescore(
    query: npt.NDArray[np.float32],
    corpus: npt.NDArray[np.generic],
    precision: str,
    indices: npt.NDArray[np.int64],
    top_k: int,
    ranges: npt.NDArray[np.float32] | None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """The rescoring step of sentence-transformers 6.3's semantic_search_usearch / _faiss, line by line.

    usearch stores binary codes as raw bytes (``view(np.uint8) ^ 0x80``) and int8 codes as they are; faiss
    stores ubinary and uint8 codes as they are; ``indices`` are the first pass's candidates (no padding).
    """
    if precision == "binary":
        corpus = corpus.view(np.uint8) ^ 0x80
    top_k_embeddings = np.array([corpus[query_indices] for query_indices in indices])
    if precision in ("ubinary", "binary"):
        top_k_embeddings = np.unpackbits(top_k_embeddings.astype(np.uint8), axis=-1)[..., : query.shape[-1]]
    top_k_embeddings = top_k_embeddings.astype(int)
    if precision in ("int8", "uint8"):
        assert ranges is not None
        ranges = ranges.astype(np.float32, copy=False)
        steps = (ranges[1] - ranges[0]) / 255
        steps = np.where(steps == 0, 1, steps)
        top_k_embeddings = top_k_embeddings.astype(np.float64)
        if precision == "int8":
            top_k_embeddings += 128
        top_k_embeddings = top_k_embeddings * steps + ranges[0]
    rescored_scores = np.einsum("ij,ikj->ik", query, top_k_embeddings).astype(np.float64, copy=False)
    rescored_indices = np.argsort(-rescored_scores)[:, :top_k]
    rows = np.arange(len(query))[:, None]
    return indices[rows, rescored_indices], rescored_scores[rows, rescored_indices]


@pytest.mark.parametrize("precision", ["int8", "uint8", "binary", "ubinary"])
@pytest.mark.parametrize("calibrated", [False, True])
def test_rescoring_matches_sentence_transformers(precision: str, calibrated: bool) -> None:
    dim, n_docs, k, top = 21, 80, 15, 6
    queries, docs = unit_rows(9, dim, 13), unit_rows(n_docs, dim, 14)
    ranges = ranges_of(docs) if calibrated else np.vstack([np.full(dim, -1.0), np.full(dim, 1.0)]).astype(np.float32)
    codes = quantize(docs, precision, ranges if precision in ("int8", "uint8") else None)
    own_ranges = ranges if calibrated else None
    first = first_pass_scores(quantize(queries, precision, own_ranges), codes, precision, own_ranges)
    candidates = np.argsort(-first, axis=1, kind="stable")[:, :k].astype(np.int64)
    keys = tie_keys([f"d{i:03d}" for i in range(n_docs)])

    chosen, scores = rescore_candidates(queries, candidates, codes, precision, keys, top, own_ranges)
    theirs, their_scores = sentence_transformers_rescore(queries, codes, precision, candidates, top, ranges)
    assert chosen.tolist() == theirs.tolist()
    np.testing.assert_array_equal(scores, their_scores)


def test_decoding_matches_sentence_transformers_dequantisation() -> None:
    from sentence_transformers.util.quantization import _dequantize_embeddings, quantize_embeddings

    docs = unit_rows(40, 12, 15)
    ranges = ranges_of(docs)
    for precision in ("int8", "uint8"):
        codes = quantize(docs, precision, ranges)
        assert codes.tolist() == quantize_embeddings(docs, precision, ranges=ranges).tolist()
        theirs = _dequantize_embeddings(codes.astype(int), precision, ranges)
        np.testing.assert_array_equal(decode_for_rescoring(codes, precision, 12, ranges), theirs)
    bits = decode_for_rescoring(quantize(docs, "binary"), "binary", 12)
    assert bits.shape == (40, 12) and bits.tolist() == (docs > 0).astype(float).tolist()


def test_rescoring_ties_follow_the_keys_and_empty_slots_stay_empty() -> None:
    docs = unit_rows(6, 16, 16)
    docs[4] = docs[1]  # identical documents score alike
    codes = quantize(docs, "ubinary")
    doc_ids = ["a", "b", "c", "d", "e", "f"]
    keys = tie_keys(doc_ids)  # id descending: e before b
    query = docs[1:2]
    candidates = np.array([[1, 4, 0, -1, -1]], dtype=np.int64)
    chosen, scores = rescore_candidates(query, candidates, codes, "ubinary", keys, 5)
    assert chosen[0, :2].tolist() == [4, 1]
    assert scores[0, 0] == scores[0, 1]
    assert chosen[0, 3:].tolist() == [-1, -1] and np.isneginf(scores[0, 3:]).all()
    assert rescore_candidates(query, candidates, codes, "ubinary", tie_keys(["f", "e", "d", "c", "b", "a"]), 2)[0][
        0
    ].tolist() == [1, 4]


def test_only_quantised_integer_and_bit_codes_are_decoded() -> None:
    with pytest.raises(ConfigError, match="not rescored"):
        decode_for_rescoring(np.zeros((2, 4), dtype=np.float16), "float16", 4)


# -- STS similarity ------------------------------------------------------------------------------


def test_pair_similarity_per_precision() -> None:
    first, second = unit_rows(10, 19, 17), unit_rows(10, 19, 18)
    exact = np.einsum("ij,ij->i", first.astype(np.float64), second.astype(np.float64))
    assert pair_similarity(first, second, "float32", 19).tolist() == exact.tolist()
    for precision in ("binary", "ubinary"):
        similarity = pair_similarity(quantize(first, precision), quantize(second, precision), precision, 19)
        by_hand = 1 - ((first > 0) != (second > 0)).sum(axis=1) / 19
        assert similarity.tolist() == by_hand.tolist()
    ranges = ranges_of(np.vstack([first, second]))
    a, b = quantize(first, "int8", ranges), quantize(second, "int8", ranges)
    step = (ranges[1] - ranges[0]) / 255
    va = ranges[0] + (a.astype(np.float64) + 128) * step
    vb = ranges[0] + (b.astype(np.float64) + 128) * step
    cosine = (va * vb).sum(1) / np.linalg.norm(va, axis=1) / np.linalg.norm(vb, axis=1)
    np.testing.assert_allclose(pair_similarity(a, b, "int8", 19, ranges), cosine, rtol=1e-6)
    np.testing.assert_allclose(
        pair_similarity(quantize(first, "uint8", ranges), quantize(second, "uint8", ranges), "uint8", 19, ranges),
        cosine,
        rtol=1e-6,
    )
    f16 = pair_similarity(quantize(first, "float16"), quantize(second, "float16"), "float16", 19)
    np.testing.assert_allclose(f16, exact, atol=2e-3)


# -- checks and labels ---------------------------------------------------------------------------


def test_precision_lists_are_checked() -> None:
    assert check_precisions(["binary", "float32"]) == ("binary", "float32")
    with pytest.raises(ConfigError, match="unknown precision 'int4'; choose one of float32, float16, int8, uint8"):
        check_precisions(["int4"])
    with pytest.raises(ConfigError, match="'int8' is given twice"):
        check_precisions(["int8", "int8"])
    with pytest.raises(ConfigError, match="at least one precision"):
        check_precisions([])


def test_rescore_depths_are_checked() -> None:
    check_rescore(0, ["float32"], 100)
    check_rescore(100, ["float32", "binary"], 100)
    with pytest.raises(ConfigError, match="none of the precisions \\(float32, float16\\) is one"):
        check_rescore(100, ["float32", "float16"], 100)
    with pytest.raises(ConfigError, match="below the largest cutoff \\(100\\)"):
        check_rescore(50, ["binary"], 100)
    with pytest.raises(ConfigError, match="≥ 0"):
        check_rescore(-1, ["binary"], 100)


def test_int8_range_choices_are_checked() -> None:
    assert int8_ranges_name("unit", ["float32"]) == "unit"
    assert int8_ranges_name("corpus", ["int8"]) == "corpus"
    assert int8_ranges_name(["a", "b"], ["uint8"]) == "texts"
    assert int8_ranges_name(np.zeros((2, 4), dtype=np.float32), ["int8"]) == "given"
    with pytest.raises(ConfigError, match="unknown int8 ranges 'wide'"):
        int8_ranges_name("wide", ["int8"])
    with pytest.raises(ConfigError, match="at least 2 calibration texts"):
        int8_ranges_name(["only one"], ["int8"])
    with pytest.raises(ConfigError, match="apply to int8 and uint8, and none of the precisions \\(binary\\)"):
        int8_ranges_name("corpus", ["binary"])
    with pytest.raises(ConfigError, match="shape"):
        int8_ranges_name(np.zeros(4, dtype=np.float32), ["int8"])


def test_labels() -> None:
    assert precision_label("binary", 100) == "precision=binary,rescore=100"
    assert precision_label("float16") == "precision=float16"
    assert precision_label("int8", 0, "corpus") == "precision=int8,int8_ranges=corpus"
    assert precision_label("binary", 0, "corpus") == "precision=binary"
