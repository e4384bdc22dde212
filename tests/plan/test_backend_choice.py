"""Backend choice: relative loss by hand, the tolerance rules, and real measurements on the tiny model."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from embedlab.errors import BackendError
from embedlab.eval.task import load_eval_task
from embedlab.plan.backend_choice import (
    BackendMeasurement,
    choose_backend,
    measure_backends,
    relative_loss,
)
from embedlab.settings import EngineSettings

TEXTS = ["the cat sat on the mat", "a dog", "query: cat", "the mat . the dog !", "a b c d e f g"]


def measured(
    name: str, tokens_per_second: float, mean: float = 1.0, low: float = 1.0, **extra: Any
) -> BackendMeasurement:
    return BackendMeasurement(
        name=name, available=True, tokens_per_second=tokens_per_second, agreement_mean=mean, agreement_min=low, **extra
    )


@pytest.mark.parametrize(
    ("reference", "score", "loss"),
    [
        (0.80, 0.76, 0.05),
        (0.80, 0.80, 0.0),
        (0.50, 0.55, -0.1),  # a gain is a negative loss
        (-0.50, -0.60, 0.2),  # a negative reference: lower is still a loss
        (-0.50, -0.40, -0.2),
    ],
)
def test_relative_loss_by_hand(reference: float, score: float, loss: float) -> None:
    assert relative_loss(reference, score) == pytest.approx(loss)


def test_relative_loss_against_a_zero_reference() -> None:
    assert relative_loss(0.0, 0.0) == 0.0
    assert relative_loss(0.0, -0.1) == math.inf
    assert relative_loss(0.0, 0.1) == -math.inf


def test_the_fastest_backend_that_agrees_wins() -> None:
    exact = measured("torch", 1000)
    onnx = measured("onnx", 2000, mean=0.99995, low=0.9998)
    int8 = measured("onnx-int8", 3000, mean=0.995, low=0.97)  # fastest, but agrees too little
    choice = choose_backend([exact, onnx, int8])
    assert choice.recommended == "onnx"
    assert (exact.acceptable, onnx.acceptable, int8.acceptable) == (True, True, False)
    assert choice.reasons[0] == "onnx is the fastest backend within the quality tolerance: 2,000 tokens/s (2.00× torch)"
    assert "mean cosine 0.99995 (tolerance 0.999)" in choice.reasons[1]
    assert (
        choice.reasons[2] == "onnx-int8 is faster (3,000 tokens/s) but agrees only at mean cosine 0.99500 / min 0.97000"
    )


def test_agreement_thresholds() -> None:
    at_mean = measured("onnx", 2000, mean=0.999, low=0.995)  # mean exactly at the tolerance is accepted
    low_min = measured("openvino", 3000, mean=0.9995, low=0.98)  # min below tolerance - 0.01
    choice = choose_backend([measured("torch", 1000), at_mean, low_min])
    assert choice.recommended == "onnx" and not low_min.acceptable
    assert choose_backend([measured("torch", 1000), low_min], min_agreement=0.98).recommended == "openvino"


def test_with_eval_the_task_score_decides_not_the_agreement() -> None:
    exact = measured("torch", 1000, eval_metric="cosine_spearman", eval_score=0.80, eval_loss=0.0)
    bf16 = measured(
        "torch-bf16", 1800, mean=0.99, low=0.95, eval_metric="cosine_spearman", eval_score=0.796, eval_loss=0.005
    )
    int8 = measured(
        "onnx-int8", 2500, mean=0.9999, low=0.9999, eval_metric="cosine_spearman", eval_score=0.78, eval_loss=0.025
    )
    choice = choose_backend([exact, bf16, int8], max_quality_loss=0.01)
    assert choice.recommended == "torch-bf16" and not int8.acceptable
    assert choice.reasons[1] == "its cosine_spearman is 0.7960, a loss of 0.50 % against torch (tolerance 1 %)"
    assert choice.reasons[2] == "onnx-int8 is faster (2,500 tokens/s) but loses 2.50 % cosine_spearman"
    assert choose_backend([exact, bf16, int8], max_quality_loss=0.03).recommended == "onnx-int8"


def test_unavailable_backends_are_skipped_and_the_reference_is_the_fallback() -> None:
    gone = BackendMeasurement(name="openvino", available=False, reason="pip install openvino")
    slow_torch = measured("torch", 1000)
    bad = measured("onnx", 5000, mean=0.5, low=0.1)
    choice = choose_backend([gone, slow_torch, bad])
    assert choice.recommended == "torch"  # nothing faster is acceptable
    assert not gone.acceptable
    assert "1.00× torch" in choice.reasons[0]  # the ratio is to the first backend that ran


def test_no_backend_ran() -> None:
    with pytest.raises(BackendError, match="no backend could run: torch: no GPU; onnx: no runtime"):
        choose_backend(
            [
                BackendMeasurement(name="torch", available=False, reason="no GPU"),
                BackendMeasurement(name="onnx", available=False, reason="no runtime"),
            ]
        )


def test_to_dict_is_every_field() -> None:
    assert measured("torch", 10.0).to_dict()["tokens_per_second"] == 10.0
    assert choose_backend([measured("torch", 10.0)]).to_dict()["recommended"] == "torch"


def test_measuring_torch_and_bf16_on_the_tiny_model(tiny_bert_dir: Path, tmp_path: Path) -> None:
    sts = tmp_path / "sts.csv"
    pairs = [("the cat sat", "the cat sat on the mat", 4.0), ("a dog", "the mat", 0.5), ("cat", "a cat", 4.5)]
    sts.write_text("sentence1,sentence2,score\n" + "\n".join(f"{a},{b},{s}" for a, b, s in pairs) + "\n")
    lines: list[str] = []
    results = measure_backends(
        EngineSettings(model=str(tiny_bert_dir), threads=1),
        TEXTS,
        ["torch-bf16"],  # torch is measured first even when not named: it is the reference
        batch_size=2,
        max_tokens=16,
        long_input="truncate",
        eval_task=load_eval_task(sts),
        log=lines.append,
    )
    exact, bf16 = results
    assert [r.name for r in results] == ["torch", "torch-bf16"] and exact.available and bf16.available
    assert exact.agreement_mean == pytest.approx(1.0, abs=1e-6) and exact.agreement_min == pytest.approx(1.0, abs=1e-6)
    assert bf16.agreement_min is not None and bf16.agreement_mean is not None
    assert 0.9 < bf16.agreement_min <= bf16.agreement_mean <= 1.0 + 1e-6
    assert all(r.tokens_per_second > 0 and r.seconds > 0 for r in results)
    assert exact.texts_per_second == pytest.approx(len(TEXTS) / exact.seconds)
    assert exact.eval_metric == "cosine_spearman" and exact.eval_loss == 0.0
    assert exact.eval_score is not None and bf16.eval_score is not None
    assert bf16.eval_loss == pytest.approx(relative_loss(exact.eval_score, bf16.eval_score))
    assert "backend torch: loading" in lines and "backend torch-bf16: embedding the sample" in lines


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")
def test_a_backend_that_cannot_load_is_reported_unavailable(tiny_bert_dir: Path) -> None:
    settings = EngineSettings(model=str(tiny_bert_dir), device="cuda", threads=1)
    results = measure_backends(settings, TEXTS, ["torch-bf16"], batch_size=None, max_tokens=16, long_input="truncate")
    assert [(r.name, r.available) for r in results] == [("torch", False), ("torch-bf16", False)]
    assert all("no CUDA GPU" in r.reason for r in results)
    with pytest.raises(BackendError, match=r"no backend could run: torch: .*no CUDA GPU"):
        choose_backend(results)
