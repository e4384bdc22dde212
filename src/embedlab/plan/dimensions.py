"""Dimension: task quality at smaller output ``dimensions`` (Matryoshka truncation), with ``--eval``.

The engine keeps the first k values of each vector and re-normalises, at any k up to the model's
dimension; models trained with a Matryoshka loss lose little, others may lose a lot. Only a
measurement tells, so without ``--eval`` plan keeps the full dimension.

The recommendation is the smallest k whose score is at least ``full × (1 − max_quality_loss)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from embedlab.engine.embedder import Embedder
from embedlab.eval.task import EvalTask, QualityPoint, score_grid
from embedlab.plan.backend_choice import relative_loss

MIN_DIMENSIONS = 32


def dimension_grid(dim: int, smallest: int = MIN_DIMENSIONS) -> list[int]:
    """``dim, dim/2, dim/4, ...`` down to ``smallest`` (whole halvings only), largest first."""
    grid = [dim]
    current = dim
    while current % 2 == 0 and current // 2 >= smallest:
        current //= 2
        grid.append(current)
    return grid


@dataclass(frozen=True)
class DimensionQuality:
    """Task quality at one output dimension."""

    dimensions: int
    metric: str
    score: float
    loss: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


@dataclass(frozen=True)
class DimensionChoice:
    """The recommended output dimension and the measurements behind it."""

    recommended: int
    measured: list[DimensionQuality] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "recommended": self.recommended,
            "measured": [m.to_dict() for m in self.measured],
            "reasons": self.reasons,
        }


def measure_quality_grid(
    embedder: Embedder,
    task: EvalTask,
    grid: list[int],
    precisions: Sequence[str],
    options: dict[str, Any],
    log: Callable[[str], None] | None = None,
) -> list[QualityPoint]:
    """Score ``task`` at each output dimension of ``grid`` and each precision: one embedding pass per dimension.

    Args:
        options: embedding options of every pass (``max_tokens``, ``long_input``).
    """
    points: list[QualityPoint] = []
    for dims in grid:
        if log is not None:
            log(f"dimensions {dims}: evaluating {', '.join(precisions)}")
        points.extend(score_grid(embedder, task, [dims], precisions, **options))
    return points


def dimension_qualities(points: Sequence[QualityPoint]) -> list[DimensionQuality]:
    """The float32 points as :class:`DimensionQuality`, largest dimension first, each loss relative to the first."""
    float_points = sorted((p for p in points if p.precision == "float32"), key=lambda p: -p.dimensions)
    if not float_points:
        return []
    reference = float_points[0].score
    return [DimensionQuality(p.dimensions, p.metric, p.score, relative_loss(reference, p.score)) for p in float_points]


def choose_dimensions(dim: int, measured: list[DimensionQuality], max_quality_loss: float) -> DimensionChoice:
    """The smallest measured dimension within ``max_quality_loss`` of the full one (``dim`` if none measured)."""
    if not measured:
        return DimensionChoice(
            dim, [], ["no --eval: quality at smaller dimensions is unknown, so the full dimension stays"]
        )
    within = [m for m in measured if m.loss <= max_quality_loss]
    best = min(within, key=lambda m: m.dimensions) if within else measured[0]
    reasons = [
        f"{best.dimensions} is the smallest dimension whose {best.metric} ({best.score:.4f}) is within "
        f"{100 * max_quality_loss:g} % of the full {measured[0].dimensions} ({measured[0].score:.4f})"
    ]
    return DimensionChoice(best.dimensions, measured, reasons)
