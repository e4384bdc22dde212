"""EvalReport JSON and the comparison table."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from embedlab.eval.report import EvalReport, comparison_to_dict, metric_title, report_table


def _report(config: str, score: float) -> EvalReport:
    return EvalReport(
        task="retrieval",
        model="m/x",
        config=config,
        metric="ndcg_at_10",
        score=score,
        n=30,
        seconds=2.0,
        tokens_per_second=1234.5,
        metrics={"ndcg_at_10": score, "map_at_10": float("nan")},
        details={"data": "d", "embed_seconds": 1.5, "truncated_texts": 3},
    )


def test_to_json_is_one_object_with_the_documented_keys() -> None:
    data = json.loads(_report("default", 0.5).to_json())
    for key in ("task", "model", "config", "metric", "score", "n", "seconds", "tokens_per_second", "metrics"):
        assert key in data
    assert data["metrics"]["map_at_10"] is None  # NaN is not JSON


def test_comparison_has_deltas_against_the_first_row() -> None:
    data = comparison_to_dict([_report("default", 0.5), _report("backend=onnx", 0.45)])
    assert data["baseline"] == "default" and data["metric"] == "ndcg_at_10"
    assert [row["delta"] for row in data["results"]] == [0.0, pytest.approx(-0.05)]
    json.dumps(data)


def test_table_lists_configurations_scores_and_deltas() -> None:
    console = Console(record=True, width=200)
    console.print(report_table([_report("default", 0.5), _report("backend=onnx", 0.45)], ["map_at_10"]))
    text = console.export_text()
    assert "nDCG@10" in text and "MAP@10" in text and "tok/s" in text
    assert "backend=onnx" in text and "-0.0500" in text and "1,234" in text


def test_metric_titles() -> None:
    assert metric_title("recall_at_100") == "R@100"
    assert metric_title("cosine_spearman") == "Spearman"
    assert metric_title("other") == "other"


def test_table_shows_bytes_per_vector_when_the_reports_carry_it() -> None:
    sized = _report("precision=binary,rescore=100", 0.6)
    sized.details["bytes_per_vector"] = 48
    console = Console(record=True, width=220)
    console.print(report_table([_report("precision=float32", 0.64), sized]))
    text = console.export_text()
    assert "bytes/vec" in text and "48" in text and "-0.0400" in text
    console = Console(record=True, width=220)
    console.print(report_table([_report("default", 0.5)]))
    assert "bytes/vec" not in console.export_text()
