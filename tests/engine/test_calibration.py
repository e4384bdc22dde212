"""``auto`` by measurement: the decision rule on given timings, the record, and a real calibration run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embedlab.engine.calibration import (
    MIN_COSINE,
    Calibration,
    CandidateReport,
    Decision,
    Shape,
    _write_atomic,
    auto_choice,
    calibration_facts,
    calibration_key,
    calibration_path,
    decide,
)
from embedlab.engine.loader import load_spec

SHAPES = (Shape("query", 1, 12), Shape("mid", 8, 32), Shape("big", 32, 32), Shape("huge", 64, 64))


def test_one_backend_fastest_everywhere_is_chosen_alone() -> None:
    ms = {
        "onnx": {"query": 2.0, "mid": 6.0, "big": 20.0, "huge": 80.0},
        "openvino": {"query": 1.5, "mid": 3.0, "big": 8.0, "huge": 30.0},
    }
    decision = decide(ms, SHAPES)
    assert (decision.small, decision.large, decision.split_tokens) == ("openvino", "openvino", None)
    assert decision.name == "openvino" and "openvino" in decision.reason


def test_a_split_is_chosen_where_each_side_wins_by_enough() -> None:
    ms = {
        "onnx": {"query": 1.0, "mid": 5.0, "big": 20.0, "huge": 80.0},
        "torch-bf16": {"query": 3.0, "mid": 4.0, "big": 10.0, "huge": 40.0},
    }
    decision = decide(ms, SHAPES)
    assert (decision.small, decision.large, decision.split_tokens) == ("onnx", "torch-bf16", 12)
    assert decision.name == "onnx<=12+torch-bf16" and "less summed time" in decision.reason


def test_a_split_that_gains_little_is_not_taken() -> None:
    ms = {
        "onnx": {"query": 1.0, "mid": 4.1, "big": 10.2, "huge": 40.5},
        "openvino": {"query": 1.03, "mid": 4.0, "big": 10.0, "huge": 40.0},
    }
    decision = decide(ms, SHAPES)  # onnx wins the query by 3%: not worth a second runtime
    assert decision.split_tokens is None and decision.small == "openvino"


def test_ties_keep_the_order_of_preference() -> None:
    same = {"query": 1.0, "mid": 2.0, "big": 3.0, "huge": 4.0}
    assert decide({"onnx": dict(same), "torch-bf16": dict(same)}, SHAPES).small == "onnx"


def test_the_record_round_trips_through_json() -> None:
    record = Calibration(
        key="k",
        facts={"cpu": "x"},
        reference="torch",
        candidates=[CandidateReport("onnx", True, load_seconds=0.5, cosine_min=1.0, proven=True, ms={"query": 1.0})],
        shapes=[("query", 1, 12)],
        decision=Decision("onnx", "onnx", None, "why"),
        seconds=1.0,
        created=2.0,
    )
    again = Calibration.from_dict(json.loads(json.dumps(record.to_dict())))
    assert again == record
    assert again.table() == [
        {
            "backend": "onnx",
            "available": True,
            "proven": True,
            "cosine_min": 1.0,
            "load_s": 0.5,
            "note": "",
            "query": 1.0,
        }
    ]


def test_a_real_calibration_is_measured_once_then_read_from_the_cache(tiny_bert_dir: Path) -> None:
    spec = load_spec(str(tiny_bert_dir))
    first = auto_choice(spec, "cpu", 1)
    assert not first.fallback and first.reference == "torch"
    proven = {c.name for c in first.candidates if c.proven}
    assert {"torch", "onnx"} <= proven  # both exact: cosine 1.0 within rounding
    assert all(c.cosine_min is not None and c.cosine_min >= MIN_COSINE for c in first.candidates if c.proven)
    assert {first.decision.small, first.decision.large} <= proven
    for candidate in first.candidates:
        if candidate.proven:
            assert set(candidate.ms) == {label for label, _, _ in first.shapes}
    path = calibration_path(calibration_key(calibration_facts(spec, "cpu", 1)))
    stamp = path.stat().st_mtime_ns
    assert auto_choice(spec, "cpu", 1) == first and path.stat().st_mtime_ns == stamp  # no new measurement
    assert auto_choice(spec, "cpu", 1, rerun=True).created > first.created


def test_no_writable_cache_falls_back_to_an_exact_backend(
    tiny_bert_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("EMBEDLAB_CACHE_DIR", str(blocker))
    choice = auto_choice(load_spec(str(tiny_bert_dir)), "cpu", 1)
    assert choice.fallback and choice.decision.name in ("onnx", "torch")
    assert "no calibration could run" in choice.decision.reason
    assert "cannot cache a calibration" in caplog.text


def test_writing_a_calibration_removes_partials_of_killed_calibrations(tmp_path: Path, dead_pid: int) -> None:
    path = calibration_path("k" * 20, tmp_path)
    path.parent.mkdir(parents=True)
    stale = path.parent / f".{'j' * 20}.json.partial-{dead_pid}-x8y7z6"  # mkstemp's name in a killed child
    stale.write_text("{")
    _write_atomic(path, {"ok": True})
    assert json.loads(path.read_text()) == {"ok": True}
    assert [p.name for p in path.parent.iterdir()] == [path.name]


@pytest.mark.slow
def test_a_first_auto_load_by_name_exports_once_in_the_child_and_keeps_torch_out(tmp_path: Path) -> None:
    """The calibration child resolves a model by path; it must key the exported graph by the parent's name, or the
    parent exports the graph a second time itself (importing PyTorch into the server: +300 MB for its lifetime)."""
    import json
    import os
    import subprocess
    import sys

    script = (
        "import sys, json, embedlab\n"
        "model = embedlab.load('sentence-transformers/all-MiniLM-L6-v2', backend='auto')\n"
        "print(json.dumps({'backend': model.backend.name, 'torch': 'torch' in sys.modules}))\n"
    )
    env = {**os.environ, "EMBEDLAB_CACHE_DIR": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    graphs = sorted(p.parent for p in (tmp_path / "onnx").rglob("model.onnx"))
    assert len(graphs) == 1, graphs  # one export, by the child, found by the parent
    if result["backend"] in ("onnx", "onnx-int8", "openvino", "openvino-f32"):
        assert result["torch"] is False
