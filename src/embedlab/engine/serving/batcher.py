"""Dynamic batching across requests: the stages of :mod:`embedlab.engine.serving` wired together.

The batcher serves one model through the :class:`~embedlab.engine.serving.model.BatchModel` protocol: an
:class:`~embedlab.engine.embedder.Embedder` (requests: :meth:`DynamicBatcher.embed`) or a
:class:`~embedlab.engine.rerank.Reranker` (requests: :meth:`DynamicBatcher.rerank` and
:meth:`DynamicBatcher.predict`, whose items are (query, document) pairs). How a request flows
(TEI / Infinity style)::

    embed(texts, options) / rerank(query, documents, ...)   asyncio, in the server's event loop
      └─ admission (AdmissionGate): requests in flight bounded → OverloadedError (429) beyond it
      └─ model.resolve(options): defaults and limits, once
      └─ claim (a tokenizer thread; small requests inline): validate the items; look up the cache
         (embeddings only); join items already in flight (InflightTable); model.prepare the rest into
         segments; enqueue them (TokenBudgetQueue, bounded: OverloadedError when full)
    inference workers (WorkerPool: ``workers`` threads, one batch each at a time, sharing the model):
      └─ TokenBudgetQueue.assemble: the oldest waiting segment and its neighbours in length
      └─ model.encode(batch) → one row per segment; an item whose rows are all in → combine_windows →
         its future completes (cached, waiting requests woken)
    back in the request: wait for its items (gather_thread_futures); finish once per request →
    embed: Matryoshka truncation, normalisation, precision (the cache holds float vectors);
    rerank / predict: the model's activation unless raw scores (per request), the ranking → in the
    caller's order

Several workers run batches side by side on one shared model (ONNX Runtime sessions and torch modules
serve concurrent calls): on CPU, two workers of one thread each beat one worker of two threads, because
single-threaded batches have no per-operator barrier for the server's own threads to stall.

A request whose caller goes away (the server cancels ``embed``) releases its texts; texts nobody waits
for any more are dropped before inference. The watchdog fails a batch that runs longer than
``inference_timeout_s`` (its requests get :class:`WorkerUnavailableError`) and starts a fresh worker in
its slot; :meth:`DynamicBatcher.check_health` reports stuck / dead / failing workers and otherwise
proves health with a real round trip through the queue (:class:`HealthProbe`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import numpy as np

from embedlab.arrays import FloatArray
from embedlab.engine.cache import CachedVector, VectorCache, model_identity
from embedlab.engine.embedder import Embedder
from embedlab.engine.options import EmbedOptions
from embedlab.engine.pairs import rerank_pairs, validate_pairs
from embedlab.engine.postprocess import combine_windows, postprocess
from embedlab.engine.rerank import PairScores, Reranker, RerankOptions, RerankResult, check_top_n, ranked
from embedlab.engine.serving.admission import AdmissionGate, DrainRate
from embedlab.engine.serving.bridge import gather_thread_futures
from embedlab.engine.serving.health import HealthProbe, HealthRecord, WorkerHealth, health_status
from embedlab.engine.serving.jobs import TextJob, Ticket, attach_segments
from embedlab.engine.serving.model import BatchModel
from embedlab.engine.serving.observer import BatcherObserver, NullObserver
from embedlab.engine.serving.queue import BatchLimits, TokenBudgetQueue
from embedlab.engine.serving.registry import CLOSED, WorkRegistry
from embedlab.engine.serving.workers import RunningBatch, WorkerPool
from embedlab.engine.tokenize import validate_texts
from embedlab.engine.vector_precision import EmbeddingArray
from embedlab.errors import (
    ConfigError,
    EmbedlabError,
    InferenceError,
    InputTooLongError,
    ModelKindError,
    WorkerUnavailableError,
)
from embedlab.models.resolve import model_fingerprint
from embedlab.settings import BatcherSettings

log = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", Embedder, Reranker)

INLINE_MAX_TEXTS = 16  # requests this small are claimed in the event loop's thread ...
INLINE_MAX_CHARS = 4096  # ... if their texts hold at most this many characters in all


def _is_small(items: Sequence[Any]) -> bool:
    """Whether claiming ``items`` (texts, or pairs of texts) costs less than handing them to a thread (tens of µs)."""
    if not isinstance(items, list | tuple) or len(items) > INLINE_MAX_TEXTS:
        return False
    return sum(_chars(item) for item in items) <= INLINE_MAX_CHARS


def _chars(item: Any) -> int:
    """Characters of a text or a pair of texts (anything else counts as too many to claim inline)."""
    if isinstance(item, str):
        return len(item)
    if isinstance(item, tuple | list) and all(isinstance(t, str) for t in item):
        return sum(len(t) for t in item)
    return INLINE_MAX_CHARS


@dataclass(frozen=True)
class EmbedOutcome:
    """What :meth:`DynamicBatcher.embed` returns.

    Attributes:
        vectors: (n_texts, dim) float32 in the caller's order, or in the request's precision.
        tokens: per text, tokens embedded with the model's tokenizer (special tokens included).
        truncated: per text, whether it was cut at the token limit (also for a text answered from the cache).
        cache_hits: texts answered from the cache.
        timings: seconds spent: ``tokenize`` (the claim step, cache look-up included), ``queue``
            (longest wait of a text before its batch started), ``inference`` (forward batches that
            carried the request's texts, summed), ``total`` (admission to vectors).
    """

    vectors: EmbeddingArray
    tokens: list[int]
    truncated: list[bool]
    cache_hits: int
    timings: dict[str, float]

    @property
    def total_tokens(self) -> int:
        """Tokens embedded, summed over texts."""
        return int(sum(self.tokens))

    @property
    def n_truncated(self) -> int:
        """Texts cut at the token limit."""
        return sum(self.truncated)


class DynamicBatcher:
    """Batches the items of concurrent requests into token-budget batches for its inference workers.

    Args:
        model: the loaded model, an :class:`Embedder` or a :class:`Reranker` (any
            :class:`~embedlab.engine.serving.model.BatchModel`); only the worker threads call its ``encode``
            (concurrently when ``settings.workers`` > 1).
        settings: limits and timeouts.
        cache: an exact-match cache of combined vectors (embedding models only), or None for none.
        observer: receives batch / cache / drop / restart events.

    Use :meth:`start` (threads), then ``await`` :meth:`warm_up` (readiness), per request :meth:`embed`
    (an embedding model) or :meth:`rerank` / :meth:`predict` (a cross-encoder), :meth:`check_health` for
    ``/health``, and :meth:`stop` at shutdown.

    Raises:
        ConfigError: a cache given for a cross-encoder (rerank results are never cached, so a cache shared
            with an embedding model's batcher can never mix the two).
    """

    def __init__(
        self,
        model: BatchModel[Any, Any],
        settings: BatcherSettings | None = None,
        cache: VectorCache | None = None,
        observer: BatcherObserver | None = None,
    ):
        if cache is not None and not isinstance(model, Embedder):
            raise ConfigError(f"rerank results are not cached: give the batcher of {model.spec.name} no cache")
        self.model = model
        self.settings = limits = settings or BatcherSettings()
        self.cache = cache
        self.observer: BatcherObserver = observer or NullObserver()
        spec = model.spec
        self.identity = model_identity(spec.name, model_fingerprint(spec.path), model.backend.name)
        batch_limits = BatchLimits(
            limits.max_batch_tokens,
            limits.max_batch_size,
            limits.bucket_ratio,
            limits.max_attention_cells,
            limits.assembly_window,
        )
        self._queue = TokenBudgetQueue(batch_limits, limits.max_queue_segments)
        self._drain = DrainRate()
        self._work = WorkRegistry(self._queue, self.retry_after, self.observer.on_dropped)
        self._gate = AdmissionGate(limits.max_concurrent_requests, self.retry_after, self._work.notify)
        self._record = HealthRecord()
        self._pool = WorkerPool(
            self._work.cond,
            self._work.wake_all_locked,
            limits.workers,
            limits.inference_timeout_s,
            self._record,
            take_batch=self._queue.assemble,
            run_batch=self._run_batch,
            fail_jobs=self._work.fail,
            on_restart=self.observer.on_restart,
        )
        self._probe = HealthProbe(self.health, self._probe_round_trip, limits.health_max_age_s)
        self._claim_pool = ThreadPoolExecutor(limits.tokenizer_threads, thread_name_prefix="embedlab-tok")

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the inference workers and the watchdog (idempotent)."""
        self._pool.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the threads; waiting requests fail with :class:`WorkerUnavailableError`."""
        running = self._pool.stop()
        jobs = {id(job): job for job in self._work.close()}
        for batch in running:
            jobs.update({id(job): job for job in batch.jobs()})
        self._work.fail(list(jobs.values()), WorkerUnavailableError(CLOSED))
        self._pool.join_watchdog(timeout)
        self._claim_pool.shutdown(wait=False, cancel_futures=True)

    async def warm_up(self, items: Sequence[Any] | None = None) -> None:
        """Run a short and a full-length item (the model's ``warm_up_items``) through a worker, then report ready.

        Raises:
            WorkerUnavailableError / InferenceError: the round trip failed (the server must not start).
        """
        if items is None:
            items = self.model.warm_up_items()
        await self._round_trip(list(items), self.settings.inference_timeout_s * 2 + 30)
        self._record.ready = True

    @property
    def ready(self) -> bool:
        """True once :meth:`warm_up` succeeded."""
        return self._record.ready

    @property
    def queue_segments(self) -> int:
        """Segments waiting for inference now."""
        return self._queue.live

    @property
    def in_flight_requests(self) -> int:
        """Requests admitted and not yet answered."""
        return self._gate.admitted

    def retry_after(self) -> int:
        """Whole seconds a refused client should wait: the queue's drain time, 1 to 60."""
        return self._drain.retry_after(self._queue.live)

    def wait_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Block until ``condition()`` holds, re-checked whenever the queue, workers or admissions change.

        Returns whether it held within ``timeout`` seconds (for tests and tools; never on the event loop).
        """
        return self._work.wait_until(condition, timeout)

    # -- the request path ---------------------------------------------------------------------------

    async def embed(self, texts: Sequence[str], options: EmbedOptions | None = None) -> EmbedOutcome:
        """Embed ``texts`` with the other requests in flight; vectors in the caller's order.

        Cancelling the awaiting task (the client went away) releases the texts; those nobody else
        waits for are dropped before inference.

        Raises:
            ModelKindError: the batcher serves a cross-encoder.
            OverloadedError: too many requests in flight, or the queue is full (429).
            WorkerUnavailableError: not ready, worker stuck or dead, or over ``request_timeout_s`` (503).
            InputError, ConfigError: bad texts or options (400).
            InferenceError: the backend failed on a batch holding these texts (500).
        """
        embedder = self._served(Embedder, "embed texts")
        started = time.perf_counter()
        with self._gate.admit():
            self._check_ready()
            resolved = embedder.resolve(options)
            ticket = await self._compute(texts, resolved, validate_texts)
            entries, timings = self._entries(ticket, started)
            combined = np.stack([e.vector for e in entries])
            vectors = postprocess(
                combined, resolved.dimensions, resolved.normalize, resolved.precision, resolved.ranges
            )
            return EmbedOutcome(
                vectors=vectors,
                tokens=[e.tokens for e in entries],
                truncated=[e.truncated for e in entries],
                cache_hits=len(ticket.hits),
                timings=timings,
            )

    async def rerank(
        self,
        query: str,
        documents: Sequence[str],
        *,
        raw_scores: bool | None = None,
        truncate: bool | None = None,
        top_n: int | None = None,
    ) -> RerankResult:
        """Score each document against ``query`` with the other requests in flight, and rank them.

        The same answer as :meth:`Reranker.rerank <embedlab.engine.rerank.Reranker.rerank>` in process
        (arguments, defaults and errors alike); ``timings`` hold ``tokenize``, ``queue``, ``inference``, ``total``.

        Raises:
            ModelKindError: the batcher serves an embedding model.
            ConfigError: bad options, or a model of several labels (it cannot rank; see :meth:`predict`).
            OverloadedError, WorkerUnavailableError, InputError, InferenceError: as :meth:`embed`.
        """
        reranker = self._served(Reranker, "rerank")
        check_top_n(top_n)
        reranker.check_single_label()
        options = RerankOptions.from_kwargs(raw_scores=raw_scores, truncate=truncate)
        scores = await self._score(reranker, documents, lambda docs: rerank_pairs(query, docs), options)
        return ranked(scores, top_n)

    async def predict(
        self, pairs: Sequence[tuple[str, str]], *, raw_scores: bool | None = None, truncate: bool | None = None
    ) -> PairScores:
        """Score (query, document) pairs with the other requests in flight, as ``CrossEncoder.predict`` does.

        The same answer as :meth:`Reranker.predict <embedlab.engine.rerank.Reranker.predict>` in process:
        scores (n_pairs,) for a one-label model, (n_pairs, num_labels) otherwise.

        Raises:
            ModelKindError: the batcher serves an embedding model.
            ConfigError, OverloadedError, WorkerUnavailableError, InputError, InferenceError: as :meth:`rerank`.
        """
        reranker = self._served(Reranker, "score pairs")
        options = RerankOptions.from_kwargs(raw_scores=raw_scores, truncate=truncate)
        return await self._score(reranker, pairs, validate_pairs, options)

    async def _score(
        self, reranker: Reranker, items: Any, validate: Callable[[Any], list[Any]], options: RerankOptions
    ) -> PairScores:
        """One request of pairs: admitted, computed with the others, its rows' activation applied once."""
        started = time.perf_counter()
        with self._gate.admit():
            self._check_ready()
            resolved = reranker.resolve(options)
            ticket = await self._compute(items, resolved, validate)
            entries, timings = self._entries(ticket, started)
            jobs = [job for _, job in ticket.jobs]  # never cached: every pair has its job, in pair order
            return PairScores(
                scores=reranker.score(np.stack([e.vector for e in entries]), resolved),
                tokens=[e.tokens for e in entries],
                input_tokens=[job.input_tokens for job in jobs],
                truncated=[job.truncated for job in jobs],
                timings=timings,
            )

    def _served(self, kind: type[ModelT], action: str) -> ModelT:
        """The model if it is of the ``kind`` a request method needs, else :class:`ModelKindError`."""
        if not isinstance(self.model, kind):
            what = "cross-encoder" if isinstance(self.model, Reranker) else "embedding"
            raise ModelKindError(self.model.spec.name, what, f"its batcher was asked to {action}")
        return self.model

    def _check_ready(self) -> None:
        if not self._record.ready:
            raise WorkerUnavailableError("the model is still warming up; retry shortly", retry_after=2)

    async def _compute(self, items: Any, resolved: Any, validate: Callable[[Any], list[Any]]) -> Ticket:
        """Claim the request's items (checked by ``validate``) and wait until every one is computed.

        Cancelling the awaiting task releases the items; those nobody else waits for are dropped before inference.
        """
        loop = asyncio.get_running_loop()
        if _is_small(items):  # cheaper here than a hop to the tokenizer thread and back
            ticket = self._claim(items, resolved, validate)
        else:
            claimed = loop.run_in_executor(self._claim_pool, self._claim, items, resolved, validate)
            try:
                ticket = await asyncio.shield(claimed)
            except asyncio.CancelledError:
                claimed.add_done_callback(self._release_when_claimed)
                raise
        try:
            waiter = gather_thread_futures(loop, [job.future for _, job in ticket.jobs])
            try:
                await asyncio.wait_for(waiter, self.settings.request_timeout_s)
            except TimeoutError as exc:
                raise WorkerUnavailableError(
                    f"request not done within {self.settings.request_timeout_s:g} s "
                    f"({self._queue.live} segments queued); retry later",
                    retry_after=self.retry_after(),
                ) from exc
        finally:
            self._work.release(ticket)
        return ticket

    def _entries(self, ticket: Ticket, started: float) -> tuple[list[CachedVector], dict[str, float]]:
        """The request's rows (combined, before postprocessing) in the caller's order, and its timings."""
        entries: list[CachedVector | None] = [None] * ticket.n_texts
        for index, entry in ticket.hits.items():
            entries[index] = entry
        queue_s = 0.0
        batches: dict[int, float] = {}
        for index, job in ticket.jobs:
            entries[index] = job.future.result()
            if job.started_at is not None:
                queue_s = max(queue_s, job.started_at - job.enqueued_at)
            batches.update(job.batch_seconds)
        timings = {
            "tokenize": ticket.tokenize_seconds,
            "queue": queue_s,
            "inference": float(sum(batches.values())),
            "total": time.perf_counter() - started,
        }
        return [e for e in entries if e is not None], timings

    def _claim(self, items: Any, resolved: Any, validate: Callable[[Any], list[Any]]) -> Ticket:
        """The claim step: validate, cache look-up, join in-flight items, tokenise and enqueue the rest."""
        t0 = time.perf_counter()
        checked = validate(items)
        ticket = Ticket(n_texts=len(checked))
        keys = [self.model.item_key(self.identity, item, resolved) for item in checked]
        found = self.cache.get_many(keys) if self.cache is not None else [None] * len(keys)
        new_jobs = self._work.claim(ticket, keys, found)
        self.observer.on_cache(len(ticket.hits), len(new_jobs), len(ticket.jobs) - len(new_jobs))
        if new_jobs:
            try:
                self._tokenize_and_enqueue(checked, new_jobs, resolved)
            except BaseException as exc:
                error: BaseException = exc
                if isinstance(exc, InputTooLongError):  # name the caller's index, not the index among misses
                    error = type(exc)(new_jobs[exc.index][0], exc.n_tokens, exc.limit)
                failure = error if isinstance(error, Exception) else WorkerUnavailableError("request abandoned")
                self._work.fail([job for _, job in new_jobs], failure)
                self._work.release(ticket)
                if error is exc:
                    raise
                raise error from exc
        ticket.tokenize_seconds = time.perf_counter() - t0
        return ticket

    def _tokenize_and_enqueue(self, items: list[Any], new_jobs: list[tuple[int, TextJob]], resolved: Any) -> None:
        tokenized = self.model.prepare([items[index] for index, _ in new_jobs], resolved)
        jobs = [job for _, job in new_jobs]
        work = attach_segments(
            jobs,
            tokenized.segments,
            tokenized.tokens,
            input_tokens=tokenized.input_tokens,
            truncated=tokenized.truncated,
        )
        self._work.enqueue(work, jobs, time.monotonic())

    def _release_when_claimed(self, claimed: asyncio.Future[Ticket]) -> None:
        if not claimed.cancelled() and claimed.exception() is None:
            self._work.release(claimed.result())

    # -- the workers' side --------------------------------------------------------------------------

    def _run_batch(self, running: RunningBatch) -> None:
        """Run one batch on the model (a worker thread, outside the lock) and hand its rows on."""
        segments = [item.segment for item in running.items]
        t0 = time.monotonic()
        error: EmbedlabError | None = None
        try:
            out = self.model.encode(segments)
        except EmbedlabError as exc:
            error = exc
        except Exception as exc:
            error = InferenceError(f"inference failed on a batch of {len(segments)} segments: {exc!r}")
            error.__cause__ = exc
        seconds = time.monotonic() - t0
        real_tokens = sum(item.length for item in running.items)
        with self._work.cond:
            if not self._pool.settle(running):  # abandoned by the watchdog; its jobs failed already
                return
            if error is None:
                self._record.success(time.monotonic())
                self._drain.observe(len(segments), seconds)
            else:
                self._record.failure(str(error))
            self._work.wake_all_locked()
        self.observer.on_batch(len(segments), real_tokens, 0 if error else out.padded_tokens, seconds, error is None)
        if error is not None:
            log.warning("inference batch failed: %s", error)
            self._work.fail(running.jobs(), error)
            return
        self._store_rows(running, out.pooled, seconds)

    def _store_rows(self, running: RunningBatch, pooled: FloatArray, seconds: float) -> None:
        """Store a batch's rows; combine, cache and deliver every item whose rows are all in."""
        finished = self._work.store_rows(running.items, pooled, running.batch_id, seconds)
        if not finished:
            return
        rows = np.stack([row for job in finished for row in job.rows if row is not None])
        segments = [replace(s, text_index=j) for j, job in enumerate(finished) for s in job.segments]
        combined = combine_windows(rows, segments, len(finished))
        entries = [CachedVector(combined[j].copy(), job.tokens, job.truncated) for j, job in enumerate(finished)]
        cacheable = [(job.key, entry) for job, entry in zip(finished, entries, strict=True) if job.key is not None]
        if self.cache is not None and cacheable:
            try:
                self.cache.put_many(cacheable)
            except Exception as exc:  # a cache failure must never fail the request
                log.warning("cache write failed: %s", exc)
        self._work.deliver(finished, entries)

    # -- health -----------------------------------------------------------------------------------------

    def health(self) -> WorkerHealth:
        """A snapshot of the workers (no round trip; see :meth:`check_health`)."""
        now = time.monotonic()
        with self._work.cond:
            busy = self._pool.busy_s(now)
            status = health_status(
                stopping=self._pool.stopping,
                dead=bool(self._pool.exited),
                busy_s=busy,
                inference_timeout_s=self.settings.inference_timeout_s,
                record=self._record,
            )
            success = self._record.last_success_at
            return WorkerHealth(
                status=status,
                last_success_age_s=now - success if success is not None else None,
                busy_s=busy,
                last_error=self._record.last_error,
                restarts=self._record.restarts,
                queue_segments=self._queue.live,
                in_flight_requests=self._gate.admitted,
                workers=self.settings.workers,
            )

    async def check_health(self) -> WorkerHealth:
        """Health proven by a recent successful batch, else by a real round trip through the queue now.

        Returns a snapshot whose ``status`` is ``ok`` only if the workers are alive, not stuck, and a batch
        succeeded within ``health_max_age_s`` (or the probe just did).
        """
        return await self._probe.check()

    async def _probe_round_trip(self) -> None:
        await self._round_trip(self.model.warm_up_items()[:1], self.settings.inference_timeout_s + 1.0)

    async def _round_trip(self, items: list[Any], timeout: float) -> None:
        """Items through the queue and a worker, bypassing admission, cache and de-duplication."""
        loop = asyncio.get_running_loop()
        tokenized = await loop.run_in_executor(self._claim_pool, self.model.prepare, items, self.model.defaults)
        jobs = [TextJob(None) for _ in items]
        work = attach_segments(jobs, tokenized.segments, tokenized.tokens)
        self._work.enqueue(work, jobs, time.monotonic(), bounded=False)
        try:
            await asyncio.wait_for(gather_thread_futures(loop, [job.future for job in jobs]), timeout)
        except TimeoutError as exc:
            raise WorkerUnavailableError(f"no inference round trip within {timeout:g} s") from exc
        finally:
            for job in jobs:
                if not job.future.done():
                    self._work.cancel(job)
