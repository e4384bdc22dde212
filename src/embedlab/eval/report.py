"""The result of one evaluation (:class:`EvalReport`), as JSON and as a table of several runs."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.table import Table


@dataclass
class EvalReport:
    """One task run with one model under one configuration.

    Attributes:
        task: ``sts`` or ``retrieval`` (plus the data set name in ``details['data']``).
        model: the model's name.
        config: the configuration label, e.g. ``backend=onnx,max_tokens=128`` (``default`` for none).
        metric: the main metric's name (``cosine_spearman`` for STS, ``ndcg_at_10`` for retrieval).
        score: the main metric's value (fraction in [-1, 1] or [0, 1], not a percentage).
        n: pairs scored (STS) or queries scored (retrieval).
        seconds: wall time of the whole evaluation (embedding and search), seconds.
        tokens_per_second: tokens embedded (special tokens included, padding not) per second spent
            embedding.
        metrics: every metric measured, the main one included, by name.
        details: what else describes the run: settings in effect, texts embedded, tokens,
            truncated texts, embedding seconds, data path.
    """

    task: str
    model: str
    config: str
    metric: str
    score: float
    n: int
    seconds: float
    tokens_per_second: float
    metrics: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes None)."""
        return _jsonable(asdict(self))

    def to_json(self, indent: int | None = None) -> str:
        """The report as one JSON object (``task, model, config, metric, score, n, seconds, ...``)."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def comparison_to_dict(reports: Sequence[EvalReport]) -> dict[str, Any]:
    """Several runs of one task as one JSON-ready object, each row with its delta vs the first row."""
    if not reports:
        return {"results": []}
    base = reports[0].score
    rows = []
    for report in reports:
        row = report.to_dict()
        row["delta"] = _jsonable(report.score - base)
        rows.append(row)
    first = reports[0]
    return {"task": first.task, "model": first.model, "metric": first.metric, "baseline": first.config, "results": rows}


def _fmt(value: float, digits: int = 4) -> str:
    return "nan" if not math.isfinite(value) else f"{value:.{digits}f}"


def metric_title(name: str) -> str:
    """A short column title for a metric name: ``ndcg_at_10`` → ``nDCG@10``, ``cosine_spearman`` → ``Spearman``."""
    if name.startswith("cosine_"):
        return name.removeprefix("cosine_").capitalize()
    head, sep, k = name.partition("_at_")
    if not sep:
        return name
    short = {"ndcg": "nDCG", "map": "MAP", "mrr": "MRR", "recall": "R"}.get(head, head)
    return f"{short}@{k}"


def report_table(reports: Sequence[EvalReport], extra_metrics: Sequence[str] = ()) -> Table:
    """A rich table: configuration, main score, delta vs the first row, extra metrics, timing, tokens/s.

    Columns: ``Δ`` is the score minus the first row's; ``bytes/vec`` the bytes one stored vector takes in
    the row's precision (shown when the reports say); ``embed s`` the seconds spent embedding; ``tok/s``
    tokens embedded per embedding second; ``trunc`` the texts cut at the token limit.
    """
    first = reports[0] if reports else None
    title = f"{first.task} · {first.model} · {first.details.get('data', '')}" if first else "no results"
    table = Table(title=title, title_justify="left")
    table.add_column("configuration", overflow="fold")
    table.add_column(metric_title(first.metric) if first else "score", justify="right")
    table.add_column("Δ", justify="right")
    for name in extra_metrics:
        table.add_column(metric_title(name), justify="right")
    sized = any("bytes_per_vector" in report.details for report in reports)
    if sized:
        table.add_column("bytes/vec", justify="right")
    for column in ("n", "embed s", "total s", "tok/s", "trunc"):
        table.add_column(column, justify="right")
    for index, report in enumerate(reports):
        delta = "" if index == 0 else f"{report.score - reports[0].score:+.4f}"
        table.add_row(
            report.config,
            _fmt(report.score),
            delta,
            *[_fmt(report.metrics.get(name, float("nan"))) for name in extra_metrics],
            *([str(report.details.get("bytes_per_vector", ""))] if sized else []),
            str(report.n),
            _fmt(float(report.details.get("embed_seconds", float("nan"))), 1),
            _fmt(report.seconds, 1),
            f"{report.tokens_per_second:,.0f}",
            str(report.details.get("truncated_texts", "")),
        )
    return table
