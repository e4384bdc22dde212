"""Storage: which (model, output dimension, precision) to store, for a stated storage budget (pure functions).

Each option's total is ``vectors × bytes per vector`` (:func:`~embedlab.engine.vector_precision.bytes_per_vector`:
raw arrays, no index overhead; one vector per text, chunk windows averaged into one). Among the options
that fit the budget, the recommendation is the one with the best measured score (ties: fewer bytes).
Without scores (no ``--eval``), nothing says what a precision costs in quality, so the recommendation is
the fitting option that keeps the most bytes per vector, and the reason says the cost is unmeasured.

Options come from the planned model (its dimensions × precisions, scored with ``--eval``) and, to choose
the model too, from a ``compare --json`` result (:func:`options_from_compare`): scores of different data
sets cannot be ranked together, so those are refused.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from embedlab.errors import ConfigError, DataFileError
from embedlab.inspect.report import fmt_bytes


@dataclass(frozen=True)
class StorageOption:
    """One way to store the vectors.

    Attributes:
        model: the model's name.
        dimensions: values kept per vector.
        precision: how each value (or bit) is stored.
        bytes_per_vector: bytes of one stored vector.
        score: the quality score measured at this dimension and precision, or None.
        metric: the score's name, or None.
        source: where it was measured (``plan`` or the compare file).
    """

    model: str
    dimensions: int
    precision: str
    bytes_per_vector: int
    score: float | None
    metric: str | None
    source: str

    def total_bytes(self, vectors: int) -> int:
        """Bytes of ``vectors`` vectors stored this way."""
        return vectors * self.bytes_per_vector

    def label(self) -> str:
        """``model, d=256, binary``."""
        return f"{self.model}, d={self.dimensions}, {self.precision}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


@dataclass(frozen=True)
class StorageChoice:
    """The recommended storage and what it was chosen from.

    Attributes:
        budget_bytes: the budget for all vectors (None: none stated).
        vectors: vectors to store (one per text).
        options: every option considered; ``fitting``: those within the budget (all without one).
        recommended: the option to use, or None when none fits.
        reasons: why, in words.
    """

    budget_bytes: int | None
    vectors: int
    options: list[StorageOption]
    fitting: list[StorageOption]
    recommended: StorageOption | None
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (each option with its total bytes)."""
        return {
            "budget_bytes": self.budget_bytes,
            "vectors": self.vectors,
            "recommended": None if self.recommended is None else self.recommended.to_dict(),
            "options": [
                {**o.to_dict(), "total_bytes": o.total_bytes(self.vectors), "fits": o in self.fitting}
                for o in self.options
            ],
            "reasons": self.reasons,
        }


def choose_storage(options: Sequence[StorageOption], vectors: int, budget_bytes: int | None) -> StorageChoice:
    """Recommend the best-scoring option whose total fits ``budget_bytes`` (see the module docstring).

    Raises:
        ConfigError: no options, or scores of different metrics (different data) among them.
    """
    if not options:
        raise ConfigError("no storage options to choose from")
    metrics = {o.metric for o in options if o.score is not None}
    if len(metrics) > 1:
        raise ConfigError(
            f"scores of different metrics cannot be ranked together: {', '.join(sorted(map(str, metrics)))}"
        )
    fitting = [o for o in options if budget_bytes is None or o.total_bytes(vectors) <= budget_bytes]
    reasons: list[str] = []
    if not fitting:
        smallest = min(options, key=lambda o: o.bytes_per_vector)
        reasons.append(
            f"nothing fits {fmt_bytes(budget_bytes)} for {vectors:,} vectors: the smallest option "
            f"({smallest.label()}) needs {fmt_bytes(smallest.total_bytes(vectors))}"
        )
        return StorageChoice(budget_bytes, vectors, list(options), [], None, reasons)
    scored = [o for o in fitting if o.score is not None]
    budget_text = "no --storage-budget" if budget_bytes is None else f"within {fmt_bytes(budget_bytes)}"
    if scored:
        best = max(scored, key=lambda o: (o.score, -o.bytes_per_vector))
        top = max((o for o in options if o.score is not None), key=lambda o: (o.score, -o.bytes_per_vector))
        reasons.append(
            f"{best.label()}: the best {best.metric} ({best.score:.4f}) {budget_text} "
            f"({fmt_bytes(best.total_bytes(vectors))} for {vectors:,} vectors)"
        )
        if top is not best and top.score is not None and best.score is not None:
            reasons.append(
                f"the best overall, {top.label()} ({top.score:.4f}), needs {fmt_bytes(top.total_bytes(vectors))}: "
                f"the budget costs {top.score - best.score:.4f}"
            )
    else:
        best = max(fitting, key=lambda o: o.bytes_per_vector)
        reasons.append(
            f"{best.label()}: the most bytes per vector ({budget_text}; {fmt_bytes(best.total_bytes(vectors))} "
            "in all); the quality cost of each precision is not measured (give --eval to measure it)"
        )
    return StorageChoice(budget_bytes, vectors, list(options), fitting, best, reasons)


def options_from_compare(path: Path) -> tuple[list[StorageOption], str | None, int | None]:
    """The options of every model in a ``compare --json`` / ``--save`` file, the data they were scored on and
    how many of its pairs / queries (None: all).

    Raises:
        DataFileError: missing, not JSON, or not a compare result.
    """
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        models = payload["models"]
        out = [
            StorageOption(
                model=str(model["name"]),
                dimensions=int(option["dimensions"]),
                precision=str(option["precision"]),
                bytes_per_vector=int(option["bytes_per_vector"]),
                score=None if option["score"] is None else float(option["score"]),
                metric=payload.get("metric"),
                source=str(path),
            )
            for model in models
            for option in model["options"]
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataFileError(f"{path}: not a result of `embedlab compare --json` ({exc})") from exc
    data = payload.get("data")
    limit = payload.get("data_limit")
    return out, None if data is None else str(data), None if limit is None else int(limit)
