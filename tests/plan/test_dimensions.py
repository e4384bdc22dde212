"""Output dimensions: the halving grid, the smallest dimension within tolerance, measured scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

import embedlab
from embedlab.eval.task import load_eval_task
from embedlab.plan.dimensions import (
    DimensionChoice,
    DimensionQuality,
    choose_dimensions,
    dimension_grid,
    dimension_qualities,
    measure_quality_grid,
)


@pytest.mark.parametrize(
    ("dim", "smallest", "grid"),
    [
        (384, 32, [384, 192, 96, 48]),  # 24 would be below 32
        (768, 32, [768, 384, 192, 96, 48]),
        (1024, 32, [1024, 512, 256, 128, 64, 32]),
        (100, 32, [100, 50]),  # 25: below the floor
        (96, 8, [96, 48, 24, 12]),  # 6 would be below 8
        (75, 32, [75]),  # odd: no whole halving
        (32, 32, [32]),
        (16, 32, [16]),  # a model smaller than the floor keeps its own size
    ],
)
def test_dimension_grid(dim: int, smallest: int, grid: list[int]) -> None:
    assert dimension_grid(dim, smallest) == grid


def quality(dimensions: int, score: float, full: float = 0.80) -> DimensionQuality:
    return DimensionQuality(dimensions, "cosine_spearman", score, (full - score) / full)


def test_the_smallest_dimension_within_the_tolerance() -> None:
    measured = [quality(384, 0.80), quality(192, 0.796), quality(96, 0.78), quality(48, 0.70)]
    choice = choose_dimensions(384, measured, max_quality_loss=0.01)  # losses 0, 0.5 %, 2.5 %, 12.5 %
    assert choice.recommended == 192
    assert choice.reasons == [
        "192 is the smallest dimension whose cosine_spearman (0.7960) is within 1 % of the full 384 (0.8000)"
    ]
    assert choose_dimensions(384, measured, max_quality_loss=0.03).recommended == 96
    assert choose_dimensions(384, measured, max_quality_loss=0.0).recommended == 384


def test_a_gain_counts_as_within_and_gaps_do_not_matter() -> None:
    measured = [quality(384, 0.80), quality(192, 0.70), quality(96, 0.81)]  # 96 beats the full dimension
    assert choose_dimensions(384, measured, max_quality_loss=0.01).recommended == 96


def test_nothing_within_keeps_the_first_measured() -> None:
    measured = [DimensionQuality(384, "ndcg_at_10", 0.5, 0.02), DimensionQuality(192, "ndcg_at_10", 0.4, 0.2)]
    assert choose_dimensions(384, measured, max_quality_loss=0.01).recommended == 384


def test_without_eval_the_full_dimension_stays() -> None:
    choice = choose_dimensions(768, [], max_quality_loss=0.01)
    assert choice == DimensionChoice(768, [], [choice.reasons[0]]) and "no --eval" in choice.reasons[0]
    assert choice.to_dict() == {"recommended": 768, "measured": [], "reasons": choice.reasons}


def test_measured_scores_are_the_sts_spearman_at_each_dimension(tiny_bert_dir: Path, tmp_path: Path) -> None:
    pairs = [
        ("the cat sat", "the cat sat on the mat", 4.0),
        ("a dog", "the mat", 0.5),
        ("cat", "a cat", 4.5),
        ("the dog sat", "a dog sat on a mat", 3.5),
        ("query", "passage", 1.0),
        ("a b c", "a b c d", 4.2),
        ("x y", "the cat", 0.2),
    ]
    sts = tmp_path / "sts.csv"
    sts.write_text("sentence1,sentence2,score\n" + "\n".join(f"{a},{b},{s}" for a, b, s in pairs) + "\n")
    model = embedlab.load(str(tiny_bert_dir), backend="torch", threads=1)
    lines: list[str] = []
    task = load_eval_task(sts)
    points = measure_quality_grid(model, task, [32, 16, 8], ["float32", "binary"], {"max_tokens": 16}, lines.append)
    assert [(p.dimensions, p.precision) for p in points] == [(d, p) for d in (32, 16, 8) for p in ("float32", "binary")]
    assert lines == [f"dimensions {d}: evaluating float32, binary" for d in (32, 16, 8)]
    measured = dimension_qualities(points[::-1])  # any order in: largest dimension first out
    assert [m.dimensions for m in measured] == [32, 16, 8] and {m.metric for m in measured} == {"cosine_spearman"}
    gold = [s for _, _, s in pairs]
    for m in measured:  # recomputed here: cosine of the cut, re-normalised vectors against the gold scores
        left = model.embed([a for a, _, _ in pairs], dimensions=m.dimensions, max_tokens=16).astype(np.float64)
        right = model.embed([b for _, b, _ in pairs], dimensions=m.dimensions, max_tokens=16).astype(np.float64)
        cosine = (left * right).sum(axis=1) / np.linalg.norm(left, axis=1) / np.linalg.norm(right, axis=1)
        assert m.score == pytest.approx(spearmanr(cosine, gold).statistic, abs=1e-6)
    full = measured[0].score
    assert measured[0].loss == 0.0
    assert [m.loss for m in measured[1:]] == pytest.approx([(full - m.score) / abs(full) for m in measured[1:]])
    for point in points[1::2]:  # binary: 1 - hamming / d of the packed signs, as eval sts --precision binary does
        left = model.embed([a for a, _, _ in pairs], dimensions=point.dimensions, max_tokens=16) > 0
        right = model.embed([b for _, b, _ in pairs], dimensions=point.dimensions, max_tokens=16) > 0
        agree = (left == right).mean(axis=1)
        assert point.score == pytest.approx(spearmanr(agree, gold).statistic, abs=1e-6)
    assert measure_quality_grid(model, task, [], ["float32"], {}) == [] and dimension_qualities([]) == []
