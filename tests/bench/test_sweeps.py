from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import embedlab
from embedlab.bench.sweeps import (
    SCHEMA,
    BenchPlan,
    BenchSettings,
    base_point,
    parse_int_list,
    parse_name_list,
    plan_points,
    run_bench,
    texts_per_point,
)
from embedlab.errors import ConfigError, DataFileError

POINT_FIELDS = {
    "key",
    "config",
    "texts_per_run",
    "real_tokens_per_run",
    "padded_tokens_per_run",
    "padded_over_real",
    "texts_per_s",
    "real_tokens_per_s",
    "padded_tokens_per_s",
    "latency_ms",
    "peak_rss_mb",
    "rss_growth_mb",
    "time_share",
    "repeats",
    "flops_per_token",
    "achieved_gflops",
    "matmul_peak_gflops",
    "share_of_matmul_peak",
}


def test_every_point_has_every_field(tiny_result: dict[str, Any]) -> None:
    assert tiny_result["schema"] == SCHEMA
    points = tiny_result["points"]
    # 2 backends × (2 batches × 2 lengths + 3 data points: batch 1, 4, auto) + 1 synthetic point
    assert len(points) == 2 * (4 + 3) + 1
    for p in points:
        assert set(p) >= POINT_FIELDS, POINT_FIELDS - set(p)
        assert set(p["config"]) == {"model", "backend", "batch", "seq", "data", "threads"}
        for rate in ("texts_per_s", "real_tokens_per_s", "padded_tokens_per_s"):
            spread = p[rate]
            assert 0 < spread["min"] <= spread["median"] <= spread["max"]
        latency = p["latency_ms"]
        assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"]
        assert p["repeats"]["n"] == 2 and p["repeats"]["warmup"] == 1 and len(p["repeats"]["seconds"]) == 2
        assert set(p["time_share"]) == {"tokenize", "model", "pool", "other"}
        assert sum(p["time_share"].values()) == pytest.approx(1.0, abs=1e-6)
        assert p["time_share"]["model"] > 0
        assert p["peak_rss_mb"] > 10 and 0 <= p["rss_growth_mb"] < p["peak_rss_mb"]
        assert p["flops_per_token"] > 0 and p["achieved_gflops"] > 0 and p["share_of_matmul_peak"] > 0
    assert len({p["key"] for p in points}) == len(points)


def test_tokens_counted_match_the_tokenizer(tiny_result: dict[str, Any], tiny_bert_dir: Path, data_file: Path) -> None:
    model = embedlab.load(str(tiny_bert_dir))
    limit = model.spec.max_tokens
    data_texts = data_file.read_text().splitlines()
    expected_data = int(sum(min(n, limit) for n in model.count_tokens(data_texts)))
    for p in tiny_result["points"]:
        c = p["config"]
        if c["seq"] is not None:
            assert p["real_tokens_per_run"] == p["texts_per_run"] * c["seq"]
        else:
            assert p["texts_per_run"] == len(data_texts)
            assert p["real_tokens_per_run"] == expected_data
        assert p["padded_tokens_per_run"] >= p["real_tokens_per_run"]
        assert p["padded_over_real"] >= 1.0


def test_fixed_length_batches_have_no_padding_and_file_order_batches_do(tiny_result: dict[str, Any]) -> None:
    for p in tiny_result["points"]:
        c = p["config"]
        if c["seq"] is not None:
            assert p["padded_tokens_per_run"] == p["real_tokens_per_run"]
            assert p["texts_per_run"] % c["batch"] == 0
    data = {(p["config"]["backend"], p["config"]["batch"]): p for p in tiny_result["points"] if p["config"]["data"]}
    assert data[("torch", 1)]["padded_over_real"] == 1.0  # one text per batch: nothing to pad
    assert data[("torch", 4)]["padded_over_real"] > 1.05  # mixed lengths in file order waste padding
    assert data[("torch", None)]["padded_over_real"] >= 1.0  # the engine's own batching, whatever it pads


def test_synthetic_point_and_model_facts(tiny_result: dict[str, Any]) -> None:
    synthetic = [p for p in tiny_result["points"] if "synthetic" in p]
    assert len(synthetic) == 1
    shape = synthetic[0]["synthetic"]
    assert shape["hidden"] == 16 and shape["layers"] == 1 and shape["params"] > 0
    assert synthetic[0]["config"]["batch"] == 4 and synthetic[0]["config"]["seq"] == 16  # the base point
    model = tiny_result["model"]
    assert model["max_tokens"] == 64 and model["flops"]["linear_per_token"] > 0
    assert set(tiny_result["machine"]["matmul_peak_gflops"]) == {"1"}


def test_cache_point_is_measured_or_skipped_with_a_reason(tiny_result: dict[str, Any]) -> None:
    cache = tiny_result["cache"]
    try:
        import embedlab.engine.cache  # noqa: F401
    except ImportError:
        assert cache["status"] == "skipped" and "cache" in cache["reason"]
        assert any("cache point skipped" in n for n in tiny_result["notes"])
    else:
        assert cache["status"] == "measured"
        assert cache["hits"] == cache["texts"] == 16
        assert cache["ratio"] > 0


def test_progress_counts_every_run(tiny_result: dict[str, Any]) -> None:
    progress = tiny_result["_progress"]
    total = len(tiny_result["points"]) * 3
    assert [done for _, done, _ in progress] == list(range(1, total + 1))
    assert all(t == total for _, _, t in progress)


def test_plan_points_and_base_point(tiny_bert_dir: Path) -> None:
    spec = embedlab.load_spec(str(tiny_bert_dir))
    plan = BenchPlan(batches=(1, 8, 64), seqs=(16, 200, 64), backends=("torch", "onnx"), threads=(1, 2))
    assert base_point(plan) == (8, 64)
    points = plan_points(plan, spec, ["synthetic-x"])
    assert len(points) == 2 * 2 * 3 * 3 + 1
    assert points[-1].model == "synthetic-x" and points[-1].threads == 2 and points[-1].backend == "torch"
    assert texts_per_point(batch=4, seq=10, tokens_per_run=100) == 12
    assert texts_per_point(batch=128, seq=256, tokens_per_run=100) == 128


@pytest.mark.parametrize(
    ("text", "message"),
    [("0,8", "at least 1"), ("-4", "at least 1"), ("1,x", "whole numbers"), ("", "at least one")],
)
def test_bad_int_lists_are_named(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_int_list(text, "--batch")
    assert "--batch" in str(info.value)


def test_unknown_backend_is_named() -> None:
    assert parse_name_list("torch, onnx,torch") == ("torch", "onnx")
    with pytest.raises(ConfigError, match="unknown backend 'tensorrt'; choose from torch"):
        parse_name_list("torch,tensorrt")


def test_bad_plans_fail_before_loading(tiny_bert_dir: Path, tmp_path: Path) -> None:
    model = str(tiny_bert_dir)
    with pytest.raises(ConfigError, match=r"sequence length 65 is above the limit of .* 64 tokens"):
        run_bench(BenchPlan(model=model, seqs=(16, 65)))
    with pytest.raises(ConfigError, match="batch size must be at least 1, got 0"):
        run_bench(BenchPlan(model=model, batches=(0,), seqs=(16,)))
    with pytest.raises(ConfigError, match="unknown backend 'tpu'"):
        run_bench(BenchPlan(model=model, seqs=(16,), backends=("tpu",)))
    with pytest.raises(ConfigError, match="threads must be at least 1"):
        run_bench(BenchPlan(model=model, seqs=(16,), threads=(0,)))
    with pytest.raises(ConfigError, match="nothing to measure"):
        run_bench(BenchPlan(model=model, seqs=()))
    with pytest.raises(DataFileError):
        run_bench(BenchPlan(model=model, data=tmp_path / "missing.txt", settings=BenchSettings(repeat=1)))


def test_bench_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDLAB_BENCH_REPEAT", "7")
    assert BenchSettings().repeat == 7
    monkeypatch.setenv("EMBEDLAB_BENCH_REPEAT", "0")
    with pytest.raises(ValueError, match="repeat"):
        BenchSettings()
