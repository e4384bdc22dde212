"""Evaluation tasks as one object: an STS file or a BEIR directory, loaded once, scored on any model.

:class:`EvalTask` runs the task's evaluator (:func:`~embedlab.eval.sts.evaluate_sts` or
:func:`~embedlab.eval.retrieval.evaluate_retrieval`); :func:`score_grid` scores it at several output
dimensions and precisions, one embedding pass per dimension scoring every precision at once
(``evaluate_sts_by_precision`` / ``evaluate_retrieval_by_precision``: the float vectors are quantised to
each precision and compared as a vector store would compare them). ``plan`` and ``compare`` use both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from embedlab.engine.embedder import Embedder
from embedlab.errors import ConfigError, DataFileError


@dataclass
class EvalTask:
    """An evaluation data set, loaded once and run for every configuration plan compares.

    Attributes:
        kind: ``sts`` (a sentence-pair file) or ``retrieval`` (a BEIR directory).
        path: where it was read from.
        data: the loaded :class:`~embedlab.eval.StsData` or :class:`~embedlab.eval.RetrievalData`.
        size: pairs (STS) or queries (retrieval) scored.
    """

    kind: str
    path: Path
    data: Any
    size: int

    def run(self, embedder: Embedder, label: str, **options: Any) -> Any:
        """Score ``embedder`` with embedding ``options`` (``max_tokens``, ``dimensions``...): an EvalReport."""
        from embedlab.eval import evaluate_retrieval, evaluate_sts

        if self.kind == "sts":
            return evaluate_sts(embedder, self.data, label, **options)
        return evaluate_retrieval(embedder, self.data, config_label=label, **options)


def load_eval_task(path: str | Path, limit: int | None = None) -> EvalTask:
    """Load an STS file (``.csv``/``.tsv``/``.gz``) or a BEIR directory, optionally its first ``limit`` pairs / queries.

    Raises:
        DataFileError: missing or unreadable data (from the eval module).
        ConfigError: a limit below 1.
    """
    from embedlab.eval import RetrievalData, load_beir, load_sts

    if limit is not None and limit < 1:
        raise ConfigError(f"--eval-limit must be at least 1, got {limit}")
    where = Path(path)
    if not where.exists():
        raise DataFileError(f"evaluation data not found: {where}")
    if where.is_dir():
        data = load_beir(where)
        if limit is not None and limit < len(data.query_ids):
            kept = data.query_ids[:limit]
            data = RetrievalData(
                corpus_ids=data.corpus_ids,
                corpus_texts=data.corpus_texts,
                query_ids=kept,
                query_texts=data.query_texts[:limit],
                qrels={q: data.qrels[q] for q in kept if q in data.qrels},
                source=f"{data.source} (first {limit} queries)",
                notes=data.notes,
            )
        return EvalTask("retrieval", where, data, len(data.query_ids))
    sts = load_sts(where)
    if limit is not None and limit < len(sts):
        sts = sts.head(limit)
    return EvalTask("sts", where, sts, len(sts))


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
    **embed_options: Any,
) -> list[QualityPoint]:
    """Score ``embedder`` on ``task`` at every dimension and precision.

    Args:
        dimensions: output sizes (each ≤ the model's dimension); one embedding pass each.
        precisions: precisions scored from the same pass.
        rescore: retrieval only: rescore the top K candidates of int8 / binary searches with the float query.
        **embed_options: of every pass (``max_tokens``, ``long_input``).

    Raises:
        ConfigError: a dimension or precision the model cannot give.
    """
    from embedlab.eval.quantized import RESCORABLE
    from embedlab.eval.retrieval import evaluate_retrieval_by_precision
    from embedlab.eval.sts import evaluate_sts_by_precision

    points: list[QualityPoint] = []
    for size in dimensions:
        if task.kind == "sts":
            reports = evaluate_sts_by_precision(
                embedder, task.data, precisions=precisions, dimensions=size, **embed_options
            )
            used = 0
        else:
            rescorable = rescore > 0 and any(p in RESCORABLE for p in precisions)
            used = rescore if rescorable else 0
            reports = evaluate_retrieval_by_precision(
                embedder, task.data, precisions=precisions, rescore=used, dimensions=size, **embed_options
            )
        for precision, report in zip(precisions, reports, strict=True):
            points.append(QualityPoint(size, precision, report.metric, float(report.score), used))
    return points
