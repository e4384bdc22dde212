"""Quality checks for ``plan --eval``: an STS file or a BEIR directory, scored with :mod:`embedlab.eval`."""

from __future__ import annotations

from dataclasses import dataclass
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
