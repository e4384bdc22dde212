from __future__ import annotations

import random
from pathlib import Path

import pytest

import embedlab
from embedlab.bench.runner import PointConfig, PointResult, RssSampler, measure_run, summarize_point
from embedlab.engine.embedder import Embedder
from embedlab.errors import ConfigError


def letter_text(n_words: int, seed: int) -> str:
    """``n_words`` one-letter words: exactly n_words + 2 tokens with the tiny tokenizer."""
    rng = random.Random(seed)
    return " ".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n_words))


@pytest.fixture(scope="module")
def tiny(tiny_bert_dir: Path) -> Embedder:
    return embedlab.load(str(tiny_bert_dir), threads=1, max_batch_tokens=128)


def test_fixed_batches_count_tokens_like_the_tokenizer(tiny: Embedder) -> None:
    texts = [letter_text(n, seed=n) for n in (3, 70, 10, 1, 30)]  # 70 words: over the 64-token limit
    sample = measure_run(tiny, texts, batch=2)
    lengths = [min(int(n), 64) for n in tiny.count_tokens(texts)]
    assert sample.texts == 5 and sample.real_tokens == sum(lengths)
    # batches [3, 70], [10, 1], [30] padded to their longest
    assert sample.padded_tokens == 2 * 64 + 2 * 12 + 32
    assert len(sample.batch_seconds) == 3 and sample.seconds >= sum(sample.batch_seconds) * 0.99
    assert set(sample.stage_seconds) == {"tokenize", "model", "pool"}
    assert sample.seconds >= sum(sample.stage_seconds.values())
    assert sample.peak_rss_bytes >= sample.start_rss_bytes > 0 and sample.flops == 0


def test_engine_batching_run_and_flops(tiny: Embedder) -> None:
    texts = [letter_text(n, seed=n) for n in (3, 70, 10, 1, 30)]
    calls: list[tuple[int, int]] = []

    def flops(batch: int, seq: int) -> int:
        calls.append((batch, seq))
        return batch * seq * 10

    sample = measure_run(tiny, texts, batch=None, flops=flops)
    assert sample.real_tokens == sum(min(int(n), 64) for n in tiny.count_tokens(texts))
    assert sample.padded_tokens >= sample.real_tokens
    assert sum(b for b, _ in calls) == 5 and len(sample.batch_seconds) == len(calls)
    assert sum(b * s for b, s in calls) == sample.padded_tokens  # the shapes the backend really ran
    assert sample.flops == sum(b * s * 10 for b, s in calls)
    assert not hasattr(tiny.backend, "shapes")  # the recorder is gone after the run


@pytest.mark.parametrize("batch", [0, -3])
def test_batch_below_one_is_refused(tiny: Embedder, batch: int) -> None:
    with pytest.raises(ConfigError, match=f"batch size must be at least 1, got {batch}"):
        measure_run(tiny, ["a b"], batch=batch)


def test_no_texts_is_refused(tiny: Embedder) -> None:
    with pytest.raises(ConfigError, match="at least one text"):
        measure_run(tiny, [], batch=1)


def test_summary_medians_percentiles_and_shares(tiny: Embedder) -> None:
    texts = [letter_text(6, seed=i) for i in range(8)]
    samples = [measure_run(tiny, texts, batch=2, flops=lambda b, s: b * s * 1000) for _ in range(3)]
    config = PointConfig("tiny", "torch", 2, 8, None, 1)
    summary = summarize_point(PointResult(config, samples, warmup=0, matmul_peak_gflops=50.0))
    rates = sorted(s.texts / s.seconds for s in samples)
    assert summary["texts_per_s"] == pytest.approx({"median": rates[1], "min": rates[0], "max": rates[2]})
    assert summary["latency_ms"]["batches"] == 12
    assert summary["flops_per_token"] == pytest.approx(1000.0)
    assert summary["share_of_matmul_peak"] == pytest.approx(summary["achieved_gflops"] / 50.0)
    assert summary["key"] == "tiny|torch|batch=2|seq=8|threads=1"
    with pytest.raises(ConfigError, match="no timed runs"):
        summarize_point(PointResult(config, [], warmup=0))


def test_rss_sampler_sees_an_allocation() -> None:
    import numpy as np

    with RssSampler(interval=0.001) as rss:
        before = rss.peak
        block = np.ones(50 * 2**20 // 8)  # 50 MB, touched
        block += 1
    assert rss.start <= before  # the start is sampled on entry; a later sample may already be a page higher
    assert rss.peak >= rss.start + 40 * 2**20
