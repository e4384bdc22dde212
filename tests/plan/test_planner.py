"""``make_plan`` on the tiny model: each step's answer feeds the next, and bad options fail before any work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from embedlab.errors import ConfigError
from embedlab.plan.planner import PlanOptions, PlanReport, count_embedded, make_plan
from embedlab.settings import EngineSettings


def words(n: int) -> str:
    """n one-letter words: exactly n + 2 tokens with the tiny model's tokenizer."""
    return " ".join("abcdefghij"[i % 10] for i in range(n))


# 18 short texts and 2 over the tiny model's 64-token limit (10 % > the 1 % threshold: chunk), one empty line
TEXTS = [words(n) for n in range(1, 19)] + [words(100), words(120)]


@pytest.fixture(scope="module")
def planned(tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[PlanReport, list[str]]:
    data = tmp_path_factory.mktemp("plan") / "texts.txt"
    data.write_text("\n".join([*TEXTS[:5], "", *TEXTS[5:]]) + "\n")
    lines: list[str] = []
    options = PlanOptions(
        data=data, skip_empty=True, memory_budget=64 * 2**30, batch_sizes=[1, 4], sample_size=3, backends=["torch"]
    )
    report = make_plan(EngineSettings(model=str(tiny_bert_dir), threads=1), options, log=lines.append)
    return report, lines


def test_lengths_and_the_chunk_advice(planned: tuple[PlanReport, list[str]]) -> None:
    report, _ = planned
    assert (report.texts, report.skipped) == (20, 1)
    assert report.lengths.tolist() == [n + 2 for n in range(1, 19)] + [102, 122]
    assert report.stats.texts_over_limit == 2 and report.stats.tokens_over_limit == (102 - 64) + (122 - 64)
    assert (report.advice.max_tokens, report.advice.long_input) == (64, "chunk")


def test_the_embedded_count_is_the_engines(planned: tuple[PlanReport, list[str]], tiny_bert_dir: Path) -> None:
    import embedlab

    report, _ = planned
    embedder = embedlab.load(str(tiny_bert_dir), backend="torch", threads=1)
    segments, tokens = count_embedded(embedder, TEXTS, 64, "chunk")
    assert (report.advice.segments, report.advice.tokens_embedded) == (segments, tokens)
    assert segments > 20  # the two long texts became several windows


def test_backend_batch_and_cost_follow_from_the_measurements(planned: tuple[PlanReport, list[str]]) -> None:
    report, lines = planned
    assert [m.name for m in report.backends] == ["torch"] and report.backend_choice.recommended == "torch"
    assert [m.batch_size for m in report.batches] == [1, 4]
    chosen = report.batch_choice.recommended
    assert chosen in (1, 4) and report.batch_choice.fitting == [1, 4]  # 64 GiB holds both
    rate = next(m.tokens_per_second for m in report.batches if m.batch_size == chosen)
    assert report.cost.tokens == report.advice.tokens_embedded and report.cost.tokens_per_second == rate
    assert report.cost.seconds == pytest.approx(report.cost.tokens / rate)
    assert report.cost.texts == 20 and report.cost.dimensions == 32  # no --eval: the full dimension
    assert report.cost.storage_bytes["float32"] == 20 * 32 * 4
    assert report.sample_size == 3 and report.eval_source is None
    assert report.notes == ["the sample holds 3 texts; batch sizes above that were measured on the sample repeated"]
    assert lines[0] == "counting tokens" and "batch sizes [1, 4] on torch, in a fresh process" in lines


def test_the_settings_file_holds_the_choices_and_loads_back(planned: tuple[PlanReport, list[str]]) -> None:
    report, _ = planned
    chosen = report.batch_choice.recommended
    assert chosen is not None
    assert report.settings == {
        "model": report.spec.name,
        "backend": "torch",
        "device": "cpu",
        "max_batch_size": chosen,
        "max_batch_tokens": chosen * 64,
        "max_tokens": 64,
        "long_input": "chunk",
        "chunk_overlap": EngineSettings().chunk_overlap,  # chunking: the overlap the count assumed
        "threads": 1,
    }
    loaded = EngineSettings(**report.settings)
    assert (loaded.max_tokens, loaded.long_input, loaded.max_batch_tokens) == (64, "chunk", chosen * 64)
    assert report.to_dict()["settings"] == report.settings


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sample_size": 0}, "sample size must be at least 1, got 0"),
        ({"batch_sizes": []}, "batch sizes must be at least 1, got []"),
        ({"batch_sizes": [4, 0]}, "batch sizes must be at least 1, got [4, 0]"),
        ({"target_latency_ms": 0.0}, "target latency must be positive, got 0.0 ms"),
        ({"max_quality_loss": 1.0}, "max quality loss must be in [0, 1), got 1.0"),
        ({"max_quality_loss": -0.01}, "max quality loss must be in [0, 1), got -0.01"),
        ({"coverage": 1.5}, "coverage must be in (0, 1], got 1.5"),
        ({"chunk_threshold": 1.1}, "chunk threshold must be in [0, 1], got 1.1"),
        ({"memory_margin": -0.1}, "memory margin must be ≥ 0, got -0.1"),
        ({"backends": ["torch", "tpu", "npu"]}, "unknown backend(s) tpu, npu; choose from torch, "),
    ],
)
def test_bad_options_fail_before_any_work(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    options = PlanOptions(data=tmp_path / "never-read.txt", **change)  # checked before the file is opened
    with pytest.raises(ConfigError) as caught:
        make_plan(EngineSettings(model=str(tmp_path / "never-loaded")), options)
    assert message in str(caught.value)


def test_storage_budget_picks_the_best_scored_option_that_fits(
    tiny_bert_dir: Path, tmp_path: Path, sts_file: Path
) -> None:
    """With --eval, every (dimension, precision) of the grid is scored; a compare result's model competes."""
    import json

    data = tmp_path / "texts.txt"
    data.write_text("\n".join(TEXTS) + "\n")
    other = {
        "metric": "cosine_spearman",
        "data": str(sts_file),
        "models": [
            {
                "name": "other/model",
                "options": [
                    {"dimensions": 8, "precision": "float32", "bytes_per_vector": 32, "score": 0.99},
                    {"dimensions": 8, "precision": "binary", "bytes_per_vector": 1, "score": -0.5},
                ],
            }
        ],
    }
    compared = tmp_path / "compare.json"
    compared.write_text(json.dumps(other))
    common = {"data": data, "memory_budget": 64 * 2**30, "batch_sizes": [1], "sample_size": 3, "backends": ["torch"]}
    settings = EngineSettings(model=str(tiny_bert_dir), threads=1)
    budget = 20 * 70  # 70 bytes a vector: float16 of the 32 dims fits (64 B), float32 (128 B) does not
    report = make_plan(
        settings,
        PlanOptions(**common, eval_path=sts_file, storage_budget=budget, precisions=["float32", "float16", "binary"]),
    )
    storage = report.storage
    own = [o for o in storage.options if o.model == report.spec.name]
    assert [(o.dimensions, o.precision) for o in own] == [(32, "float32"), (32, "float16"), (32, "binary")]
    assert all(o.score is not None and o.metric == "cosine_spearman" for o in own)
    fitting = [o for o in own if o.total_bytes(20) <= budget]
    best_own = max(fitting, key=lambda o: (o.score, -o.bytes_per_vector))
    assert storage.recommended == best_own  # without a compare file
    assert best_own.precision != "float32" and own[0] not in storage.fitting
    assert f"embed with --precision {best_own.precision}" in " ".join(report.notes)  # the budget's choice, said
    with_other = make_plan(
        settings,
        PlanOptions(**common, eval_path=sts_file, storage_budget=budget, compare_path=compared),
    )
    assert with_other.storage.recommended is not None
    assert (with_other.storage.recommended.model, with_other.storage.recommended.score) == ("other/model", 0.99)
    assert "the storage budget chose another model, other/model" in " ".join(with_other.notes)
    assert with_other.settings["model"] == report.spec.name  # the settings stay those of the model planned
    elsewhere = tmp_path / "other.tsv"
    elsewhere.write_text(sts_file.read_text())
    with pytest.raises(ConfigError, match="scores of different data cannot be ranked together"):
        make_plan(settings, PlanOptions(**common, eval_path=elsewhere, compare_path=compared))
    with pytest.raises(ConfigError, match=r"--eval is .* \(first 10\): scores of different data"):
        make_plan(settings, PlanOptions(**common, eval_path=sts_file, eval_limit=10, compare_path=compared))
