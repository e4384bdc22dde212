"""The cache effect: a second pass of the same texts through the dynamic batcher is all cache hits."""

from __future__ import annotations

from pathlib import Path

from embedlab.bench.cache_effect import measure_cache_effect
from embedlab.engine.loader import load


def test_second_pass_is_answered_from_the_cache(tiny_bert_dir: Path) -> None:
    embedder = load(str(tiny_bert_dir), backend="torch", threads=1)
    texts = [f"the cat sat {' '.join(['a'] * i)}" for i in range(20)]
    result = measure_cache_effect(embedder, texts, request_texts=8)
    assert result["status"] == "measured"
    assert result["hits"] == len(texts)
    assert result["first_s"] > 0 and result["second_s"] > 0
    assert result["ratio"] == result["first_s"] / result["second_s"]
