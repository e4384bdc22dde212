"""Metrics against hand-computed cases, and against pytrec_eval / MTEB's own code when installed."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from embedlab.errors import InputError
from embedlab.eval.metrics import (
    average_precision_at_k,
    average_ranks,
    ndcg_at_k,
    pearson,
    rank_documents,
    recall_at_k,
    reciprocal_rank_at_k,
    score_rankings,
    score_run,
    spearman,
)

# -- correlation ---------------------------------------------------------------------------------


def test_average_ranks_share_the_mean_rank_on_ties() -> None:
    assert average_ranks([10.0, 20.0, 20.0, 5.0, 20.0]).tolist() == [2.0, 4.0, 4.0, 1.0, 4.0]


def test_spearman_by_hand_without_ties() -> None:
    # d = rank differences (0, 1, -1, 0): 1 - 6 * 2 / (4 * 15) = 0.8
    assert spearman([1, 2, 3, 4], [10, 30, 20, 40]) == pytest.approx(0.8)


def test_spearman_with_ties_uses_average_ranks() -> None:
    # ranks x = (1, 2.5, 2.5, 4), y = (1, 2, 3, 4): 4.5 / sqrt(4.5 * 5)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(4.5 / math.sqrt(22.5))


def test_pearson_by_hand() -> None:
    # x - mean = (-1, 0, 1), y - mean = (-7/3, -1/3, 8/3): 5 / sqrt(2 * 114/9)
    assert pearson([1, 2, 3], [2, 4, 7]) == pytest.approx(5 / math.sqrt(2 * 114 / 9))


def test_correlations_agree_with_scipy() -> None:
    from scipy import stats

    rng = np.random.default_rng(0)
    x = rng.integers(0, 6, size=200).astype(float)  # many ties, like STS gold scores
    y = x + rng.normal(0, 2, size=200)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    assert pearson(x, y) == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)


def test_constant_sample_gives_nan() -> None:
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    assert math.isnan(pearson([1, 2, 3], [4, 4, 4]))


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [([1, 2, 3], [1, 2], "differ in length"), ([1], [1], "at least 2"), ([1, float("nan")], [1, 2], "NaN")],
)
def test_bad_samples_are_clear_errors(x: list[float], y: list[float], message: str) -> None:
    with pytest.raises(InputError, match=message):
        spearman(x, y)


# -- ranking, by hand ----------------------------------------------------------------------------


def test_ndcg_uses_linear_gain_and_log2_discount() -> None:
    qrels = {"a": 2, "b": 1, "c": 0}
    # DCG@3 = 0 + 1/log2(3) + 2/log2(4); ideal = 2 + 1/log2(3)
    expected = (1 / math.log2(3) + 1.0) / (2 + 1 / math.log2(3))
    assert ndcg_at_k(["c", "b", "a", "x"], qrels, 3) == pytest.approx(expected)
    # exponential gain (2^g - 1) would give (1/log2(3) + 3/2) / (3 + 1/log2(3)) instead
    assert ndcg_at_k(["c", "b", "a", "x"], qrels, 3) != pytest.approx((1 / math.log2(3) + 1.5) / (3 + 1 / math.log2(3)))


def test_ndcg_cutoff_and_ideal_from_all_judged_documents() -> None:
    assert ndcg_at_k(["b", "a"], {"a": 2, "b": 1}, 1) == pytest.approx(0.5)
    # b is relevant but never retrieved: it still counts in the ideal ordering
    assert ndcg_at_k(["a", "x"], {"a": 1, "b": 1}, 10) == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert ndcg_at_k(["a", "b"], {"a": 1, "b": 1}, 10) == pytest.approx(1.0)


def test_average_precision_divides_by_all_relevant_documents() -> None:
    qrels = {"a": 1, "b": 1, "c": 1}
    assert average_precision_at_k(["a", "x", "b", "y"], qrels, 10) == pytest.approx((1 + 2 / 3) / 3)
    assert average_precision_at_k(["a", "x", "b", "y"], qrels, 2) == pytest.approx(1 / 3)


def test_recall_and_reciprocal_rank() -> None:
    qrels = {"a": 1, "b": 2, "z": 0}
    ranking = ["z", "x", "b", "a"]
    assert recall_at_k(ranking, qrels, 3) == pytest.approx(0.5)
    assert recall_at_k(ranking, qrels, 4) == pytest.approx(1.0)
    assert reciprocal_rank_at_k(ranking, qrels, 10) == pytest.approx(1 / 3)
    assert reciprocal_rank_at_k(ranking, qrels, 2) == 0.0


def test_query_without_relevant_documents_scores_zero_and_still_counts() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"a": 0, "b": -1}}
    rankings = {"q1": ["a", "b"], "q2": ["a", "b"]}
    for k in (1, 10):
        assert ndcg_at_k(rankings["q2"], qrels["q2"], k) == 0.0
        assert average_precision_at_k(rankings["q2"], qrels["q2"], k) == 0.0
        assert recall_at_k(rankings["q2"], qrels["q2"], k) == 0.0
        assert reciprocal_rank_at_k(rankings["q2"], qrels["q2"], k) == 0.0
    means = score_rankings(rankings, qrels, [10])
    assert means["ndcg_at_10"] == pytest.approx(0.5)
    assert means["mrr_at_10"] == pytest.approx(0.5)


def test_a_judged_query_with_no_ranking_scores_zero() -> None:
    means = score_rankings({"q1": ["a"]}, {"q1": {"a": 1}, "q2": {"a": 1}}, [10])
    assert means["recall_at_10"] == pytest.approx(0.5)


def test_ties_are_broken_by_document_id_descending_like_trec_eval() -> None:
    assert rank_documents({"a": 0.5, "b": 0.5, "c": 0.9, "d": 0.1}) == ["c", "b", "a", "d"]
    # the relevant document 'a' loses the tie against 'b', so it sits at rank 2
    means = score_run({"q": {"a": 0.5, "b": 0.5}}, {"q": {"a": 1}}, [1, 10])
    assert means["mrr_at_10"] == pytest.approx(0.5)
    assert means["ndcg_at_1"] == 0.0


def test_bad_cutoff_and_empty_qrels_are_errors() -> None:
    with pytest.raises(InputError, match="k must be"):
        ndcg_at_k(["a"], {"a": 1}, 0)
    with pytest.raises(InputError, match="qrels are empty"):
        score_rankings({}, {}, [10])


# -- against the reference implementations -------------------------------------------------------


def _random_run(seed: int, ties: bool) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, int]]]:
    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(60)]
    run: dict[str, dict[str, float]] = {}
    qrels: dict[str, dict[str, int]] = {}
    for q in range(25):
        retrieved = rng.sample(docs, 40)
        run[f"q{q}"] = {d: (round(rng.random(), 1) if ties else rng.random()) for d in retrieved}
        judged = rng.sample(docs, rng.randint(1, 8))
        qrels[f"q{q}"] = {d: rng.choice([0, 1, 1, 2, 3]) for d in judged}
    return run, qrels


@pytest.mark.parametrize("ties", [False, True])
def test_matches_pytrec_eval(ties: bool) -> None:
    pytrec_eval = pytest.importorskip("pytrec_eval", reason="pytrec_eval (installed with mteb) is not available")
    run, qrels = _random_run(1, ties)
    k_values = [1, 3, 5, 10, 20]
    measures = {
        f"ndcg_cut.{','.join(map(str, k_values))}",
        f"map_cut.{','.join(map(str, k_values))}",
        f"recall.{','.join(map(str, k_values))}",
    }
    reference = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    ours = score_run(run, qrels, k_values)
    for k in k_values:
        for ours_name, theirs in (("ndcg", "ndcg_cut"), ("map", "map_cut"), ("recall", "recall")):
            expected = sum(reference[q][f"{theirs}_{k}"] for q in reference) / len(reference)
            assert ours[f"{ours_name}_at_{k}"] == pytest.approx(expected, abs=1e-12), (ours_name, k)


def test_matches_mteb_retrieval_scores() -> None:
    pytest.importorskip("mteb", reason="mteb is not installed")
    from mteb._evaluators.retrieval_metrics import calculate_retrieval_scores

    run, qrels = _random_run(2, ties=False)  # MTEB's own MRR keeps insertion order on ties
    k_values = [1, 3, 5, 10, 20]
    result = calculate_retrieval_scores(run, qrels, k_values)
    ours = score_run(run, qrels, k_values)
    for k in k_values:
        assert ours[f"ndcg_at_{k}"] == pytest.approx(result.ndcg[f"NDCG@{k}"], abs=1e-5)
        assert ours[f"map_at_{k}"] == pytest.approx(result.map[f"MAP@{k}"], abs=1e-5)
        assert ours[f"recall_at_{k}"] == pytest.approx(result.recall[f"Recall@{k}"], abs=1e-5)
        assert ours[f"mrr_at_{k}"] == pytest.approx(result.mrr[f"MRR@{k}"], abs=1e-9)
