"""The batch-size probe, run in this process on the tiny model: counts by hand, ordering, the JSON protocol."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

import embedlab
from embedlab.engine.tokenize import tokenize_texts
from embedlab.plan.probe import main, run_job
from embedlab.settings import EngineSettings


def words(n: int) -> str:
    """n one-letter words: exactly n + 2 tokens with the tiny model's tokenizer."""
    return " ".join("abcdefghij"[i % 10] for i in range(n))


TEXTS = [words(1), words(5), words(30)]  # 3, 7 and 32 tokens


def job(model: Path, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "settings": EngineSettings(model=str(model), backend="torch", threads=1).model_dump(),
        "texts": TEXTS,
        "batch_sizes": [4, 1, 2, 2],
        "max_tokens": 16,
    }
    values.update(overrides)
    return values


def test_each_batch_size_once_ascending_with_counts_by_hand(tiny_bert_dir: Path) -> None:
    result = run_job(job(tiny_bert_dir))
    assert result["backend"] == "torch" and result["baseline_rss_bytes"] > 0
    rows = result["results"]
    assert [r["batch_size"] for r in rows] == [1, 2, 4]
    # truncated at 16: 3 + 7 + 16 = 26 tokens; b=4 cycles the 3 texts to 4 (the 4th is words(1) again, 3 tokens)
    assert [(r["texts"], r["tokens"], r["batches"]) for r in rows] == [(3, 26, 3), (3, 26, 2), (4, 29, 1)]
    for r in rows:
        assert r["worst_case_seq_len"] == 16 and r["worst_case_latency_s"] > 0 and r["seconds"] > 0
        assert r["tokens_per_second"] == pytest.approx(r["tokens"] / r["seconds"])
        assert r["texts_per_second"] == pytest.approx(r["texts"] / r["seconds"])
        if r["peak_rss_bytes"] is not None and r["rss_before_bytes"] is not None:
            assert r["peak_rss_bytes"] >= r["rss_before_bytes"] > 0
        else:
            assert "not measurable" in r["memory_method"]


def test_the_chunk_policy_counts_every_window(tiny_bert_dir: Path) -> None:
    rows = run_job(job(tiny_bert_dir, batch_sizes=[4], long_input="chunk"))["results"]
    tokenizer = embedlab.load(str(tiny_bert_dir), backend="torch", threads=1).tokenizer
    cycled = [TEXTS[i % 3] for i in range(4)]
    windows = tokenize_texts(tokenizer, cycled, 16, "chunk", EngineSettings().chunk_overlap).segments
    assert rows[0]["texts"] == 4 and len(windows) > 4  # words(30) became several 16-token windows
    assert rows[0]["tokens"] == sum(len(w.ids) for w in windows) > 3 + 7 + 16 + 3  # more than truncating


def test_main_speaks_json_on_stdin_and_stdout(
    tiny_bert_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(job(tiny_bert_dir, batch_sizes=[1]))))
    main()
    answer = json.loads(capsys.readouterr().out)
    assert [r["batch_size"] for r in answer["results"]] == [1] and answer["results"][0]["tokens"] == 26


def test_main_reports_an_embedlab_error_as_json_and_exit_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-model-here"
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(job(missing))))
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 3
    answer = json.loads(capsys.readouterr().out)
    assert answer["type"] == "ModelNotFoundError" and "no-model-here" in answer["error"]
