"""Prometheus metrics of one app, on its own registry (two apps in one process never share counters).

Names (all prefixed ``embedlab_``):

- ``requests_total{route,status}``: HTTP requests answered, by route template and status code.
- ``requests_in_flight``: HTTP requests being handled now.
- ``queue_segments``: segments waiting for inference now.
- ``batch_segments`` / ``batch_tokens`` / ``batch_padded_tokens``: histograms of forward batches.
- ``batches_failed_total``: forward batches that raised.
- ``request_latency_seconds{stage}``: embedding requests' time in ``tokenize``, ``queue``,
  ``inference`` and ``total``.
- ``cache_lookups_total{result}``: texts found (``hit``), computed (``miss``) or joined to the same
  text already in flight (``joined``).
- ``embedded_texts_total`` / ``embedded_tokens_total``: texts and model tokens answered.
- ``truncated_texts_total``: texts answered that were cut at the token limit (``long_input`` truncate).
- ``inputs_total{kind}``: inputs received as ``text`` or as cl100k_base ``token_ids``.
- ``dropped_segments_total``: segments dropped before inference because their client went away.
- ``worker_restarts_total{reason}``: workers replaced (``stuck``, ``dead``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
TOKEN_BUCKETS = (16, 64, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)


class ServerMetrics:
    """The metrics of one app; also the batcher's observer (see :class:`BatcherObserver`)."""

    def __init__(self, queue_depth: Callable[[], float]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "embedlab_requests", "HTTP requests answered, by route and status", ["route", "status"], registry=r
        )
        self.in_flight = Gauge("embedlab_requests_in_flight", "HTTP requests being handled", registry=r)
        self.queue = Gauge("embedlab_queue_segments", "Segments waiting for inference", registry=r)
        self.queue.set_function(queue_depth)
        self.batch_segments = Histogram(
            "embedlab_batch_segments",
            "Segments (texts or chunk windows) per forward batch",
            buckets=SIZE_BUCKETS,
            registry=r,
        )
        self.batch_tokens = Histogram(
            "embedlab_batch_tokens", "Real tokens per forward batch", buckets=TOKEN_BUCKETS, registry=r
        )
        self.batch_padded = Histogram(
            "embedlab_batch_padded_tokens",
            "Padded tokens computed per forward batch",
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.batch_seconds = Histogram(
            "embedlab_batch_seconds",
            "Wall time of one forward batch (pad, model, pool), seconds",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_failures = Counter("embedlab_batches_failed", "Forward batches that raised", registry=r)
        self.latency = Histogram(
            "embedlab_request_latency_seconds",
            "Embedding request latency by stage",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.cache = Counter("embedlab_cache_lookups", "Texts by cache result", ["result"], registry=r)
        self.texts = Counter("embedlab_embedded_texts", "Texts answered", registry=r)
        self.tokens = Counter("embedlab_embedded_tokens", "Model tokens of texts answered", registry=r)
        self.truncated = Counter(
            "embedlab_truncated_texts", "Texts answered that were cut at the token limit", registry=r
        )
        self.inputs = Counter("embedlab_inputs", "Inputs received, as text or as token ids", ["kind"], registry=r)
        self.dropped = Counter(
            "embedlab_dropped_segments", "Segments dropped before inference (client went away)", registry=r
        )
        self.restarts = Counter("embedlab_worker_restarts", "Inference workers replaced", ["reason"], registry=r)
        for result in ("hit", "miss", "joined"):
            self.cache.labels(result)
        for kind in ("text", "token_ids"):
            self.inputs.labels(kind)
        for stage in ("tokenize", "queue", "inference", "total"):
            self.latency.labels(stage)

    # -- BatcherObserver ------------------------------------------------------------------------

    def on_batch(self, segments: int, real_tokens: int, padded_tokens: int, seconds: float, ok: bool) -> None:
        """Record one forward batch."""
        if not ok:
            self.batch_failures.inc()
            return
        self.batch_segments.observe(segments)
        self.batch_tokens.observe(real_tokens)
        self.batch_padded.observe(padded_tokens)
        self.batch_seconds.observe(seconds)

    def on_cache(self, hits: int, misses: int, joined: int) -> None:
        """Record one request's cache look-up."""
        self.cache.labels("hit").inc(hits)
        self.cache.labels("miss").inc(misses)
        self.cache.labels("joined").inc(joined)

    def on_dropped(self, segments: int) -> None:
        """Record segments dropped before inference."""
        self.dropped.inc(segments)

    def on_restart(self, reason: str) -> None:
        """Record a replaced worker."""
        self.restarts.labels(reason).inc()

    # -- requests -------------------------------------------------------------------------------

    def observe_embedding(self, timings: dict[str, float], texts: int, tokens: int, truncated: int = 0) -> None:
        """Record an answered embedding request: stage latencies (seconds), texts, tokens and texts cut."""
        for stage, seconds in timings.items():
            self.latency.labels(stage).observe(seconds)
        self.texts.inc(texts)
        self.tokens.inc(tokens)
        self.truncated.inc(truncated)

    def render(self) -> bytes:
        """The Prometheus text exposition of this registry."""
        return generate_latest(self.registry)


class RequestMetricsMiddleware:
    """Pure ASGI middleware counting HTTP requests by route template and status (cheap: no body copy).

    Paths outside ``routes`` are counted as ``other`` so unknown URLs cannot grow the label set.
    """

    def __init__(self, app: ASGIApp, metrics: ServerMetrics, routes: frozenset[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        route = path if path in self.routes else "other"
        status = [499]  # the client went away before any answer

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            status[0] = 500
            raise
        finally:
            self.metrics.in_flight.dec()
            self.metrics.requests.labels(route, str(status[0])).inc()
