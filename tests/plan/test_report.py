"""Plan outputs: the report's tables from a plan built of known numbers, its JSON and its files."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from embedlab.errors import OutputError
from embedlab.inspect.report import Section
from embedlab.models.spec import ModelSpec
from embedlab.plan.backend_choice import BackendMeasurement, choose_backend
from embedlab.plan.batch import BatchMeasurement, choose_batch
from embedlab.plan.cost import job_cost
from embedlab.plan.dimensions import DimensionQuality, choose_dimensions
from embedlab.plan.lengths import length_stats, recommend_max_tokens
from embedlab.plan.planner import PlanReport
from embedlab.plan.report import plan_json, plan_sections, write_plan_outputs
from embedlab.plan.storage import StorageOption, choose_storage

MiB = 2**20


def batch(size: int, peak_mib: int, tokens_per_second: float, latency_s: float) -> BatchMeasurement:
    return BatchMeasurement(
        batch_size=size,
        texts=100,
        tokens=2000,
        batches=1,
        seconds=1.0,
        texts_per_second=100.0 * size / 16,
        tokens_per_second=tokens_per_second,
        worst_case_seq_len=256,
        worst_case_latency_s=latency_s,
        peak_rss_bytes=peak_mib * MiB,
        rss_before_bytes=300 * MiB,
    )


@pytest.fixture
def report(tmp_path: Path) -> PlanReport:
    """100 texts: 95 of 10 tokens, 5 of 300 over the 256 limit (5 %: chunk); onnx fastest; b=16 fits 600 MiB."""
    spec = ModelSpec(
        name="test/model",
        path=tmp_path,
        source="local",
        dim=384,
        hidden_size=384,
        max_tokens=256,
        max_position_embeddings=512,
        pooling="mean",
        include_prompt=True,
        normalize=True,
    )
    lengths = np.array([10] * 95 + [300] * 5, dtype=np.int64)
    advice = recommend_max_tokens(lengths, 256)
    backends = [
        BackendMeasurement("torch", True, tokens_per_second=1000, agreement_mean=1.0, agreement_min=1.0),
        BackendMeasurement("onnx", True, tokens_per_second=2500, agreement_mean=0.99999, agreement_min=0.9999),
        BackendMeasurement("openvino", False, reason="the openvino backend needs OpenVINO: pip install openvino"),
    ]
    batches = [batch(1, 400, 800, 0.005), batch(16, 420, 2600, 0.04), batch(64, 700, 3000, 0.3)]
    measured = [
        DimensionQuality(384, "cosine_spearman", 0.8, 0.0),
        DimensionQuality(192, "cosine_spearman", 0.798, 0.0025),
    ]
    return PlanReport(
        spec=spec,
        data=tmp_path / "texts.txt",
        texts=100,
        skipped=2,
        lengths=lengths,
        stats=length_stats(lengths, 256),
        advice=advice,
        backends=backends,
        backend_choice=choose_backend(backends),
        batches=batches,
        batch_choice=choose_batch(batches, 600 * MiB, "--memory-budget", 0.1, 0.1),
        dimension_choice=choose_dimensions(384, measured, 0.01),
        storage=choose_storage(
            [
                StorageOption("test/model", 384, "float32", 1536, 0.8, "cosine_spearman", "plan"),
                StorageOption("test/model", 384, "binary", 48, 0.7, "cosine_spearman", "plan"),
                StorageOption("test/model", 192, "float32", 768, 0.798, "cosine_spearman", "plan"),
                StorageOption("test/model", 192, "binary", 24, 0.6, "cosine_spearman", "plan"),
            ],
            100,
            100_000,
        ),
        cost=job_cost(100, advice.tokens_embedded, 2600, 192),
        settings={"model": "test/model", "backend": "onnx", "max_batch_size": 16, "max_tokens": 256},
        sample_size=64,
        notes=["a caveat"],
    )


def section(sections: list[Section], prefix: str) -> Section:
    return next(s for s in sections if s.title.startswith(prefix))


def rows(s: Section) -> dict[str, list[str]]:
    return {row[0]: row[1:] for row in s.rows}


def test_sections_in_display_order(report: PlanReport) -> None:
    titles = [s.title for s in plan_sections(report)]
    assert titles == [
        "Token lengths",
        "Max tokens",
        "Backends (sample of 64 texts)",
        "Batch sizes (onnx, fresh process, worst case b × 256 tokens)",
        "Dimensions",
        "Storage: model × dimension × precision (budget 97.7 KiB for 100 vectors)",
        "Cost of the whole file",
        "Recommended settings",
    ]
    assert all(not s.images for s in plan_sections(report))  # images only when asked for


def test_length_and_max_tokens_tables(report: PlanReport) -> None:
    sections = plan_sections(report)
    lengths = rows(section(sections, "Token lengths"))
    assert lengths["texts"] == ["100"] and lengths["total tokens"] == ["2,450"]  # 95 × 10 + 5 × 300
    assert lengths["mean"] == ["24.5"] and lengths["p50"] == ["10"] and lengths["p99"] == ["300"]
    assert lengths["texts over the limit"] == ["5 (5.00 %)"]
    assert lengths["tokens truncation would drop"] == ["220 (8.98 %)"]  # 5 × 44 of 2,450
    advice = rows(section(sections, "Max tokens"))
    assert advice["recommended max tokens"] == ["256"] and advice["long-input policy"] == ["chunk"]
    assert advice["texts truncated at it"] == ["0 (0.00 %)"]
    assert advice["sequences to embed"] == [str(report.advice.segments)]


def test_backend_table(report: PlanReport) -> None:
    backends = section(plan_sections(report), "Backends")
    assert backends.rows == [
        ["torch", "1,000", "1.00×", "1.00000 / 1.00000", "-", "yes", "load 0.0 s"],
        ["onnx ✓", "2,500", "2.50×", "0.99999 / 0.99990", "-", "yes", "load 0.0 s"],
        ["openvino", "unavailable", "-", "-", "-", "-", "the openvino backend needs OpenVINO: pip install openvino"],
    ]
    assert backends.notes == report.backend_choice.reasons


def test_batch_table(report: PlanReport) -> None:
    batches = section(plan_sections(report), "Batch sizes")
    assert batches.rows == [
        ["1", "6.2", "800", "5.0 ms", "400.0 MiB", "100.0 MiB", "yes"],
        ["16 ✓", "100.0", "2,600", "40.0 ms", "420.0 MiB", "120.0 MiB", "yes"],
        ["64", "400.0", "3,000", "300.0 ms", "700.0 MiB", "400.0 MiB", "no"],  # 770 MiB with margin > 600
    ]
    assert batches.notes[0] == "Memory budget: 600.0 MiB (--memory-budget), safety margin 10 %, latency target 100 ms"
    assert batches.notes[1] == "Largest fitting: 16; fastest fitting: 16; recommended: 16."


def test_storage_table(report: PlanReport) -> None:
    storage = section(plan_sections(report), "Storage")
    assert storage.rows == [
        ["model", "384", "float32", "1,536", "150.0 KiB", "0.8000", "-", "no"],  # 100 × 1536 B > 100,000 B
        ["model", "384", "binary", "48", "4.7 KiB", "0.7000", "-0.1000", "yes"],
        ["model ✓", "192", "float32", "768", "75.0 KiB", "0.7980", "-", "yes"],
        ["model", "192", "binary", "24", "2.3 KiB", "0.6000", "-0.1980", "yes"],
    ]
    assert storage.notes[0] == "Recommended: test/model, d=192, float32."
    stored = json.loads(plan_json(report))["storage"]
    assert stored["recommended"]["dimensions"] == 192 and stored["budget_bytes"] == 100_000
    assert [o["fits"] for o in stored["options"]] == [False, True, True, True]


def test_dimension_and_cost_tables(report: PlanReport) -> None:
    sections = plan_sections(report)
    dims = section(sections, "Dimensions")
    assert dims.rows == [
        ["384", "cosine_spearman", "0.8000", "0.00 %"],
        ["192 ✓", "cosine_spearman", "0.7980", "0.25 %"],
    ]
    cost = rows(section(sections, "Cost of the whole file"))
    assert cost["texts (one vector each)"] == ["100"]
    assert cost["measured rate"] == ["2,600 tokens/s"]
    assert cost["storage float32 (192 dims)"] == ["75.0 KiB"]  # 100 × 192 × 4 B
    assert cost["storage float16 (192 dims)"] == ["37.5 KiB"]
    assert cost["storage int8 (192 dims)"] == ["18.8 KiB"]
    assert cost["storage binary (192 dims)"] == ["2.3 KiB"]  # 100 × 24 B
    recommended = section(sections, "Recommended settings")
    assert recommended.rows == [
        ["model", "test/model"],
        ["backend", "onnx"],
        ["max_batch_size", "16"],
        ["max_tokens", "256"],
    ]
    assert recommended.notes[0] == "a caveat"


@pytest.mark.parametrize(
    ("tokens", "rate", "shown"),
    [(9_000, 100.0, "90.0 s"), (11_990, 100.0, "119.9 s"), (12_000, 100.0, "2.0 min"), (60_000, 100.0, "10.0 min"),
     (1_080_000, 100.0, "3.0 h"), (1_000, 0.0, "-")],
)  # fmt: skip
def test_estimated_time_units(report: PlanReport, tokens: int, rate: float, shown: str) -> None:
    timed = replace(report, cost=job_cost(100, tokens, rate, 384))
    assert rows(section(plan_sections(timed), "Cost of the whole file"))["estimated time"] == [shown]


def test_plan_json_writes_non_finite_numbers_as_null(report: PlanReport) -> None:
    report.backends[1].eval_score = math.nan
    unknown = replace(report, cost=job_cost(100, 1000, 0.0, 384))
    plan = json.loads(plan_json(unknown))  # strict JSON: NaN / Infinity would not load in most parsers
    assert "NaN" not in plan_json(unknown) and "Infinity" not in plan_json(unknown)
    assert plan["cost"]["seconds"] is None and plan["backends"][1]["eval_score"] is None
    assert plan["model"] == "test/model" and plan["skipped_empty"] == 2
    assert plan["lengths"]["percentiles"] == {"p50": 10, "p90": 10, "p95": 10, "p99": 300}
    assert sum(plan["lengths"]["histogram"]["counts"]) == 100
    assert plan["batch_choice"]["fitting"] == [1, 16] and plan["batch_sizes"][2]["batch_bytes"] == 400 * MiB
    assert plan["dimensions"]["recommended"] == 192 and plan["settings"] == unknown.settings


def test_written_files(report: PlanReport, tmp_path: Path) -> None:
    out = write_plan_outputs(report, tmp_path / "deep" / "plan")
    assert json.loads(out.settings_json.read_text()) == report.settings
    assert json.loads(out.plan_json.read_text()) == json.loads(plan_json(report))
    assert out.lengths_png.read_bytes().startswith(b"\x89PNG") and out.batches_png.read_bytes().startswith(b"\x89PNG")
    page = out.report_html.read_text()
    assert "<title>embedlab plan: test/model on texts.txt</title>" in page
    assert page.count("data:image/png;base64,") == 2


def test_an_unwritable_directory_is_an_output_error(report: PlanReport, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(OutputError, match="cannot write the plan into"):
        write_plan_outputs(report, blocker)
