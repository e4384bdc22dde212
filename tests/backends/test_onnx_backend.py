from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import embedlab
from embedlab.backends.graph_files import data_file
from embedlab.backends.onnx_export import GRAPH_FILE, cached_or_export, export_dir
from embedlab.errors import BackendUnavailableError
from embedlab.models.resolve import ResolvedModel
from embedlab.models.spec import read_spec

TEXTS = ["the cat sat on the mat", "a", "b c d e f g h i j k l m n o p q r s t u v w x y z " * 3]


def test_onnx_matches_torch_on_a_tiny_model(tiny_bert_dir: Path) -> None:
    torch_vectors = embedlab.load(str(tiny_bert_dir), backend="torch").embed(TEXTS)
    onnx_model = embedlab.load(str(tiny_bert_dir), backend="onnx")
    assert onnx_model.backend.name == "onnx"
    np.testing.assert_allclose(onnx_model.embed(TEXTS), torch_vectors, atol=1e-5)


def test_export_is_cached_and_reused(tmp_path: Path, tiny_bert_dir: Path) -> None:
    spec = read_spec(ResolvedModel(str(tiny_bert_dir), tiny_bert_dir, "local"))
    first = cached_or_export(spec, tmp_path)
    stamp = first.stat().st_mtime_ns
    meta = json.loads((first.parent / "meta.json").read_text())
    assert meta["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert first.parent == export_dir(spec, tmp_path)
    # weights live in one external-data file that ONNX Runtime memory-maps; only small tensors stay inline
    import onnx

    graph = onnx.load(str(first), load_external_data=False).graph
    inline = [t.name for t in graph.initializer if t.data_location != onnx.TensorProto.EXTERNAL]
    assert all(len(t.raw_data) <= 1024 for t in graph.initializer if t.name in inline)
    assert len(inline) < len(graph.initializer) and data_file(first).stat().st_size > 64 * 1024
    assert [p.name for p in first.parent.iterdir() if p.name.startswith(".")] == []  # no scratch left behind
    again = cached_or_export(spec, tmp_path)
    assert again == first and again.stat().st_mtime_ns == stamp


def test_a_killed_exports_scratch_folder_goes_with_the_next_export(
    tmp_path: Path, tiny_bert_dir: Path, dead_pid: int, caplog: pytest.LogCaptureFixture
) -> None:
    spec = read_spec(ResolvedModel(str(tiny_bert_dir), tiny_bert_dir, "local"))
    directory = export_dir(spec, tmp_path)
    scratch = directory / f".{GRAPH_FILE}.partial-{dead_pid}-q1w2e3r4"  # mkdtemp's name in a killed export
    scratch.mkdir(parents=True)
    (scratch / GRAPH_FILE).write_bytes(b"g" * 4096)
    with caplog.at_level(logging.WARNING, logger="embedlab.partials"):
        graph = cached_or_export(spec, tmp_path)
    assert graph.is_file() and not scratch.exists()
    assert [p.name for p in directory.iterdir() if p.name.startswith(".")] == []
    assert [r.getMessage() for r in caplog.records] == [
        f"removed 1 stale partial file (0.0 MB) left by crashed runs in {directory}: {scratch.name}"
    ]


def test_changed_model_files_get_a_new_graph(tmp_path: Path, tiny_bert_dir: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(tiny_bert_dir, copy)
    before = export_dir(read_spec(ResolvedModel("m", copy, "local")), tmp_path)
    (copy / "sentence_bert_config.json").write_text('{"max_seq_length": 32}')
    after = export_dir(read_spec(ResolvedModel("m", copy, "local")), tmp_path)
    assert before != after


def test_incomplete_export_is_redone(tmp_path: Path, tiny_bert_dir: Path) -> None:
    spec = read_spec(ResolvedModel(str(tiny_bert_dir), tiny_bert_dir, "local"))
    directory = export_dir(spec, tmp_path)
    directory.mkdir(parents=True)
    (directory / GRAPH_FILE).write_bytes(b"half a graph")  # no meta.json: a crashed export
    graph = cached_or_export(spec, tmp_path)
    assert graph.stat().st_size > 1000 and (directory / "meta.json").is_file()


def test_plain_hf_model_without_sentence_transformers_files(make_tiny_bert: Callable[..., Path]) -> None:
    path = make_tiny_bert(pooling=None)
    a = embedlab.load(str(path), backend="onnx").embed(TEXTS)
    b = embedlab.load(str(path), backend="torch").embed(TEXTS)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_cuda_without_a_gpu_names_the_fix(tiny_bert_dir: Path) -> None:
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has the CUDA provider")
    with pytest.raises(BackendUnavailableError, match="onnxruntime-gpu"):
        embedlab.load(str(tiny_bert_dir), backend="onnx", device="cuda")


def test_auto_runs_what_this_machines_calibration_chose(tiny_bert_dir: Path) -> None:
    model = embedlab.load(str(tiny_bert_dir), threads=1)
    calibration = model.calibration
    assert calibration is not None and not calibration.fallback
    assert model.backend.name == calibration.decision.name
    proven = {c.name for c in calibration.candidates if c.proven}
    assert {calibration.decision.small, calibration.decision.large} <= proven
    exact = embedlab.load(str(tiny_bert_dir), backend="torch", threads=1).embed(TEXTS)
    assert ((model.embed(TEXTS) * exact).sum(1) >= 0.9999).all()
    assert embedlab.load(str(tiny_bert_dir), backend="onnx").calibration is None  # a named backend: no calibration


def test_int8_backend_is_close_and_cached(tiny_bert_dir: Path) -> None:
    exact = embedlab.load(str(tiny_bert_dir), backend="onnx").embed(TEXTS)
    first = embedlab.load(str(tiny_bert_dir), backend="onnx-int8")
    assert first.backend.name == "onnx-int8"
    graph = first.backend.graph  # type: ignore[attr-defined]
    stamp = graph.stat().st_mtime_ns
    vectors = first.embed(TEXTS)
    assert ((vectors * exact).sum(1) > 0.95).all()
    assert not np.allclose(vectors, exact, atol=1e-6)  # really quantised
    assert data_file(graph).is_file()
    again = embedlab.load(str(tiny_bert_dir), backend="onnx-int8")
    assert again.backend.graph == graph and graph.stat().st_mtime_ns == stamp  # type: ignore[attr-defined]
