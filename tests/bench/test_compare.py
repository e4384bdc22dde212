from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from embedlab.bench.compare import compare_results, load_result
from embedlab.errors import DataFileError


def test_compare_two_result_files(tiny_result: dict[str, Any], tmp_path: Path) -> None:
    a = {k: v for k, v in tiny_result.items() if not k.startswith("_")}
    b = copy.deepcopy(a)
    for p in b["points"]:
        p["real_tokens_per_s"]["median"] *= 2
        p["latency_ms"]["p50"] /= 4
    dropped = b["points"].pop()
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    comparison = compare_results(load_result(tmp_path / "a.json"), load_result(tmp_path / "b.json"))
    assert len(comparison.points) == len(a["points"]) - 1
    assert all(p.throughput_ratio == pytest.approx(2.0) for p in comparison.points)
    assert all(p.latency_ratio == pytest.approx(4.0) for p in comparison.points)
    assert comparison.only_a == [dropped["key"]] and comparison.only_b == []
    assert comparison.geometric_mean_throughput == pytest.approx(2.0)
    assert comparison.to_dict()["geometric_mean_throughput_ratio"] == pytest.approx(2.0)


def test_bad_result_files(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="cannot read bench result"):
        load_result(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataFileError, match="not valid JSON"):
        load_result(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text(json.dumps({"points": []}))
    with pytest.raises(DataFileError, match="not an embedlab bench result"):
        load_result(tmp_path / "other.json")
    (tmp_path / "short.json").write_text(json.dumps({"schema": "embedlab-bench/1", "points": [{"key": "x"}]}))
    with pytest.raises(DataFileError, match="point 0 lacks texts_per_s"):
        load_result(tmp_path / "short.json")
