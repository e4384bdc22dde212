"""The dynamic batcher serving a tiny cross-encoder: concurrent rerank requests answered as the in-process Reranker."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

import embedlab
from batching import Recorder, serve
from embedlab.engine.cache import MemoryLRUCache, cache_key, pair_key
from embedlab.engine.embedder import Embedder
from embedlab.engine.rerank import Reranker
from embedlab.engine.serving import DynamicBatcher
from embedlab.errors import ConfigError, EmptyInputError, InputTypeError, ModelKindError, PairTooLongError
from faultybackend import FaultyBackend

VOCAB = ["the", "cat", "sat", "on", "mat", "dog", "a", "b", "c"]


def words(n: int, seed: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(VOCAB) for _ in range(n))


@pytest.fixture(scope="module")
def reranker(tiny_cross_encoder_dir: Path) -> Reranker:
    return embedlab.load_reranker(str(tiny_cross_encoder_dir), backend="torch", threads=1)


@pytest.fixture
def backend(reranker: Reranker) -> Iterator[FaultyBackend]:
    faulty = FaultyBackend(reranker.backend)
    yield faulty
    faulty.release()


def requests(n: int) -> list[tuple[str, list[str]]]:
    """(query, documents) of ``n`` requests: 1 to 6 documents, some long enough to be cut to 64 tokens."""
    rng = random.Random(5)
    asked = []
    for i in range(n):
        documents = [words(rng.choice([2, 9, 30, 90]), seed=100 * i + j) for j in range(1 + i % 6)]
        asked.append((words(rng.randint(1, 6), seed=i), documents))
    return asked


@pytest.mark.parametrize("workers", [1, 2])
def test_concurrent_reranks_equal_the_in_process_reranker(reranker: Reranker, workers: int) -> None:
    asked = requests(30)

    async def body(batcher: DynamicBatcher) -> None:
        top_n = [None if i % 3 else 2 for i in range(len(asked))]
        answers = await asyncio.gather(
            *(batcher.rerank(q, docs, top_n=n) for (q, docs), n in zip(asked, top_n, strict=True))
        )
        for (query, documents), n, answer in zip(asked, top_n, answers, strict=True):
            expected = reranker.rerank(query, documents, top_n=n)
            np.testing.assert_allclose(answer.scores, expected.scores, atol=1e-5, rtol=0)
            assert answer.ranking == expected.ranking
            assert (answer.tokens, answer.input_tokens) == (expected.tokens, expected.input_tokens)
            assert answer.truncated == expected.truncated
            assert set(answer.timings) == {"tokenize", "queue", "inference", "total"}
        assert sum(a.n_truncated for a in answers) > 0

    serve(reranker, body, workers=workers, max_batch_tokens=256)


def test_pairs_of_concurrent_requests_share_a_batch(reranker: Reranker, backend: FaultyBackend) -> None:
    model = Reranker(reranker.spec, backend, reranker.tokenizer, reranker.settings)

    async def body(batcher: DynamicBatcher) -> None:
        backend.hold()
        calls = backend.calls
        blocker = asyncio.ensure_future(batcher.rerank("the dog", ["sat"]))
        assert await asyncio.to_thread(backend.wait_for_calls, calls + 1)
        tasks = [asyncio.ensure_future(batcher.rerank("cat", [f"{c} mat", f"{c} {c}"])) for c in "abc"]
        assert await asyncio.to_thread(batcher.wait_until, lambda: batcher.queue_segments == 6, 10.0)
        backend.release()
        answers = await asyncio.gather(blocker, *tasks)
        assert [len(batch) for batch in backend.batches[calls:]] == [1, 6]  # three requests, one batch
        for c, answer in zip("abc", answers[1:], strict=True):
            np.testing.assert_allclose(
                answer.scores, reranker.rerank("cat", [f"{c} mat", f"{c} {c}"]).scores, atol=1e-5, rtol=0
            )

    serve(model, body, backend=backend)


def test_activation_is_applied_per_request_to_a_shared_pair(reranker: Reranker, backend: FaultyBackend) -> None:
    model = Reranker(reranker.spec, backend, reranker.tokenizer, reranker.settings)
    observer = Recorder()

    async def body(batcher: DynamicBatcher) -> None:
        backend.hold()
        calls = backend.calls
        blocker = asyncio.ensure_future(batcher.rerank("the dog", ["sat"]))
        assert await asyncio.to_thread(backend.wait_for_calls, calls + 1)
        raw = asyncio.ensure_future(batcher.rerank("the cat", ["sat on the mat"], raw_scores=True))
        scored = asyncio.ensure_future(batcher.rerank("the cat", ["sat on the mat"]))
        assert await asyncio.to_thread(batcher.wait_until, lambda: batcher.queue_segments == 1, 10.0)
        backend.release()
        _, raw_answer, answer = await asyncio.gather(blocker, raw, scored)
        assert sum(len(batch) for batch in backend.batches[calls + 1 :]) == 1  # computed once for both
        logit = reranker.rerank("the cat", ["sat on the mat"], raw_scores=True).scores
        np.testing.assert_allclose(raw_answer.scores, logit, atol=1e-5, rtol=0)
        np.testing.assert_allclose(answer.scores, 1 / (1 + np.exp(-logit.astype(np.float64))), atol=1e-6, rtol=0)

    serve(model, body, backend=backend, observer=observer)
    assert (0, 0, 1) in observer.cache  # the second request joined the first one's pair


def test_predict_on_several_labels_equals_in_process(make_tiny_cross_encoder: Callable[..., Path]) -> None:
    three = embedlab.load_reranker(str(make_tiny_cross_encoder(num_labels=3)), backend="torch", threads=1)
    pairs = [(words(3, seed=i), words(5 + 11 * i, seed=50 + i)) for i in range(8)]

    async def body(batcher: DynamicBatcher) -> None:
        answers = await asyncio.gather(batcher.predict(pairs), batcher.predict(pairs[::-1], raw_scores=True))
        np.testing.assert_allclose(answers[0].scores, three.predict(pairs).scores, atol=1e-5, rtol=0)
        raw = three.predict(pairs[::-1], raw_scores=True).scores
        np.testing.assert_allclose(answers[1].scores, raw, atol=1e-5, rtol=0)
        assert answers[0].scores.shape == (8, 3) and answers[0].truncated == three.predict(pairs).truncated
        with pytest.raises(ConfigError, match="gives 3 scores per pair"):
            await batcher.rerank("q", ["d"])

    serve(three, body)


def test_bad_requests_are_typed_errors_naming_the_callers_index(reranker: Reranker) -> None:
    async def body(batcher: DynamicBatcher) -> None:
        with pytest.raises(EmptyInputError, match="no documents given"):
            await batcher.rerank("q", [])
        with pytest.raises(EmptyInputError, match="query is empty"):
            await batcher.rerank(" ", ["d"])
        with pytest.raises(InputTypeError, match="document 1 is a int"):
            await batcher.rerank("q", ["d", 1])  # type: ignore[list-item]
        with pytest.raises(ConfigError, match="top_n must be a whole number"):
            await batcher.rerank("q", ["d"], top_n=0)
        health = await batcher.check_health()
        assert health.status == "ok" and batcher.in_flight_requests == 0

    serve(reranker, body)


def test_a_long_pair_is_named_by_the_callers_index_beside_pairs_in_flight(
    reranker: Reranker, backend: FaultyBackend
) -> None:
    model = Reranker(reranker.spec, backend, reranker.tokenizer, reranker.settings)

    async def body(batcher: DynamicBatcher) -> None:
        backend.hold()
        calls = backend.calls
        held = asyncio.ensure_future(batcher.rerank("cat", ["sat"], truncate=False))
        assert await asyncio.to_thread(backend.wait_for_calls, calls + 1)
        # ("cat", "sat") joins the held request's pair, so the long pair is the second new one: still index 2
        with pytest.raises(PairTooLongError, match=r"pair 2 \(the query with document 2\) has 73 tokens"):
            await batcher.rerank("cat", ["sat", "mat", words(69, seed=1)], truncate=False)
        backend.release()
        assert (await held).tokens == [5]

    serve(model, body, backend=backend)


def test_each_request_kind_needs_its_model(reranker: Reranker, tiny_bert_dir: Path) -> None:
    embedder: Embedder = embedlab.load(str(tiny_bert_dir), backend="torch", threads=1)

    async def ask_to_embed(batcher: DynamicBatcher) -> None:
        with pytest.raises(
            ModelKindError, match=r"is a cross-encoder \(reranker\).*its batcher was asked to embed texts"
        ):
            await batcher.embed(["a"])

    async def ask_to_rerank(batcher: DynamicBatcher) -> None:
        with pytest.raises(ModelKindError, match=r"is an embedding model.*its batcher was asked to rerank"):
            await batcher.rerank("q", ["d"])
        with pytest.raises(ModelKindError, match="asked to score pairs"):
            await batcher.predict([("q", "d")])

    serve(reranker, ask_to_embed)
    serve(embedder, ask_to_rerank)


def test_rerank_results_never_enter_a_cache(reranker: Reranker) -> None:
    with pytest.raises(ConfigError, match=r"rerank results are not cached: give the batcher of .* no cache"):
        DynamicBatcher(reranker, cache=MemoryLRUCache(8))
    # and the keys that share in-flight work can never name an embedding's cache entry
    identity = "m|f|torch"
    assert pair_key(identity, "q", "d", max_tokens=64, truncate=True) != cache_key(
        identity, "d", prompt="q", max_tokens=64, long_input="truncate", chunk_overlap=None
    )
