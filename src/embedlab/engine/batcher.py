"""Dynamic batching across requests: one queue of segments, one inference worker, a future per text.

How a request flows (TEI / Infinity style)::

    embed(texts, options)                       asyncio, in the server's event loop
      └─ admission: a bounded count of requests in flight → OverloadedError (429) beyond it
      └─ tokenizer step (a thread; small requests inline): validate; look up the cache; join texts
         already in flight; Embedder.prepare the rest into segments; enqueue them (bounded:
         OverloadedError when full)
    inference workers (``workers`` threads, one batch each at a time, sharing the model):
      └─ assemble a batch from the queue: the oldest waiting segment and its neighbours in length
         (plan_batches over a window of the queue: a token budget with length bucketing)
      └─ Embedder.encode_segments(batch) → pooled rows → per-text futures complete
         (chunk windows combined, result cached, waiting requests woken)
    back in embed: wait for the request's texts; Embedder.finish once per request (Matryoshka
    truncation, normalisation) → vectors in the caller's order

Several workers run batches side by side on one shared model (ONNX Runtime sessions and torch modules
serve concurrent calls): on CPU, two workers of one thread each beat one worker of two threads, because
single-threaded batches have no per-operator barrier for the server's own threads to stall.

A request whose caller goes away (the server cancels ``embed``) releases its texts; texts nobody waits
for any more are dropped before inference. A watchdog thread fails a batch that runs longer than
``inference_timeout_s`` (its requests get :class:`WorkerUnavailableError`), abandons the stuck thread
and starts a fresh worker in its slot; :meth:`DynamicBatcher.check_health` reports stuck / dead /
failing workers and otherwise proves health with a real round trip through the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

from embedlab.engine.batching import plan_batches
from embedlab.engine.cache import CachedVector, InflightTable, VectorCache, cache_key, model_identity
from embedlab.engine.embedder import Embedder
from embedlab.engine.tokenize import LONG_INPUT_POLICIES, LongInputPolicy, Segment, validate_texts
from embedlab.errors import (
    ConfigError,
    EmbedlabError,
    InferenceError,
    InputTooLongError,
    OverloadedError,
    WorkerUnavailableError,
)
from embedlab.models.resolve import model_fingerprint

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]
HealthStatus = Literal["ok", "starting", "stuck", "dead", "failing", "stopped"]


INLINE_MAX_TEXTS = 16  # requests this small are tokenised in the event loop's thread ...
INLINE_MAX_CHARS = 4096  # ... if their texts hold at most this many characters in all


def _is_small(texts: Sequence[str]) -> bool:
    """Whether the tokenizer step of ``texts`` costs less than handing it to a thread (tens of µs)."""
    if not isinstance(texts, list | tuple) or len(texts) > INLINE_MAX_TEXTS:
        return False
    return sum(len(t) if isinstance(t, str) else INLINE_MAX_CHARS for t in texts) <= INLINE_MAX_CHARS


@dataclass(frozen=True)
class EmbedOptions:
    """Per-request options; None means the engine setting, then the model's default.

    Attributes:
        prompt: text prepended to every input.
        prompt_name: one of the model's named prompts instead.
        long_input: ``truncate``, ``error`` or ``chunk`` for texts over the token limit.
        max_tokens: token limit per text below the model's own (special tokens included).
        dimensions: keep the first N values (Matryoshka), re-normalised when normalising.
        normalize: L2-normalise the vectors.
    """

    prompt: str | None = None
    prompt_name: str | None = None
    long_input: LongInputPolicy | None = None
    max_tokens: int | None = None
    dimensions: int | None = None
    normalize: bool | None = None


@dataclass(frozen=True)
class BatcherSettings:
    """Limits of the dynamic batcher.

    Attributes:
        max_batch_tokens: padded tokens per forward batch (batch size × longest sequence).
        max_batch_size: sequences per forward batch at most.
        bucket_ratio: length bucketing: a batch only takes segments at least ``longest / bucket_ratio``
            long, so padding stays within that multiple of the real tokens (None: budget only).
        max_queue_segments: segments waiting for inference at most; a request that would go over is
            refused with :class:`OverloadedError`.
        max_concurrent_requests: requests admitted at once (tokenising, queued or running); more are
            refused with :class:`OverloadedError`.
        inference_timeout_s: one forward batch running longer than this means the worker is stuck.
        request_timeout_s: a request not done after this many seconds fails with
            :class:`WorkerUnavailableError`.
        health_max_age_s: a successful batch younger than this proves health without a new probe.
        tokenizer_threads: threads of the tokenizer step.
        assembly_window: oldest queued segments the batcher considers when it assembles a batch.
        workers: inference worker threads running batches side by side on the one model. Attention
            memory grows with batch tokens × sequence length, so with several workers a batch of
            sequences over ``long_sequence_tokens`` holds at most ``max_batch_tokens ×
            long_sequence_tokens`` attention cells (batch size × longest²): two workers' long batches
            then hold about the attention memory of one full-budget batch.
        long_sequence_tokens: see ``workers``.
    """

    max_batch_tokens: int = 8192
    max_batch_size: int = 256
    bucket_ratio: float | None = 1.05
    max_queue_segments: int = 65536
    max_concurrent_requests: int = 512
    inference_timeout_s: float = 30.0
    request_timeout_s: float = 120.0
    health_max_age_s: float = 10.0
    tokenizer_threads: int = 1
    assembly_window: int = 4096
    workers: int = 1
    long_sequence_tokens: int = 128

    def __post_init__(self) -> None:
        for name in ("max_batch_tokens", "max_batch_size", "max_queue_segments", "max_concurrent_requests"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.bucket_ratio is not None and self.bucket_ratio < 1.0:
            raise ConfigError(f"bucket_ratio must be ≥ 1.0, got {self.bucket_ratio}")
        if min(self.tokenizer_threads, self.assembly_window, self.workers, self.long_sequence_tokens) < 1:
            raise ConfigError("tokenizer_threads, assembly_window, workers and long_sequence_tokens must be at least 1")
        for name in ("inference_timeout_s", "request_timeout_s", "health_max_age_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")


@dataclass(frozen=True)
class EmbedOutcome:
    """What :meth:`DynamicBatcher.embed` returns.

    Attributes:
        vectors: (n_texts, dim) float32 in the caller's order.
        tokens: per text, tokens embedded with the model's tokenizer (special tokens included).
        cache_hits: texts answered from the cache.
        timings: seconds spent: ``tokenize`` (tokenizer step, cache look-up included), ``queue``
            (longest wait of a text before its batch started), ``inference`` (forward batches that
            carried the request's texts, summed), ``total`` (admission to vectors).
    """

    vectors: FloatArray
    tokens: list[int]
    cache_hits: int
    timings: dict[str, float]

    @property
    def total_tokens(self) -> int:
        """Tokens embedded, summed over texts."""
        return int(sum(self.tokens))


@dataclass(frozen=True)
class WorkerHealth:
    """A snapshot of the inference worker.

    Attributes:
        status: ``ok``; ``starting`` (warm-up not done); ``stuck`` (a batch over the inference
            timeout); ``dead`` (the worker thread ended); ``failing`` (the last batch raised);
            ``stopped``.
        last_success_age_s: seconds since a batch last succeeded, or None if none has.
        busy_s: seconds the longest-running current batch has run, or None when every worker idles.
        last_error: message of the last failure, or None.
        restarts: workers replaced after being stuck or dead.
        workers: inference worker slots.
        queue_segments: segments waiting for inference.
        in_flight_requests: requests admitted and not yet answered.
    """

    status: HealthStatus
    last_success_age_s: float | None
    busy_s: float | None
    last_error: str | None
    restarts: int
    queue_segments: int
    in_flight_requests: int
    workers: int = 1


class BatcherObserver(Protocol):
    """Receives engine events (the server turns them into Prometheus metrics)."""

    def on_batch(self, segments: int, real_tokens: int, padded_tokens: int, seconds: float, ok: bool) -> None:
        """A forward batch finished (or failed after ``seconds``)."""
        ...

    def on_cache(self, hits: int, misses: int, joined: int) -> None:
        """A request's cache look-up: texts found, texts to compute, texts joined to work in flight."""
        ...

    def on_dropped(self, segments: int) -> None:
        """Segments dropped before inference because nobody waits for them any more."""
        ...

    def on_restart(self, reason: str) -> None:
        """The worker was replaced (``stuck`` or ``dead``)."""
        ...


class _NullObserver:
    def on_batch(self, segments: int, real_tokens: int, padded_tokens: int, seconds: float, ok: bool) -> None:
        pass

    def on_cache(self, hits: int, misses: int, joined: int) -> None:
        pass

    def on_dropped(self, segments: int) -> None:
        pass

    def on_restart(self, reason: str) -> None:
        pass


class _TextJob:
    """One text being computed: its segments, their pooled rows and the future its requests wait on."""

    __slots__ = (
        "batch_seconds",
        "cancelled",
        "enqueued_at",
        "future",
        "key",
        "queued",
        "refs",
        "remaining",
        "rows",
        "segments",
        "started_at",
        "tokens",
    )

    def __init__(self, key: bytes | None) -> None:
        self.key = key
        self.future: Future[CachedVector] = Future()
        self.segments: list[Segment] = []
        self.rows: list[FloatArray | None] = []
        self.remaining = 0
        self.queued = 0
        self.tokens = 0
        self.refs = 1
        self.cancelled = False
        self.enqueued_at = 0.0
        self.started_at: float | None = None
        self.batch_seconds: dict[int, float] = {}


@dataclass(frozen=True)
class _WorkItem:
    job: _TextJob
    slot: int
    segment: Segment
    length: int


@dataclass
class _Running:
    batch_id: int
    slot: int
    generation: int
    started: float
    items: list[_WorkItem]


@dataclass
class _Ticket:
    """One request's claim: cached entries by text index, and the jobs it waits for."""

    n_texts: int
    hits: dict[int, CachedVector] = field(default_factory=dict)
    jobs: list[tuple[int, _TextJob]] = field(default_factory=list)
    tokenize_seconds: float = 0.0
    released: bool = False


@dataclass(frozen=True)
class _Resolved:
    prompt: str
    max_tokens: int
    long_input: LongInputPolicy
    dimensions: int | None
    normalize: bool


class DynamicBatcher:
    """Batches the texts of concurrent requests into token-budget batches for its inference workers.

    Args:
        embedder: the loaded model; only the worker threads call ``encode_segments`` (concurrently when
            ``settings.workers`` > 1).
        settings: limits and timeouts.
        cache: an exact-match cache of combined vectors, or None for none.
        observer: receives batch / cache / drop / restart events.

    Use :meth:`start` (threads), then ``await`` :meth:`warm_up` (readiness), :meth:`embed` per request,
    :meth:`check_health` for ``/health``, and :meth:`stop` at shutdown.
    """

    def __init__(
        self,
        embedder: Embedder,
        settings: BatcherSettings | None = None,
        cache: VectorCache | None = None,
        observer: BatcherObserver | None = None,
    ):
        self.embedder = embedder
        self.settings = settings or BatcherSettings()
        self.cache = cache
        self.observer: BatcherObserver = observer or _NullObserver()
        spec = embedder.spec
        self.identity = model_identity(spec.name, model_fingerprint(spec.path), embedder.backend.name)
        self._cond = threading.Condition()
        self._pending: deque[_WorkItem] = deque()
        self._live_pending = 0
        self._dead_pending = 0
        self._inflight: InflightTable[bytes, _TextJob] = InflightTable()
        self._running: dict[int, _Running] = {}  # by worker slot
        self._generations = [0] * self.settings.workers  # the live worker's generation, by slot
        self._generation_counter = 0
        self._exited: set[int] = set()  # slots whose worker thread ended unexpectedly
        self._stopping = False
        self._started = False
        self._ready = False
        self._batch_counter = 0
        self._last_success_at: float | None = None
        self._last_outcome_ok = True
        self._last_error: str | None = None
        self._restarts = 0
        self._admitted = 0
        self._admission_lock = threading.Lock()
        self._segments_per_s = 0.0
        self._probe: asyncio.Task[bool] | None = None
        self._tokenizer_pool = ThreadPoolExecutor(self.settings.tokenizer_threads, thread_name_prefix="embedlab-tok")
        self._watchdog: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the inference worker and the watchdog threads (idempotent)."""
        with self._cond:
            if self._started:
                return
            self._started = True
            for slot in range(self.settings.workers):
                self._spawn_worker_locked(slot)
        self._watchdog = threading.Thread(target=self._watchdog_main, name="embedlab-watchdog", daemon=True)
        self._watchdog.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the threads; waiting requests fail with :class:`WorkerUnavailableError`."""
        with self._cond:
            self._stopping = True
            pending = list(self._pending)
            self._pending.clear()
            self._live_pending = self._dead_pending = 0
            running = list(self._running.values())
            self._cond.notify_all()
        error = WorkerUnavailableError("the server is shutting down")
        jobs = {id(item.job): item.job for item in pending}
        for batch in running:
            jobs.update({id(item.job): item.job for item in batch.items})
        for job in jobs.values():
            self._settle(job, error=error)
        if self._watchdog is not None:
            self._watchdog.join(timeout)
        self._tokenizer_pool.shutdown(wait=False, cancel_futures=True)

    async def warm_up(self, texts: Sequence[str] | None = None) -> None:
        """Run a short and a full-length text through the worker, then report ready.

        Raises:
            WorkerUnavailableError / InferenceError: the round trip failed (the server must not start).
        """
        if texts is None:
            limit = self.embedder.settings.max_tokens or self.embedder.spec.max_tokens
            texts = ["warm up", " ".join(["warm"] * limit)]
        await self._round_trip(list(texts), self.settings.inference_timeout_s * 2 + 30)
        self._ready = True

    @property
    def ready(self) -> bool:
        """True once :meth:`warm_up` succeeded."""
        return self._ready

    @property
    def queue_segments(self) -> int:
        """Segments waiting for inference now."""
        return self._live_pending

    @property
    def in_flight_requests(self) -> int:
        """Requests admitted and not yet answered."""
        return self._admitted

    # -- admission --------------------------------------------------------------------------------

    def retry_after(self) -> int:
        """Whole seconds a refused client should wait: the queue's drain time, 1 to 60."""
        rate = self._segments_per_s
        wait = self._live_pending / rate if rate > 0 else 1.0
        return int(min(60, max(1, math.ceil(wait))))

    @contextlib.contextmanager
    def _admission(self) -> Iterator[None]:
        with self._admission_lock:
            if self._admitted >= self.settings.max_concurrent_requests:
                raise OverloadedError(
                    f"too many concurrent requests (limit {self.settings.max_concurrent_requests}); retry shortly",
                    retry_after=self.retry_after(),
                )
            self._admitted += 1
        try:
            yield
        finally:
            with self._admission_lock:
                self._admitted -= 1

    # -- the request path ---------------------------------------------------------------------------

    def _resolve(self, options: EmbedOptions) -> _Resolved:
        embedder = self.embedder
        spec = embedder.spec
        prompt_name = options.prompt_name
        if options.prompt is None and prompt_name is None:
            prompt_name = embedder.settings.prompt_name
        prompt = embedder.resolve_prompt(options.prompt, prompt_name)
        limit = options.max_tokens or embedder.settings.max_tokens or spec.max_tokens
        if not 1 <= limit <= spec.max_tokens:
            raise ConfigError(f"max_tokens must be between 1 and the model's limit {spec.max_tokens}, got {limit}")
        policy = options.long_input or embedder.settings.long_input
        if policy not in LONG_INPUT_POLICIES:
            raise ConfigError(f"unknown long-input policy {policy!r}; choose one of {', '.join(LONG_INPUT_POLICIES)}")
        dims = options.dimensions if options.dimensions is not None else embedder.settings.dimensions
        if dims is not None and not 1 <= dims <= spec.dim:
            raise ConfigError(f"dimensions must be between 1 and the model's {spec.dim}, got {dims}")
        normalize = spec.normalize if options.normalize is None else bool(options.normalize)
        return _Resolved(prompt, int(limit), policy, dims, normalize)

    async def embed(self, texts: Sequence[str], options: EmbedOptions | None = None) -> EmbedOutcome:
        """Embed ``texts`` with the other requests in flight; vectors in the caller's order.

        Cancelling the awaiting task (the client went away) releases the texts; those nobody else
        waits for are dropped before inference.

        Raises:
            OverloadedError: too many requests in flight, or the queue is full (429).
            WorkerUnavailableError: not ready, worker stuck or dead, or over ``request_timeout_s`` (503).
            InputError, ConfigError: bad texts or options (400).
            InferenceError: the backend failed on a batch holding these texts (500).
        """
        started = time.perf_counter()
        options = options or EmbedOptions()
        with self._admission():
            if not self._ready:
                raise WorkerUnavailableError("the model is still warming up; retry shortly", retry_after=2)
            resolved = self._resolve(options)
            loop = asyncio.get_running_loop()
            if _is_small(texts):  # cheaper here than a hop to the tokenizer thread and back
                ticket = self._stage(texts, resolved)
            else:
                staged = loop.run_in_executor(self._tokenizer_pool, self._stage, texts, resolved)
                try:
                    ticket = await asyncio.shield(staged)
                except asyncio.CancelledError:
                    staged.add_done_callback(self._release_when_staged)
                    raise
            try:
                waiter = self._bridge(loop, [job for _, job in ticket.jobs])
                try:
                    await asyncio.wait_for(waiter, self.settings.request_timeout_s)
                except TimeoutError as exc:
                    raise WorkerUnavailableError(
                        f"request not done within {self.settings.request_timeout_s:g} s "
                        f"({self._live_pending} segments queued); retry later",
                        retry_after=self.retry_after(),
                    ) from exc
            finally:
                self._release(ticket)
            return self._finish(ticket, resolved, started)

    def _finish(self, ticket: _Ticket, resolved: _Resolved, started: float) -> EmbedOutcome:
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
        combined = np.stack([e.vector for e in entries if e is not None])
        identity = [Segment(i, [], [], 1) for i in range(ticket.n_texts)]
        vectors = self.embedder.finish(
            combined, identity, ticket.n_texts, dimensions=resolved.dimensions, normalize=resolved.normalize
        )
        timings = {
            "tokenize": ticket.tokenize_seconds,
            "queue": queue_s,
            "inference": float(sum(batches.values())),
            "total": time.perf_counter() - started,
        }
        tokens = [e.tokens for e in entries if e is not None]
        return EmbedOutcome(vectors=vectors, tokens=tokens, cache_hits=len(ticket.hits), timings=timings)

    def _stage(self, texts: Sequence[str], resolved: _Resolved) -> _Ticket:
        """The tokenizer step (a pool thread): validate, cache look-up, join in-flight texts, tokenise, enqueue."""
        t0 = time.perf_counter()
        items = validate_texts(texts)
        ticket = _Ticket(n_texts=len(items))
        keys = [
            cache_key(
                self.identity,
                text,
                prompt=resolved.prompt,
                max_tokens=resolved.max_tokens,
                long_input=resolved.long_input,
                chunk_overlap=self.embedder.settings.chunk_overlap,
            )
            for text in items
        ]
        found = self.cache.get_many(keys) if self.cache is not None else [None] * len(keys)
        new_jobs: list[tuple[int, _TextJob]] = []
        with self._cond:
            if self._stopping:
                raise WorkerUnavailableError("the server is shutting down")
            for index, (key, entry) in enumerate(zip(keys, found, strict=True)):
                if entry is not None:
                    ticket.hits[index] = entry
                    continue
                job, created = self._inflight.join_or_create(key, lambda key=key: _TextJob(key))  # type: ignore[misc]
                if created:
                    new_jobs.append((index, job))
                else:
                    job.refs += 1
                ticket.jobs.append((index, job))
        self.observer.on_cache(len(ticket.hits), len(new_jobs), len(ticket.jobs) - len(new_jobs))
        if new_jobs:
            try:
                self._tokenize_and_enqueue(items, new_jobs, resolved)
            except BaseException as exc:
                error: BaseException = exc
                if isinstance(exc, InputTooLongError):  # name the caller's index, not the index among misses
                    error = InputTooLongError(new_jobs[exc.index][0], exc.n_tokens, exc.limit)
                failure = error if isinstance(error, Exception) else WorkerUnavailableError("request abandoned")
                for _, job in new_jobs:
                    self._settle(job, error=failure)
                self._release(ticket)
                if error is exc:
                    raise
                raise error from exc
        ticket.tokenize_seconds = time.perf_counter() - t0
        return ticket

    def _tokenize_and_enqueue(
        self, items: list[str], new_jobs: list[tuple[int, _TextJob]], resolved: _Resolved
    ) -> None:
        tokenized = self.embedder.prepare(
            [items[index] for index, _ in new_jobs],
            prompt=resolved.prompt,
            long_input=resolved.long_input,
            max_tokens=resolved.max_tokens,
        )
        work: list[_WorkItem] = []
        for segment in tokenized.segments:
            job = new_jobs[segment.text_index][1]
            work.append(_WorkItem(job, len(job.segments), segment, len(segment.ids)))
            job.segments.append(replace(segment, text_index=0))
        for position, (_, job) in enumerate(new_jobs):
            job.tokens = tokenized.tokens[position]
            job.rows = [None] * len(job.segments)
            job.remaining = len(job.segments)
        with self._cond:
            limit = self.settings.max_queue_segments
            if self._live_pending + len(work) > limit:
                raise OverloadedError(
                    f"the queue is full ({self._live_pending} segments waiting, limit {limit}); retry shortly",
                    retry_after=self.retry_after(),
                )
            now = time.monotonic()
            for _, job in new_jobs:
                job.enqueued_at = now
                job.queued = job.remaining
            self._pending.extend(work)
            self._live_pending += len(work)
            self._cond.notify_all()

    def _bridge(self, loop: asyncio.AbstractEventLoop, jobs: list[_TextJob]) -> asyncio.Future[None]:
        """One asyncio future that completes when every job's (thread) future has, or fails with the first error.

        The job futures are shared with other requests, so they are never cancelled from here.
        """
        done: asyncio.Future[None] = loop.create_future()
        if not jobs:
            done.set_result(None)
            return done
        remaining = [len(jobs)]
        lock = threading.Lock()

        def settle(error: BaseException | None) -> None:
            if done.done():
                return
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)

        def on_done(future: Future[CachedVector]) -> None:
            error = future.exception()
            with lock:
                remaining[0] -= 1
                last = remaining[0] == 0
            if error is not None or last:
                with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting any more
                    loop.call_soon_threadsafe(settle, error)

        for job in jobs:
            job.future.add_done_callback(on_done)
        return done

    def _release(self, ticket: _Ticket) -> None:
        """The request no longer waits: texts nobody else waits for are dropped from the queue."""
        with self._cond:
            if ticket.released:
                return
            ticket.released = True
            for _, job in ticket.jobs:
                job.refs -= 1
                if job.refs <= 0 and not job.future.done() and not job.cancelled:
                    if job.queued:
                        self.observer.on_dropped(job.queued)
                    self._cancel_locked(job)

    def _release_when_staged(self, staged: asyncio.Future[_Ticket]) -> None:
        if not staged.cancelled() and staged.exception() is None:
            self._release(staged.result())

    def _cancel_locked(self, job: _TextJob) -> None:
        """Take a job out: its queued segments become dead weight the worker skips (compacted when many)."""
        job.cancelled = True
        self._live_pending -= job.queued
        self._dead_pending += job.queued
        job.queued = 0
        if job.key is not None:
            self._inflight.discard(job.key, job)
        if self._dead_pending > max(1024, self._live_pending):
            self._pending = deque(item for item in self._pending if not item.job.cancelled)
            self._dead_pending = 0

    def _settle(self, job: _TextJob, *, error: BaseException | None = None, entry: CachedVector | None = None) -> None:
        """Complete a job's future once (an error also takes its queued segments out)."""
        if error is not None:
            with self._cond:
                if not job.cancelled:
                    self._cancel_locked(job)
        if job.future.done():
            return
        with contextlib.suppress(Exception):  # InvalidStateError: settled concurrently
            if error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(entry)  # type: ignore[arg-type]

    # -- the worker -----------------------------------------------------------------------------------

    def _spawn_worker_locked(self, slot: int) -> None:
        self._generation_counter += 1
        generation = self._generation_counter
        self._generations[slot] = generation
        self._exited.discard(slot)
        thread = threading.Thread(
            target=self._worker_main,
            args=(slot, generation),
            name=f"embedlab-worker-{slot}-{generation}",
            daemon=True,
        )
        thread.start()

    def _assemble_locked(self) -> list[_WorkItem]:
        """Take the next batch: the oldest live segment and its neighbours in length (within the bucket
        ratio), up to the token budget (and, with several workers, the attention budget)."""
        window: list[_WorkItem] = []
        while self._pending and len(window) < self.settings.assembly_window:
            item = self._pending.popleft()
            if item.job.cancelled:
                self._dead_pending -= 1
                continue
            window.append(item)
        if not window:
            return []
        limits = self.settings
        lengths = [item.length for item in window]
        cells = limits.max_batch_tokens * limits.long_sequence_tokens if limits.workers > 1 else None
        plan = plan_batches(lengths, limits.max_batch_tokens, limits.max_batch_size, limits.bucket_ratio, cells)
        chosen = next(batch for batch in plan if 0 in batch)
        taken = set(chosen)
        self._pending.extendleft(reversed([item for i, item in enumerate(window) if i not in taken]))
        batch = [window[i] for i in chosen]
        for item in batch:
            item.job.queued -= 1
        self._live_pending -= len(batch)
        return batch

    def _worker_main(self, slot: int, generation: int) -> None:
        try:
            while True:
                with self._cond:
                    batch: list[_WorkItem] = []
                    while not batch:
                        if self._stopping or generation != self._generations[slot]:
                            return
                        if self._live_pending > 0:
                            batch = self._assemble_locked()
                        else:
                            self._cond.wait()
                    self._batch_counter += 1
                    running = _Running(self._batch_counter, slot, generation, time.monotonic(), batch)
                    self._running[slot] = running
                    for item in batch:
                        if item.job.started_at is None:
                            item.job.started_at = running.started
                    self._cond.notify_all()
                self._run_batch(running)
        except BaseException:  # the thread ends here; the watchdog replaces it (logged, not re-raised)
            log.exception("the inference worker thread ended with an exception")
        finally:  # a normal exit (stop, replaced) runs no batch; an abnormal one fails the batch it ran
            orphans: list[_TextJob] = []
            with self._cond:
                if generation == self._generations[slot]:
                    self._exited.add(slot)
                    running_now = self._running.get(slot)
                    if running_now is not None and running_now.generation == generation:
                        del self._running[slot]
                        orphans = list({id(item.job): item.job for item in running_now.items}.values())
                self._cond.notify_all()
            died = WorkerUnavailableError("the inference worker died while running a batch; it is being replaced")
            for job in orphans:
                self._settle(job, error=died)

    def _run_batch(self, running: _Running) -> None:
        segments = [item.segment for item in running.items]
        t0 = time.monotonic()
        error: EmbedlabError | None = None
        try:
            out = self.embedder.encode_segments(segments)
        except EmbedlabError as exc:
            error = exc
        except Exception as exc:
            error = InferenceError(f"inference failed on a batch of {len(segments)} segments: {exc!r}")
            error.__cause__ = exc
        seconds = time.monotonic() - t0
        real_tokens = sum(item.length for item in running.items)
        with self._cond:
            if self._running.get(running.slot) is not running:  # abandoned by the watchdog; jobs failed already
                return
            del self._running[running.slot]
            self._last_outcome_ok = error is None
            if error is None:
                self._last_success_at = time.monotonic()
                rate = len(segments) / max(seconds, 1e-6)
                self._segments_per_s = rate if self._segments_per_s == 0 else 0.8 * self._segments_per_s + 0.2 * rate
            else:
                self._last_error = str(error)
            self._cond.notify_all()
        padded = 0 if error is not None else out.padded_tokens
        self.observer.on_batch(len(segments), real_tokens, padded, seconds, error is None)
        if error is not None:
            log.warning("inference batch failed: %s", error)
            for job in {id(item.job): item.job for item in running.items}.values():
                self._settle(job, error=error)
            return
        self._complete(running, out.pooled, seconds)

    def _complete(self, running: _Running, pooled: FloatArray, seconds: float) -> None:
        """Store pooled rows; finish (combine chunk windows of) every text now complete; cache and wake."""
        finished: list[_TextJob] = []
        with self._cond:  # a chunked text's windows may finish in batches of two workers at once
            for row, item in zip(pooled, running.items, strict=True):
                job = item.job
                job.rows[item.slot] = row
                job.remaining -= 1
                job.batch_seconds[running.batch_id] = seconds
                if job.remaining == 0:
                    finished.append(job)
        if not finished:
            return
        rows = np.stack([row for job in finished for row in job.rows if row is not None])
        segments = [replace(s, text_index=j) for j, job in enumerate(finished) for s in job.segments]
        try:
            combined = self.embedder.finish(
                rows, segments, len(finished), dimensions=self.embedder.spec.dim, normalize=False
            )
        except EmbedlabError as exc:
            for job in finished:
                self._settle(job, error=exc)
            return
        entries = [CachedVector(combined[j].copy(), job.tokens) for j, job in enumerate(finished)]
        cacheable = [(job.key, entry) for job, entry in zip(finished, entries, strict=True) if job.key is not None]
        if self.cache is not None and cacheable:
            try:
                self.cache.put_many(cacheable)
            except Exception as exc:  # a cache failure must never fail the request
                log.warning("cache write failed: %s", exc)
        with self._cond:
            for job in finished:
                if job.key is not None:
                    self._inflight.discard(job.key, job)
        for job, entry in zip(finished, entries, strict=True):
            self._settle(job, entry=entry)

    # -- health -----------------------------------------------------------------------------------------

    def _watchdog_main(self) -> None:
        timeout = self.settings.inference_timeout_s
        with self._cond:
            while not self._stopping:
                if self._exited:
                    slot = min(self._exited)
                    self._restart_locked(slot, "dead", "the inference worker thread ended unexpectedly")
                    continue
                if not self._running:
                    self._cond.wait()
                    continue
                running = min(self._running.values(), key=lambda batch: batch.started)
                overdue = running.started + timeout - time.monotonic()
                if overdue > 0:
                    self._cond.wait(overdue)
                    continue
                if self._running.get(running.slot) is running:
                    n = len(running.items)
                    message = f"the inference worker is stuck: a batch of {n} segments ran over {timeout:g} s"
                    self._restart_locked(running.slot, "stuck", message)
                    error = WorkerUnavailableError(message, retry_after=max(1, math.ceil(timeout)))
                    for job in {id(item.job): item.job for item in running.items}.values():
                        if not job.cancelled:
                            self._cancel_locked(job)
                        with contextlib.suppress(Exception):
                            job.future.set_exception(error)

    def _restart_locked(self, slot: int, reason: str, message: str) -> None:
        log.error("%s; starting a new worker", message)
        self._running.pop(slot, None)
        self._last_outcome_ok = False
        self._last_error = message
        self._restarts += 1
        self._spawn_worker_locked(slot)
        self._cond.notify_all()
        self.observer.on_restart(reason)

    def health(self) -> WorkerHealth:
        """A snapshot of the worker (no round trip; see :meth:`check_health`)."""
        now = time.monotonic()
        with self._cond:
            started = [batch.started for batch in self._running.values()]
            busy = now - min(started) if started else None
            if self._stopping:
                status: HealthStatus = "stopped"
            elif self._exited:
                status = "dead"
            elif busy is not None and busy > self.settings.inference_timeout_s:
                status = "stuck"
            elif not self._ready:
                status = "starting"
            elif not self._last_outcome_ok:
                status = "failing"
            else:
                status = "ok"
            age = now - self._last_success_at if self._last_success_at is not None else None
            return WorkerHealth(
                status=status,
                last_success_age_s=age,
                busy_s=busy,
                last_error=self._last_error,
                restarts=self._restarts,
                queue_segments=self._live_pending,
                in_flight_requests=self._admitted,
                workers=self.settings.workers,
            )

    async def check_health(self) -> WorkerHealth:
        """Health proven by a recent successful batch, else by a real round trip through the queue now.

        Returns a snapshot whose ``status`` is ``ok`` only if the worker is alive, not stuck, and a batch
        succeeded within ``health_max_age_s`` (or the probe just did).
        """
        snapshot = self.health()
        if snapshot.status in ("stuck", "dead", "starting", "stopped"):
            return snapshot
        fresh = (
            snapshot.last_success_age_s is not None and snapshot.last_success_age_s <= self.settings.health_max_age_s
        )
        if snapshot.status == "ok" and fresh:
            return snapshot
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(self._probe_once())
        await asyncio.shield(self._probe)
        return self.health()

    async def _probe_once(self) -> bool:
        try:
            await self._round_trip(["health check"], self.settings.inference_timeout_s + 1.0)
        except EmbedlabError as exc:
            log.warning("health probe failed: %s", exc)
            return False
        return True

    async def _round_trip(self, texts: list[str], timeout: float) -> None:
        """Texts through the queue and the worker, bypassing admission, cache and de-duplication."""
        loop = asyncio.get_running_loop()
        tokenized = await loop.run_in_executor(self._tokenizer_pool, self.embedder.prepare, texts)
        jobs = [_TextJob(None) for _ in texts]
        work: list[_WorkItem] = []
        for segment in tokenized.segments:
            job = jobs[segment.text_index]
            work.append(_WorkItem(job, len(job.segments), segment, len(segment.ids)))
            job.segments.append(replace(segment, text_index=0))
        with self._cond:
            if self._stopping:
                raise WorkerUnavailableError("the server is shutting down")
            now = time.monotonic()
            for job in jobs:
                job.rows = [None] * len(job.segments)
                job.remaining = job.queued = len(job.segments)
                job.enqueued_at = now
            self._pending.extend(work)
            self._live_pending += len(work)
            self._cond.notify_all()
        try:
            await asyncio.wait_for(self._bridge(loop, jobs), timeout)
        except TimeoutError as exc:
            raise WorkerUnavailableError(f"no inference round trip within {timeout:g} s") from exc
        finally:
            with self._cond:
                for job in jobs:
                    if not job.future.done() and not job.cancelled:
                        self._cancel_locked(job)
