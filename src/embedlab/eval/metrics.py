"""Quality metrics as pure functions, defined exactly as MTEB computes them.

Correlation (STS):

- :func:`spearman`: Pearson correlation of the two samples' ranks, ties given their average rank
  (``scipy.stats.spearmanr``, which MTEB's STS evaluator calls).
- :func:`pearson`: the usual product-moment correlation (``scipy.stats.pearsonr``).

Ranking (retrieval), per query, as MTEB gets them from ``pytrec_eval`` (trec_eval 9) plus its own MRR:

- a document is *relevant* when its qrels grade is ≥ 1 (trec_eval's default ``relevance_level``);
  grades ≤ 0 and documents missing from the qrels count as not relevant.
- :func:`ndcg_at_k` (``ndcg_cut.k``): DCG@k = Σ_{rank r ≤ k} grade / log2(r + 1) with the *linear* gain
  ``grade`` (not 2^grade - 1), divided by the DCG@k of the ideal ordering of every judged document
  (relevant ones retrieved or not). 0 when the query has no relevant document.
- :func:`average_precision_at_k` (``map_cut.k``): Σ over relevant documents at rank r ≤ k of
  precision@r, divided by the number of relevant documents of the query (not by min(k, #relevant)).
- :func:`recall_at_k` (``recall.k``): relevant documents in the top k / relevant documents.
- :func:`reciprocal_rank_at_k` (MTEB's ``mrr_at_k``): 1 / rank of the first relevant document in the
  top k, 0 if none.

Ties: documents with equal scores are ordered by document id, *descending* (trec_eval sorts by score,
then ``strcmp`` of the ids in reverse; :func:`rank_documents`). MTEB's own MRR keeps Python's
insertion order on ties; we use the trec_eval order for every metric so that a result never depends
on the order documents were scored in. Exact ties only happen between identical vectors
(duplicate documents), so the published figures are not affected.

A query with no relevant document scores 0 on every ranking metric and still counts in the mean
(as in pytrec_eval / MTEB, which average over every query that has qrels).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from embedlab.arrays import Float64Array
from embedlab.errors import InputError

#: Cutoffs reported by the retrieval evaluator (MTEB reports these and more).
DEFAULT_K_VALUES: tuple[int, ...] = (1, 3, 5, 10, 100)


# -- correlation ---------------------------------------------------------------------------------


def _as_pair(x: Iterable[float], y: Iterable[float]) -> tuple[Float64Array, Float64Array]:
    a = np.asarray(list(x) if not isinstance(x, np.ndarray) else x, dtype=np.float64).ravel()
    b = np.asarray(list(y) if not isinstance(y, np.ndarray) else y, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise InputError(f"the two samples differ in length: {a.size} and {b.size}")
    if a.size < 2:
        raise InputError(f"a correlation needs at least 2 pairs, got {a.size}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise InputError("the samples hold NaN or infinite values")
    return a, b


def average_ranks(values: Iterable[float]) -> Float64Array:
    """1-based ranks of ``values`` (ascending), ties sharing their average rank; shape (n,)."""
    data = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=np.float64).ravel()
    order = np.argsort(data, kind="mergesort")
    ranks = np.empty(data.size, dtype=np.float64)
    sorted_values = data[order]
    start = 0
    while start < data.size:
        stop = start + 1
        while stop < data.size and sorted_values[stop] == sorted_values[start]:
            stop += 1
        ranks[order[start:stop]] = (start + 1 + stop) / 2.0  # mean of ranks start+1 .. stop
        start = stop
    return ranks


def pearson(x: Iterable[float], y: Iterable[float]) -> float:
    """Pearson correlation of two equally long samples (≥ 2 values); NaN if either is constant.

    Raises:
        InputError: different lengths, fewer than 2 values, or non-finite values.
    """
    a, b = _as_pair(x, y)
    da = a - a.mean()
    db = b - b.mean()
    denominator = math.sqrt(float(np.dot(da, da)) * float(np.dot(db, db)))
    if denominator == 0.0:
        return float("nan")
    return max(-1.0, min(1.0, float(np.dot(da, db)) / denominator))


def spearman(x: Iterable[float], y: Iterable[float]) -> float:
    """Spearman rank correlation (average ranks for ties); NaN if either sample is constant.

    Raises:
        InputError: different lengths, fewer than 2 values, or non-finite values.
    """
    a, b = _as_pair(x, y)
    return pearson(average_ranks(a), average_ranks(b))


# -- ranking -------------------------------------------------------------------------------------


def rank_documents(scores: Mapping[str, float]) -> list[str]:
    """Document ids ordered best first: score descending, ties by id descending (trec_eval's order)."""
    return [doc for doc, _ in sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True)]


def _check_k(k: int) -> None:
    if k < 1:
        raise InputError(f"the cutoff k must be ≥ 1, got {k}")


def _relevant_count(qrels: Mapping[str, int]) -> int:
    return sum(1 for grade in qrels.values() if grade >= 1)


def dcg_at_k(grades: Sequence[float], k: int) -> float:
    """Σ_{i < k} grades[i] / log2(i + 2) over positive grades (position i is rank i + 1)."""
    _check_k(k)
    return sum(g / math.log2(i + 2) for i, g in enumerate(grades[:k]) if g > 0)


def ndcg_at_k(ranking: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    """nDCG@k of one query with linear gain (trec_eval ``ndcg_cut``).

    Args:
        ranking: retrieved document ids, best first (at least the top k).
        qrels: judged documents of the query: id → integer grade.
        k: cutoff.
    """
    _check_k(k)
    ideal = dcg_at_k(sorted((g for g in qrels.values() if g > 0), reverse=True), k)
    if ideal == 0.0:
        return 0.0
    return dcg_at_k([qrels.get(doc, 0) for doc in ranking[:k]], k) / ideal


def average_precision_at_k(ranking: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    """AP@k of one query (trec_eval ``map_cut``): divided by all relevant documents, not min(k, ·)."""
    _check_k(k)
    n_relevant = _relevant_count(qrels)
    if n_relevant == 0:
        return 0.0
    hits = 0
    total = 0.0
    for rank, doc in enumerate(ranking[:k], start=1):
        if qrels.get(doc, 0) >= 1:
            hits += 1
            total += hits / rank
    return total / n_relevant


def recall_at_k(ranking: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    """Recall@k of one query (trec_eval ``recall``); 0 when it has no relevant document."""
    _check_k(k)
    n_relevant = _relevant_count(qrels)
    if n_relevant == 0:
        return 0.0
    return sum(1 for doc in ranking[:k] if qrels.get(doc, 0) >= 1) / n_relevant


def reciprocal_rank_at_k(ranking: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    """1 / rank of the first relevant document within the top k, else 0 (MTEB's ``mrr_at_k``)."""
    _check_k(k)
    for rank, doc in enumerate(ranking[:k], start=1):
        if qrels.get(doc, 0) >= 1:
            return 1.0 / rank
    return 0.0


RANKING_METRICS = {
    "ndcg": ndcg_at_k,
    "map": average_precision_at_k,
    "recall": recall_at_k,
    "mrr": reciprocal_rank_at_k,
}


def score_query(ranking: Sequence[str], qrels: Mapping[str, int], k_values: Sequence[int]) -> dict[str, float]:
    """Every ranking metric of one query at every cutoff, keyed ``ndcg_at_10``, ``map_at_10``..."""
    return {f"{name}_at_{k}": metric(ranking, qrels, k) for name, metric in RANKING_METRICS.items() for k in k_values}


def score_rankings(
    rankings: Mapping[str, Sequence[str]],
    qrels: Mapping[str, Mapping[str, int]],
    k_values: Sequence[int] = DEFAULT_K_VALUES,
) -> dict[str, float]:
    """Mean of every ranking metric over the queries of ``qrels``.

    Args:
        rankings: query id → retrieved document ids, best first. A query of ``qrels`` without a
            ranking scores 0 (nothing retrieved).
        qrels: query id → {document id → integer grade}; every query here counts in the mean.
        k_values: cutoffs.

    Raises:
        InputError: no queries, or a cutoff below 1.
    """
    if not qrels:
        raise InputError("no queries to score: the qrels are empty")
    for k in k_values:
        _check_k(k)
    sums: dict[str, float] = {}
    for query_id, judged in qrels.items():
        for key, value in score_query(rankings.get(query_id, ()), judged, k_values).items():
            sums[key] = sums.get(key, 0.0) + value
    return {key: total / len(qrels) for key, total in sums.items()}


def score_run(
    run: Mapping[str, Mapping[str, float]],
    qrels: Mapping[str, Mapping[str, int]],
    k_values: Sequence[int] = DEFAULT_K_VALUES,
) -> dict[str, float]:
    """Like ``pytrec_eval.RelevanceEvaluator(qrels, ...).evaluate(run)`` averaged as MTEB does.

    ``run`` maps query id → {document id → score}; documents are ranked with :func:`rank_documents`.
    """
    return score_rankings({q: rank_documents(scores) for q, scores in run.items()}, qrels, k_values)
