"""The dynamic batcher on a real tiny model, through a backend wrapper that can hold, fail or hang."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import embedlab
from batching import Recorder, serve
from embedlab.engine.cache import MemoryLRUCache
from embedlab.engine.embedder import Embedder
from embedlab.engine.options import EmbedOptions
from embedlab.engine.serving import DynamicBatcher
from embedlab.errors import (
    ConfigError,
    EmptyInputError,
    InferenceError,
    InputTooLongError,
    OverloadedError,
    WorkerUnavailableError,
)
from embedlab.settings import BatcherSettings
from faultybackend import FaultyBackend


@pytest.fixture(scope="module")
def tiny(tiny_bert_dir: Path) -> Embedder:
    return embedlab.load(str(tiny_bert_dir), backend="torch", threads=1)


@pytest.fixture
def backend(tiny: Embedder) -> Iterator[FaultyBackend]:
    faulty = FaultyBackend(tiny.backend)
    yield faulty
    faulty.release()


def run_with(
    tiny: Embedder,
    backend: FaultyBackend,
    body: Callable[[DynamicBatcher], Coroutine[Any, Any, None]],
    cache_entries: int = 0,
    observer: Recorder | None = None,
    **limits: Any,
) -> None:
    """Start a batcher over ``backend``, warm it up, run ``body``, stop it."""
    embedder = Embedder(tiny.spec, backend, tiny.tokenizer, tiny.settings)
    cache = MemoryLRUCache(cache_entries) if cache_entries else None
    serve(embedder, body, backend=backend, cache=cache, observer=observer, **limits)


async def until(batcher: DynamicBatcher, condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait (off the event loop) until ``condition`` holds: the batcher re-checks it at every change."""
    assert await asyncio.to_thread(batcher.wait_until, condition, timeout), "condition not reached in time"


def words(n: int, letter: str = "a") -> str:
    return " ".join([letter] * n)


def ids_of(tiny: Embedder, text: str) -> list[int]:
    return list(tiny.tokenizer.encode(text).ids)


def test_concurrent_requests_get_the_offline_vectors(tiny: Embedder, backend: FaultyBackend) -> None:
    requests = [[f"{chr(97 + i % 26)} cat sat on the mat {'b ' * (i % 9)}"] * (1 + i % 3) for i in range(40)]

    async def body(batcher: DynamicBatcher) -> None:
        outcomes = await asyncio.gather(*(batcher.embed(texts) for texts in requests))
        for texts, outcome in zip(requests, outcomes, strict=True):
            report = tiny.embed_with_report(texts)
            np.testing.assert_allclose(outcome.vectors, report.vectors, atol=1e-5)
            assert outcome.tokens == report.tokens
            assert set(outcome.timings) == {"tokenize", "queue", "inference", "total"}

    run_with(tiny, backend, body)


def test_texts_of_concurrent_requests_share_one_batch(tiny: Embedder, backend: FaultyBackend) -> None:
    async def body(batcher: DynamicBatcher) -> None:
        backend.hold()
        calls = backend.calls
        blocker = asyncio.ensure_future(batcher.embed(["the dog"]))
        assert await asyncio.to_thread(backend.wait_for_calls, calls + 1)
        singles = [asyncio.ensure_future(batcher.embed([f"{c} {c}"])) for c in "bcdefghijk"]
        await until(batcher, lambda: batcher.queue_segments == 10)
        backend.release()
        await asyncio.gather(blocker, *singles)
        assert [len(batch) for batch in backend.batches[calls:]] == [1, 10]

    run_with(tiny, backend, body)


def test_batches_group_texts_of_similar_length(tiny: Embedder, backend: FaultyBackend) -> None:
    async def body(batcher: DynamicBatcher) -> None:
        backend.hold()
        calls = backend.calls
        blocker = asyncio.ensure_future(batcher.embed(["the dog"]))
        assert await asyncio.to_thread(backend.wait_for_calls, calls + 1)
        texts = [words(2, c) if i % 2 == 0 else words(30, c) for i, c in enumerate("bcdefghijklm")]
        tasks = [asyncio.ensure_future(batcher.embed([t])) for t in texts]
        await until(batcher, lambda: batcher.queue_segments == len(texts))
        backend.release()
        await asyncio.gather(blocker, *tasks)
        later = backend.batches[calls + 1 :]
        assert sum(len(b) for b in later) == len(texts)
        for batch in later:
            assert len({len(seq) for seq in batch}) == 1  # short and long never padded together
            assert len(batch) * max(len(seq) for seq in batch) <= 100

    run_with(tiny, backend, body, max_batch_tokens=100)


def test_a_text_in_flight_twice_is_computed_once(tiny: Embedder, backend: FaultyBackend) -> None:
    async def body(batcher: DynamicBatcher) -> None:
        backend.hold()
        calls = backend.calls
        blocker = asyncio.ensure_future(batcher.embed(["the dog"]))
        assert await asyncio.to_thread(backend.wait_for_calls, calls + 1)
        one = asyncio.ensure_future(batcher.embed(["cat sat", "mat"]))
        two = asyncio.ensure_future(batcher.embed(["cat sat"]))
        await until(batcher, lambda: batcher.queue_segments == 2)
        backend.release()
        _, first, second = await asyncio.gather(blocker, one, two)
        np.testing.assert_array_equal(first.vectors[0], second.vectors[0])
        seen = [seq for batch in backend.batches[calls:] for seq in batch]
        assert seen.count(ids_of(tiny, "cat sat")) == 1

    observer = Recorder()
    run_with(tiny, backend, body, observer=observer)
    assert (0, 0, 1) in observer.cache  # the second request joined the first one's text


def test_cache_answers_repeats_without_the_model(tiny: Embedder, backend: FaultyBackend) -> None:
    async def body(batcher: DynamicBatcher) -> None:
        first = await batcher.embed(["the cat", "a dog"])
        calls = backend.calls
        again = await batcher.embed(["a dog", "the cat"])
        short = await batcher.embed(["the cat"], EmbedOptions(dimensions=8))
        assert backend.calls == calls
        assert again.cache_hits == 2 and short.cache_hits == 1
        np.testing.assert_array_equal(again.vectors, first.vectors[::-1])
        assert again.tokens == first.tokens[::-1]
        np.testing.assert_allclose(short.vectors, tiny.embed(["the cat"], dimensions=8), atol=1e-6)
        other_prompt = await batcher.embed(["the cat"], EmbedOptions(prompt="query: "))
        assert other_prompt.cache_hits == 0 and backend.calls == calls + 1

    run_with(tiny, backend, body, cache_entries=100)


def test_texts_of_a_cancelled_request_are_dropped_before_inference(tiny: Embedder, backend: FaultyBackend) -> None:
    async def body(batcher: DynamicBatcher) -> None:
        backend.hold()
        calls = backend.calls
        blocker = asyncio.ensure_future(batcher.embed(["the dog"]))
        assert await asyncio.to_thread(backend.wait_for_calls, calls + 1)
        gone = asyncio.ensure_future(batcher.embed(["z z z", "y y"]))
        stays = asyncio.ensure_future(batcher.embed(["x x"]))
        await until(batcher, lambda: batcher.queue_segments == 3)
        gone.cancel()
        await until(batcher, lambda: batcher.queue_segments == 1)
        backend.release()
        await asyncio.gather(blocker, stays)
        with pytest.raises(asyncio.CancelledError):
            await gone
        seen = backend.sequences()
        assert ids_of(tiny, "z z z") not in seen and ids_of(tiny, "y y") not in seen
        assert ids_of(tiny, "x x") in seen

    observer = Recorder()
    run_with(tiny, backend, body, observer=observer)
    assert observer.dropped == 2


def test_admission_refuses_fast_beyond_the_request_limit(tiny: Embedder, backend: FaultyBackend) -> None:
    async def body(batcher: DynamicBatcher) -> None:
        backend.hold()
        first = [asyncio.ensure_future(batcher.embed([f"{c}"])) for c in "ab"]
        await until(batcher, lambda: batcher.in_flight_requests == 2)
        with pytest.raises(OverloadedError, match="too many concurrent requests") as refused:
            await batcher.embed(["c"])
        assert refused.value.retry_after >= 1
        backend.release()
        assert len(await asyncio.gather(*first)) == 2
        assert (await batcher.embed(["c"])).vectors.shape == (1, tiny.dim)

    run_with(tiny, backend, body, max_concurrent_requests=2)


def test_a_full_queue_refuses_instead_of_growing(tiny: Embedder, backend: FaultyBackend) -> None:
    async def body(batcher: DynamicBatcher) -> None:
        backend.hold()
        calls = backend.calls
        blocker = asyncio.ensure_future(batcher.embed(["the dog"]))
        assert await asyncio.to_thread(backend.wait_for_calls, calls + 1)
        with pytest.raises(OverloadedError, match="queue is full"):
            await batcher.embed(list("bcdef"))
        fits = asyncio.ensure_future(batcher.embed(list("bcde")))
        await until(batcher, lambda: batcher.queue_segments == 4)
        backend.release()
        await asyncio.gather(blocker, fits)
        assert batcher.queue_segments == 0

    run_with(tiny, backend, body, max_queue_segments=4)


def test_a_failing_backend_fails_requests_and_health_until_it_recovers(tiny: Embedder, backend: FaultyBackend) -> None:
    async def body(batcher: DynamicBatcher) -> None:
        backend.fail = True
        with pytest.raises(InferenceError, match="injected backend failure"):
            await batcher.embed(["the cat"])
        assert (await batcher.check_health()).status == "failing"
        backend.fail = False
        health = await batcher.check_health()  # a real probe through the worker
        assert health.status == "ok" and health.last_success_age_s is not None
        assert (await batcher.embed(["the cat"])).vectors.shape == (1, tiny.dim)

    run_with(tiny, backend, body)


def test_a_hung_worker_is_replaced_and_requests_fail_within_the_timeout(tiny: Embedder, backend: FaultyBackend) -> None:
    async def body(batcher: DynamicBatcher) -> None:
        backend.hold()
        started = time.monotonic()
        with pytest.raises(WorkerUnavailableError, match="stuck"):
            await batcher.embed(["the cat"])
        assert time.monotonic() - started < 5
        assert (await batcher.check_health()).status != "ok"  # the new worker hangs on the probe too
        backend.release()
        health = await batcher.check_health()
        assert health.status == "ok" and health.restarts >= 1
        np.testing.assert_allclose((await batcher.embed(["the cat"])).vectors, tiny.embed(["the cat"]), atol=1e-5)

    observer = Recorder()
    run_with(tiny, backend, body, observer=observer, inference_timeout_s=0.3)
    assert "stuck" in observer.restarts


def test_a_dead_worker_fails_its_batch_and_is_replaced(tiny: Embedder, backend: FaultyBackend) -> None:
    async def body(batcher: DynamicBatcher) -> None:
        backend.die = True
        with pytest.raises(WorkerUnavailableError, match="died"):
            await batcher.embed(["the cat"])
        # the request fails first; the watchdog thread replaces the worker next
        await until(batcher, lambda: batcher.health().status != "dead")
        health = await batcher.check_health()  # the watchdog started a new worker; a probe proves it
        assert health.status == "ok" and health.restarts == 1
        np.testing.assert_allclose((await batcher.embed(["the cat"])).vectors, tiny.embed(["the cat"]), atol=1e-5)

    observer = Recorder()
    run_with(tiny, backend, body, observer=observer)
    assert observer.restarts == ["dead"]


def test_requests_wait_for_warm_up(tiny: Embedder, backend: FaultyBackend) -> None:
    batcher = DynamicBatcher(Embedder(tiny.spec, backend, tiny.tokenizer, tiny.settings))
    batcher.start()
    try:
        with pytest.raises(WorkerUnavailableError, match="warming up"):
            asyncio.run(batcher.embed(["a"]))
        assert batcher.health().status == "starting"
        asyncio.run(batcher.warm_up())
        assert batcher.ready and batcher.health().status == "ok"
    finally:
        batcher.stop()
    assert batcher.health().status == "stopped"


def test_bad_input_and_options_raise_narrow_errors(tiny: Embedder, backend: FaultyBackend) -> None:
    async def body(batcher: DynamicBatcher) -> None:
        await batcher.embed(["a"])  # now cached, so the long text is the only miss
        with pytest.raises(InputTooLongError, match="input 1 has"):
            await batcher.embed(["a", words(100)], EmbedOptions(long_input="error"))
        with pytest.raises(EmptyInputError, match="input 1"):
            await batcher.embed(["a", "  "])
        with pytest.raises(ConfigError, match="dimensions"):
            await batcher.embed(["a"], EmbedOptions(dimensions=tiny.dim + 1))
        with pytest.raises(ConfigError, match="prompt"):
            await batcher.embed(["a"], EmbedOptions(prompt_name="nope"))
        assert batcher.in_flight_requests == 0 and batcher.queue_segments == 0
        long = [words(150, "b")]
        chunked = await batcher.embed(long, EmbedOptions(long_input="chunk"))
        np.testing.assert_allclose(chunked.vectors, tiny.embed(long, long_input="chunk"), atol=1e-5)

    run_with(tiny, backend, body, cache_entries=10)


def test_two_workers_run_batches_side_by_side_and_give_the_offline_vectors(
    tiny: Embedder, backend: FaultyBackend
) -> None:
    long = [words(150 + 7 * i, chr(98 + i)) for i in range(6)]  # chunked into windows that land in different batches
    short = [f"{chr(97 + i % 26)} dog ran {'c ' * (i % 11)}" for i in range(60)]

    async def body(batcher: DynamicBatcher) -> None:
        backend.hold()
        calls = backend.calls
        first = asyncio.ensure_future(batcher.embed(["held one"]))
        second = asyncio.ensure_future(batcher.embed([words(40, "q")]))
        assert await asyncio.to_thread(backend.wait_for_calls, calls + 2)  # both workers are inside forward at once
        assert batcher.health().busy_s is not None and batcher.queue_segments == 0
        backend.release()
        await asyncio.gather(first, second)
        options = EmbedOptions(long_input="chunk")
        outcomes = await asyncio.gather(
            *(batcher.embed([text], options) for text in long), *(batcher.embed([text]) for text in short)
        )
        expected = np.vstack([tiny.embed(long, long_input="chunk"), tiny.embed(short)])
        np.testing.assert_allclose(np.vstack([o.vectors for o in outcomes]), expected, atol=1e-5)
        assert batcher.health().workers == 2

    run_with(tiny, backend, body, workers=2, max_batch_tokens=96)


def test_with_two_workers_long_batches_keep_to_an_attention_budget(tiny: Embedder, backend: FaultyBackend) -> None:
    long = [words(28 + i, chr(108 + i)) for i in range(3)]  # about 30 tokens: 3 fit the 96-token budget
    short = [f"short {i}" for i in range(8)]

    async def body(batcher: DynamicBatcher) -> None:
        calls = backend.calls
        outcome = await batcher.embed(long)
        sizes = [len(batch) for batch in backend.batches[calls:]]
        assert sizes == [1, 1, 1]  # 2 rows x 30² tokens would pass 96 x 16 attention cells
        np.testing.assert_allclose(outcome.vectors, tiny.embed(long), atol=1e-5)
        calls = backend.calls
        await batcher.embed(short)  # short sequences: the token budget alone
        assert [len(batch) for batch in backend.batches[calls:]] == [8]

    run_with(tiny, backend, body, workers=2, long_sequence_tokens=16, max_batch_tokens=96)


def test_a_hung_worker_of_two_is_replaced_in_its_slot(tiny: Embedder, backend: FaultyBackend) -> None:
    async def body(batcher: DynamicBatcher) -> None:
        backend.hold()
        calls = backend.calls
        hung = [asyncio.ensure_future(batcher.embed([text])) for text in ("the cat", words(30, "z"))]
        assert await asyncio.to_thread(backend.wait_for_calls, calls + 2)
        for request in hung:
            with pytest.raises(WorkerUnavailableError, match="stuck"):
                await request
        assert batcher.health().restarts == 2
        backend.release()
        health = await batcher.check_health()
        assert health.status == "ok"
        texts = [f"after {i}" for i in range(20)]
        outcomes = await asyncio.gather(*(batcher.embed([t]) for t in texts))
        np.testing.assert_allclose(np.vstack([o.vectors for o in outcomes]), tiny.embed(texts), atol=1e-5)

    observer = Recorder()
    run_with(tiny, backend, body, observer=observer, workers=2, inference_timeout_s=0.3)
    assert observer.restarts == ["stuck", "stuck"]


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="workers"):
        BatcherSettings(workers=0)
    with pytest.raises(ConfigError, match="long_sequence_tokens"):
        BatcherSettings(long_sequence_tokens=0)
    with pytest.raises(ConfigError, match="max_batch_size"):
        BatcherSettings(max_batch_size=0)
    with pytest.raises(ConfigError, match="inference_timeout_s"):
        BatcherSettings(inference_timeout_s=0)


@pytest.mark.parametrize("prompt_name", [None, "query"])
def test_warm_up_fits_the_limit_so_the_error_policy_starts(
    make_tiny_bert: Callable[..., Path], prompt_name: str | None
) -> None:
    """The full-length warm-up text is as long as the limit allows and never over it (it was max_tokens words)."""
    path = make_tiny_bert(prompts={"query": "query : "}, max_seq_length=32)
    model = embedlab.load(str(path), backend="torch", long_input="error", prompt_name=prompt_name)
    short, full = model.warm_up_items()
    tokens = model.embed_with_report([full]).tokens[0]
    assert model.defaults.max_tokens - 4 < tokens <= model.defaults.max_tokens == 32  # a tiny "warm" is 4 tokens

    async def body(batcher: DynamicBatcher) -> None:
        assert batcher.ready
        outcome = await batcher.embed([short, full], EmbedOptions())
        assert outcome.tokens[1] == tokens

    serve(model, body)
