from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import embedlab
from embedlab.engine.embedder import Embedder
from embedlab.errors import ConfigError, InputTooLongError


def words(n: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n))


@pytest.fixture(scope="module")
def tiny(tiny_bert_dir: Path) -> Embedder:
    # fp32 torch: these tests compare vectors across batch compositions, which only an exact backend keeps
    # to 1e-5 (auto may split batches by size between two runtimes, or choose a bf16 one)
    return embedlab.load(str(tiny_bert_dir), backend="torch", max_batch_tokens=64, max_batch_size=4, chunk_overlap=2)


def test_shape_dtype_and_unit_norm(tiny: Embedder) -> None:
    vectors = tiny.embed(["the cat sat", "a dog"])
    assert vectors.shape == (2, 32) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)


def test_order_restored_whatever_the_batching(tiny: Embedder) -> None:
    texts = [words(random.Random(i).randint(1, 60), seed=i) for i in range(40)]
    together = tiny.embed(texts)
    one_by_one = np.stack([tiny.embed([t])[0] for t in texts])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)
    shuffled = list(range(40))
    random.Random(7).shuffle(shuffled)
    np.testing.assert_allclose(tiny.embed([texts[i] for i in shuffled]), together[shuffled], atol=1e-5)


def test_report_counts_tokens_truncation_and_padding(tiny: Embedder) -> None:
    result = tiny.embed_with_report([words(3), words(100)])
    assert result.tokens == [5, 64]
    assert result.input_tokens == [5, 102]
    assert result.truncated == [False, True] and result.n_truncated == 1
    assert result.padded_tokens >= result.total_tokens
    assert set(result.timings) == {"tokenize", "model", "pool"}


def test_error_policy_raises_with_index(tiny: Embedder) -> None:
    with pytest.raises(InputTooLongError, match="input 1 has 102 tokens"):
        tiny.embed([words(3), words(100)], long_input="error")


def test_chunk_vector_is_token_weighted_mean_of_windows(tiny_bert_dir: Path) -> None:
    model = embedlab.load(str(tiny_bert_dir), chunk_overlap=0)
    text = words(20, seed=3)
    pieces = text.split()
    chunked = model.embed([text], long_input="chunk", max_tokens=10, normalize=False)[0]
    # windows of 8 content tokens, no overlap: 8 + 8 + 4 one-letter tokens
    parts = [" ".join(pieces[0:8]), " ".join(pieces[8:16]), " ".join(pieces[16:20])]
    windows = model.embed(parts, normalize=False, max_tokens=10)
    expected = (8 * windows[0] + 8 * windows[1] + 4 * windows[2]) / 20
    np.testing.assert_allclose(chunked, expected, atol=1e-5)
    normalised = model.embed([text], long_input="chunk", max_tokens=10)[0]
    np.testing.assert_allclose(normalised, expected / np.linalg.norm(expected), atol=1e-5)


def test_lowered_max_tokens_truncates_earlier(tiny: Embedder) -> None:
    result = tiny.embed_with_report([words(30)], max_tokens=12)
    assert result.tokens == [12] and result.truncated == [True]
    with pytest.raises(ConfigError, match="max_tokens"):
        tiny.embed(["a"], max_tokens=65)


def test_dimensions_truncate_then_renormalise(tiny: Embedder) -> None:
    full = tiny.embed(["the cat sat on the mat"], normalize=False)[0]
    cut = tiny.embed(["the cat sat on the mat"], dimensions=8)[0]
    assert cut.shape == (8,)
    np.testing.assert_allclose(cut, full[:8] / np.linalg.norm(full[:8]), atol=1e-6)
    for bad in (0, 33, -1):
        with pytest.raises(ConfigError, match="dimensions"):
            tiny.embed(["a"], dimensions=bad)


def test_prompts_by_name_text_and_default(make_tiny_bert: Callable[..., Path]) -> None:
    path = make_tiny_bert(prompts={"query": "query: ", "passage": "passage: "}, default_prompt_name="query")
    model = embedlab.load(str(path))
    plain = embedlab.load(str(path), prompt_name="passage")
    assert np.allclose(model.embed(["cat"]), model.embed(["cat"], prompt="query: "))
    assert np.allclose(model.embed(["cat"], prompt_name="passage"), model.embed(["cat"], prompt="passage: "))
    assert np.allclose(plain.embed(["cat"]), model.embed(["cat"], prompt_name="passage"))
    assert not np.allclose(model.embed(["cat"], prompt=""), model.embed(["cat"]))
    with pytest.raises(ConfigError, match=r"no prompt named 'doc'.*passage, query"):
        model.embed(["cat"], prompt_name="doc")
    with pytest.raises(ConfigError, match="either prompt or prompt_name"):
        model.embed(["cat"], prompt="x", prompt_name="query")


def test_normalize_override_for_a_model_that_does_not_normalise(make_tiny_bert: Callable[..., Path]) -> None:
    model = embedlab.load(str(make_tiny_bert(normalize=False)))
    raw = model.embed(["the cat"])
    assert abs(float(np.linalg.norm(raw)) - 1.0) > 1e-3
    np.testing.assert_allclose(np.linalg.norm(model.embed(["the cat"], normalize=True)), 1.0, atol=1e-6)


def test_count_tokens(tiny: Embedder) -> None:
    np.testing.assert_array_equal(tiny.count_tokens([words(3), words(100)]), [5, 102])


def test_invalid_settings_are_config_errors(tiny_bert_dir: Path) -> None:
    with pytest.raises(ConfigError, match="max_batch_tokens"):
        embedlab.load(str(tiny_bert_dir), max_batch_tokens=0)
    with pytest.raises(ConfigError, match="unknown backend"):
        embedlab.load(str(tiny_bert_dir), backend="tensorflow")


def test_pipelined_blocks_give_the_same_vectors_and_global_error_index(tiny_bert_dir: Path) -> None:
    texts = [words(random.Random(i).randint(1, 40), seed=i) for i in range(50)]
    whole = embedlab.load(str(tiny_bert_dir), backend="torch", tokenize_block=1000).embed_with_report(texts)
    piecewise = embedlab.load(str(tiny_bert_dir), backend="torch", tokenize_block=7).embed_with_report(texts)
    np.testing.assert_allclose(piecewise.vectors, whole.vectors, atol=1e-5)
    assert piecewise.tokens == whole.tokens and piecewise.truncated == whole.truncated
    too_long = [*texts[:30], words(100), *texts[30:]]
    with pytest.raises(InputTooLongError, match="input 30 has 102 tokens"):
        embedlab.load(str(tiny_bert_dir), tokenize_block=7).embed(too_long, long_input="error")


def test_two_workers_give_the_vectors_of_one(tiny_bert_dir: Path) -> None:
    texts = [words(random.Random(i).randint(1, 60), seed=i) for i in range(60)]
    one = embedlab.load(str(tiny_bert_dir), backend="torch", workers=1, threads=1, max_batch_tokens=128)
    two = embedlab.load(str(tiny_bert_dir), backend="torch", workers=2, threads=1, max_batch_tokens=128)
    assert (one.workers, two.workers) == (1, 2)
    done: list[int] = []
    result = two.embed_with_report(texts, progress=done.append)
    np.testing.assert_allclose(result.vectors, one.embed(texts), atol=1e-6)
    assert done == sorted(done) and done[-1] == len(texts)  # progress counts up, in the caller's thread
    with pytest.raises(InputTooLongError, match="input 3"):
        two.embed([*texts[:3], words(100)], long_input="error")


def test_precisions_give_their_dtype_and_shape_from_the_same_float_vectors(tiny: Embedder) -> None:
    from embedlab.engine.vector_precision import quantize

    texts = ["the cat sat", "a dog", "x y z"]
    floats = tiny.embed(texts)
    shapes = {"float16": (3, 32), "int8": (3, 32), "uint8": (3, 32), "binary": (3, 4), "ubinary": (3, 4)}
    dtypes = {"float16": np.float16, "int8": np.int8, "uint8": np.uint8, "binary": np.int8, "ubinary": np.uint8}
    for precision, shape in shapes.items():
        got = tiny.embed(texts, precision=precision)
        assert got.shape == shape and got.dtype == dtypes[precision], precision
        np.testing.assert_array_equal(got, quantize(floats, precision))  # type: ignore[arg-type]
    # a vector's codes do not depend on the batch it came in (default ranges are fixed)
    np.testing.assert_array_equal(tiny.embed(texts[:1], precision="int8"), tiny.embed(texts, precision="int8")[:1])
    np.testing.assert_array_equal(tiny.embed(texts, precision="binary", dimensions=12).shape, (3, 2))
    with pytest.raises(ConfigError, match="unknown precision"):
        tiny.embed(texts, precision="int4")


def test_calibrated_ranges_use_more_of_the_int8_levels(tiny: Embedder) -> None:
    texts = [words(8, seed) for seed in range(40)]
    ranges = tiny.calibrate_ranges(texts)
    assert ranges.shape == (2, 32) and np.all(ranges[0] <= ranges[1])
    calibrated = tiny.embed(texts, precision="uint8", ranges=ranges)
    default = tiny.embed(texts, precision="uint8")
    assert calibrated.min() == 0 and calibrated.max() >= 254
    assert np.ptp(calibrated, axis=0).mean() > 2 * np.ptp(default, axis=0).mean()
