"""Quality of each (output dimension, precision) of one loaded model on an eval data set.

One embedding pass per dimension scores every precision at once (``evaluate_sts_by_precision``,
``evaluate_retrieval_by_precision`` of :mod:`embedlab.eval`): the float vectors are quantised to each
precision and compared as a vector store would compare them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from embedlab.engine.embedder import Embedder
from embedlab.plan.quality import EvalTask


@dataclass(frozen=True)
class QualityPoint:
    """The headline score of one (dimensions, precision).

    Attributes:
        dimensions: output values kept per vector (Matryoshka truncation below the full size).
        precision: how the vectors were stored when compared.
        metric: the score's name (``cosine_spearman`` for STS, ``ndcg_at_10`` for retrieval).
        score: its value.
        rescore: first-pass candidates rescored with the float query (retrieval; 0: none).
    """

    dimensions: int
    precision: str
    metric: str
    score: float
    rescore: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QualityPoint:
        """A point back from :meth:`to_dict`."""
        return cls(**data)


def score_grid(
    embedder: Embedder,
    task: EvalTask,
    dimensions: Sequence[int],
    precisions: Sequence[str],
    rescore: int = 0,
) -> list[QualityPoint]:
    """Score ``embedder`` on ``task`` at every dimension and precision.

    Args:
        dimensions: output sizes (each ≤ the model's dimension); one embedding pass each.
        precisions: precisions scored from the same pass.
        rescore: retrieval only: rescore the top K candidates of int8 / binary searches with the float query.

    Raises:
        ConfigError: a dimension or precision the model cannot give.
    """
    from embedlab.eval.retrieval import evaluate_retrieval_by_precision
    from embedlab.eval.sts import evaluate_sts_by_precision

    points: list[QualityPoint] = []
    for size in dimensions:
        if task.kind == "sts":
            reports = evaluate_sts_by_precision(embedder, task.data, precisions=precisions, dimensions=size)
            used = 0
        else:
            rescorable = rescore > 0 and any(p in ("int8", "uint8", "binary", "ubinary") for p in precisions)
            used = rescore if rescorable else 0
            reports = evaluate_retrieval_by_precision(
                embedder, task.data, precisions=precisions, rescore=used, dimensions=size
            )
        for precision, report in zip(precisions, reports, strict=True):
            points.append(QualityPoint(size, precision, report.metric, float(report.score), used))
    return points
