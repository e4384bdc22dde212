"""compare_models on real tiny models, each measured in its own process, with real data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from embedlab.compare.pareto import Option, pareto_front
from embedlab.compare.runner import CompareOptions, compare_models
from embedlab.errors import ConfigError, DataFileError, ModelLoadError, ModelNotFoundError


@pytest.fixture(scope="module")
def two_models(make_tiny_bert: Callable[..., Path]) -> tuple[Path, Path]:
    return make_tiny_bert(), make_tiny_bert(hidden=64, layers=3, heads=4, intermediate=128, seed=1)


def _options(models: list[str], **given: object) -> CompareOptions:
    defaults: dict[str, object] = {"backends": ["onnx"], "sample": 20, "rounds": 1, "queries": 5}
    return CompareOptions(models=models, **{**defaults, **given})  # type: ignore[arg-type]


def test_each_model_is_measured_on_the_texts_with_its_own_facts(
    two_models: tuple[Path, Path], texts_file: Path, sts_file: Path
) -> None:
    small, large = two_models
    report = compare_models(_options([str(small), str(large)], texts=texts_file, data=sts_file, dimensions=[16]))
    assert [r.facts.name for r in report.results] == [str(small.resolve()), str(large.resolve())]
    assert [r.facts.dim for r in report.results] == [32, 64]
    assert report.metric == "cosine_spearman" and report.texts_count == 30 and not report.failures
    # text i has 12 + 4i tokens; the tiny models' limit is 64: texts 14..29 are over it
    lengths = np.array([12 + 4 * i for i in range(30)])
    for result in report.results:
        measured = result.measured
        assert measured["backend"] == "onnx"
        assert measured["truncated_texts"] == int((lengths > 64).sum()) == 16
        assert measured["tokens_lost"] == int((lengths[lengths > 64] - 64).sum())
        assert measured["tokens_per_s"] > 0 and measured["query_p50_ms"] > 0 and measured["queries"] == 5
        assert measured["peak_rss_bytes"] >= measured["rss_after_load_bytes"] > 0
        # the full size and the 16 asked for, every precision, each scored
        assert {(q.dimensions, q.precision) for q in result.quality} == {
            (d, p) for d in (result.facts.dim, 16) for p in report.precisions
        }
        assert all(-1 <= q.score <= 1 for q in result.quality)
        assert {o["bytes_per_vector"] for o in result.options if o["dimensions"] == 16} == {64, 32, 16, 2}


def test_pareto_marks_equal_a_front_recomputed_over_all_options(two_models: tuple[Path, Path], sts_file: Path) -> None:
    report = compare_models(_options([str(p) for p in two_models], data=sts_file, precisions=["float32", "binary"]))
    options = [o for r in report.results for o in r.options]
    expected = pareto_front([Option(o["score"], o["tokens_per_s"], o["bytes_per_vector"]) for o in options])
    assert [o["pareto"] for o in options] == expected
    assert any(expected)
    assert [r.pareto for r in report.results] == [any(o["pareto"] for o in r.options) for r in report.results]


def test_the_score_is_the_evals_own(two_models: tuple[Path, Path], beir_dir: Path) -> None:
    import embedlab
    from embedlab.eval import evaluate_retrieval, load_beir

    small = two_models[0]
    report = compare_models(_options([str(small)], data=beir_dir, precisions=["float32"]))
    expected = evaluate_retrieval(embedlab.load(str(small), backend="onnx"), load_beir(beir_dir))
    assert report.metric == "ndcg_at_10"
    assert report.results[0].score() == pytest.approx(expected.score, abs=1e-6)
    assert report.texts_count == 46  # 40 documents and 6 queries


def test_an_unknown_model_stops_everything_unless_keep_going(
    two_models: tuple[Path, Path], texts_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    small = str(two_models[0])
    with pytest.raises(ModelNotFoundError, match="tried: local directory"):
        compare_models(_options([small, "nobody/no-such-model"], texts=texts_file))
    report = compare_models(_options([small, "nobody/no-such-model"], texts=texts_file, keep_going=True))
    assert len(report.results) == 1 and report.results[0].facts.name.endswith(Path(small).name)
    [(name, backend, error)] = report.failures
    assert (name, backend) == ("nobody/no-such-model", None)
    assert "hub download skipped (HF_HUB_OFFLINE is set)" in error


def test_a_model_with_modules_embedlab_cannot_run_is_refused_by_name(tmp_path: Path, texts_file: Path) -> None:
    import json
    import shutil

    from tinymodel import build_tiny_bert

    path = build_tiny_bert(tmp_path / "dense")
    modules = json.loads((path / "modules.json").read_text())
    modules.append({"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"})
    (path / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ModelLoadError, match=r"sentence_transformers\.models\.Dense"):
        compare_models(_options([str(path)], texts=texts_file))
    shutil.rmtree(path)


def test_bad_options_fail_before_any_measuring(texts_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--data .* or --texts"):
        compare_models(_options(["all-MiniLM-L6-v2"]))
    with pytest.raises(ConfigError, match="unknown precision 'int4'"):
        compare_models(_options(["all-MiniLM-L6-v2"], texts=texts_file, precisions=["int4"]))
    with pytest.raises(ConfigError, match="unknown backend 'tensorrt'"):
        compare_models(_options(["all-MiniLM-L6-v2"], texts=texts_file, backends=["tensorrt"]))
    with pytest.raises(ConfigError, match="twice"):
        compare_models(_options(["a", "a"], texts=texts_file))
    with pytest.raises(DataFileError, match="no such file"):
        compare_models(_options(["all-MiniLM-L6-v2"], texts=tmp_path / "missing.txt"))
