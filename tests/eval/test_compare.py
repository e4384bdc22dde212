"""Configuration parsing, and compare() on a tiny real model: order, labels, one runtime per backend."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import embedlab.backends
from embedlab.errors import ConfigError
from embedlab.eval.compare import compare, config_label, parse_config
from embedlab.eval.report import EvalReport
from embedlab.eval.sts import StsData, evaluate_sts, evaluate_sts_by_precision
from embedlab.settings import EngineSettings


def test_parse_config_types_values() -> None:
    parsed = parse_config("backend=onnx, max_tokens=128,dimensions=256,long-input=chunk,threads=2")
    assert parsed == {"backend": "onnx", "max_tokens": 128, "dimensions": 256, "long_input": "chunk", "threads": 2}
    assert parse_config("") == {}
    assert parse_config("device=cuda:1,max_batch_tokens=4096") == {"device": "cuda:1", "max_batch_tokens": 4096}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("backend", "is not key=value"),
        ("colour=red", "unknown configuration key 'colour'"),
        ("max_tokens=many", "max_tokens must be a whole number"),
        ("dimensions=0", "dimensions must be ≥ 1"),
        ("backend=tensorrt", "unknown backend 'tensorrt'; choose one of auto, torch"),
        ("long_input=drop", "unknown long_input 'drop'"),
        ("threads=1,threads=2", "given twice"),
    ],
)
def test_parse_config_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(text)


def test_auto_backend_is_accepted() -> None:
    assert parse_config("backend=auto") == {"backend": "auto"}


def test_backends_are_read_from_the_registry_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedlab.backends, "BACKENDS", (*embedlab.backends.BACKENDS, "onnx-int8"))
    assert parse_config("backend=onnx-int8") == {"backend": "onnx-int8"}


def test_config_label_is_canonical() -> None:
    assert config_label({"max_tokens": 64, "backend": "onnx"}) == "backend=onnx,max_tokens=64"
    assert config_label({}) == "default"


PAIRS = StsData(
    ["the cat sat on the mat", "a dog", "the cat", "stock markets", "abc def ghi"],
    ["the cat sat on a mat", "a cat", "stock prices", "markets fell", "abc def"],
    np.array([5.0, 3.0, 0.5, 3.5, 4.0]),
    "hand-made",
)


def test_compare_runs_each_configuration_and_shares_runtimes(make_tiny_bert: Callable[..., Path]) -> None:
    model = str(make_tiny_bert())
    runtimes: dict[str, int] = {}

    def task(embedder: Any, config_label: str) -> EvalReport:
        runtimes[config_label] = id(embedder.backend)
        return evaluate_sts(embedder, PAIRS, config_label)

    seen: list[str] = []
    reports = compare(
        task,
        model,
        ["", "backend=onnx", {"max_tokens": 5}, "dimensions=8", "backend=onnx,dimensions=8"],
        base=EngineSettings(backend="torch", threads=1),
        on_result=lambda r: seen.append(r.config),
    )
    # labels name the configuration plus what the base changes from the defaults
    labels = [
        "backend=torch,threads=1",
        "backend=onnx,threads=1",
        "backend=torch,threads=1,max_tokens=5",
        "backend=torch,threads=1,dimensions=8",
        "backend=onnx,threads=1,dimensions=8",
    ]
    assert [r.config for r in reports] == labels
    assert sorted(seen) == sorted(labels)
    assert [r.details["settings"]["backend"] for r in reports] == ["torch", "onnx", "torch", "torch", "onnx"]
    first, onnx, cut, narrow, onnx_narrow = labels
    assert runtimes[first] == runtimes[cut] == runtimes[narrow]
    assert runtimes[onnx] == runtimes[onnx_narrow] != runtimes[first]
    assert reports[2].details["settings"]["max_tokens"] == 5 and reports[2].details["truncated_texts"] > 0
    assert reports[3].details["settings"]["dimensions"] == 8
    # the same model on two runtimes scores the same
    assert reports[1].score == pytest.approx(reports[0].score, abs=1e-6)


def test_compare_validates_every_configuration_first(make_tiny_bert: Callable[..., Path]) -> None:
    calls: list[str] = []
    task = functools.partial(evaluate_sts, data=PAIRS)

    def counting(embedder: Any, config_label: str) -> EvalReport:
        calls.append(config_label)
        return task(embedder, config_label=config_label)

    with pytest.raises(ConfigError, match="unknown configuration key"):
        compare(counting, str(make_tiny_bert()), ["", "speed=fast"])
    with pytest.raises(ConfigError, match="at least one configuration"):
        compare(counting, str(make_tiny_bert()), [])
    with pytest.raises(ConfigError, match="unknown configuration key"):
        compare(counting, str(make_tiny_bert()), [{"speed": "fast"}])
    assert calls == []


def test_compare_keeps_the_rows_of_a_task_that_scores_several_precisions(make_tiny_bert: Callable[..., Path]) -> None:
    task = functools.partial(evaluate_sts_by_precision, data=PAIRS, precisions=["float32", "binary"])
    seen: list[str] = []
    reports = compare(
        task,
        str(make_tiny_bert()),
        ["", "dimensions=8"],
        base=EngineSettings(backend="torch", threads=1),
        on_result=lambda r: seen.append(r.config),
    )
    labels = [
        "backend=torch,threads=1,precision=float32",
        "backend=torch,threads=1,precision=binary",
        "backend=torch,threads=1,dimensions=8,precision=float32",
        "backend=torch,threads=1,dimensions=8,precision=binary",
    ]
    assert [r.config for r in reports] == labels and seen == labels
    assert [r.details["bytes_per_vector"] for r in reports] == [128, 4, 32, 1]
