"""Prometheus metrics of one app, on its own registry (two apps in one process never share counters).

Names (all prefixed ``embedlab_``); every series of a model's work carries a ``model`` label (its served
name), also on a server of one model:

- ``requests_total{route,status,model}``: HTTP requests answered, by route template, status code and the
  model the request named (``""`` for routes of no model and requests refused before a model was found).
- ``requests_in_flight``: HTTP requests being handled now (server-wide).
- ``queue_segments{model}``: segments waiting for inference now.
- ``batch_segments`` / ``batch_tokens`` / ``batch_padded_tokens`` / ``batch_seconds`` ``{model}``:
  histograms of forward batches.
- ``batches_failed_total{model}``: forward batches that raised.
- ``request_latency_seconds{model,stage}``: embedding requests' time in ``tokenize``, ``queue``,
  ``inference`` and ``total``.
- ``cache_lookups_total{model,result}``: texts found (``hit``), computed (``miss``) or joined to the same
  text already in flight (``joined``).
- ``embedded_texts_total`` / ``embedded_tokens_total`` ``{model}``: texts and model tokens answered.
- ``truncated_texts_total{model}``: texts answered that were cut at the token limit (``long_input`` truncate).
- ``inputs_total{model,kind}``: inputs received as ``text`` or as cl100k_base ``token_ids``.
- ``dropped_segments_total{model}``: segments dropped before inference because their client went away.
- ``worker_restarts_total{model,reason}``: workers replaced (``stuck``, ``dead``).
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


#: the ASGI scope key where a route notes the served name of the model a request named
MODEL_SCOPE_KEY = "embedlab.model"


class ServerMetrics:
    """The metrics of one app: the families, and :meth:`for_model` for one model's labelled series."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "embedlab_requests",
            "HTTP requests answered, by route, status and model",
            ["route", "status", "model"],
            registry=r,
        )
        self.in_flight = Gauge("embedlab_requests_in_flight", "HTTP requests being handled", registry=r)
        self.queue = Gauge("embedlab_queue_segments", "Segments waiting for inference", ["model"], registry=r)
        self.batch_segments = Histogram(
            "embedlab_batch_segments",
            "Segments (texts or chunk windows) per forward batch",
            ["model"],
            buckets=SIZE_BUCKETS,
            registry=r,
        )
        self.batch_tokens = Histogram(
            "embedlab_batch_tokens", "Real tokens per forward batch", ["model"], buckets=TOKEN_BUCKETS, registry=r
        )
        self.batch_padded = Histogram(
            "embedlab_batch_padded_tokens",
            "Padded tokens computed per forward batch",
            ["model"],
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.batch_seconds = Histogram(
            "embedlab_batch_seconds",
            "Wall time of one forward batch (pad, model, pool), seconds",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_failures = Counter("embedlab_batches_failed", "Forward batches that raised", ["model"], registry=r)
        self.latency = Histogram(
            "embedlab_request_latency_seconds",
            "Embedding request latency by stage",
            ["model", "stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.cache = Counter("embedlab_cache_lookups", "Texts by cache result", ["model", "result"], registry=r)
        self.texts = Counter("embedlab_embedded_texts", "Texts answered", ["model"], registry=r)
        self.tokens = Counter("embedlab_embedded_tokens", "Model tokens of texts answered", ["model"], registry=r)
        self.truncated = Counter(
            "embedlab_truncated_texts", "Texts answered that were cut at the token limit", ["model"], registry=r
        )
        self.inputs = Counter(
            "embedlab_inputs", "Inputs received, as text or as token ids", ["model", "kind"], registry=r
        )
        self.dropped = Counter(
            "embedlab_dropped_segments", "Segments dropped before inference (client went away)", ["model"], registry=r
        )
        self.restarts = Counter(
            "embedlab_worker_restarts", "Inference workers replaced", ["model", "reason"], registry=r
        )

    def for_model(self, model: str) -> ModelMetrics:
        """The series of the model served as ``model``, created at zero."""
        return ModelMetrics(self, model)

    def render(self) -> bytes:
        """The Prometheus text exposition of this registry."""
        return generate_latest(self.registry)


class ModelMetrics:
    """One model's labelled series; also its batcher's observer (see :class:`BatcherObserver`)."""

    def __init__(self, metrics: ServerMetrics, model: str) -> None:
        self.model = model
        m = metrics
        self._queue = m.queue.labels(model)
        self._batch_segments = m.batch_segments.labels(model)
        self._batch_tokens = m.batch_tokens.labels(model)
        self._batch_padded = m.batch_padded.labels(model)
        self._batch_seconds = m.batch_seconds.labels(model)
        self._batch_failures = m.batch_failures.labels(model)
        self._latency = m.latency
        for stage in ("tokenize", "queue", "inference", "total"):
            m.latency.labels(model, stage)
        self._cache = {result: m.cache.labels(model, result) for result in ("hit", "miss", "joined")}
        self._texts = m.texts.labels(model)
        self._tokens = m.tokens.labels(model)
        self._truncated = m.truncated.labels(model)
        self._inputs = {kind: m.inputs.labels(model, kind) for kind in ("text", "token_ids")}
        self._dropped = m.dropped.labels(model)
        self._restarts = m.restarts

    def watch_queue(self, depth: Callable[[], float]) -> None:
        """Read the model's queue depth (segments) from ``depth`` whenever the metrics are rendered."""
        self._queue.set_function(depth)

    # -- BatcherObserver ------------------------------------------------------------------------

    def on_batch(self, segments: int, real_tokens: int, padded_tokens: int, seconds: float, ok: bool) -> None:
        """Record one forward batch."""
        if not ok:
            self._batch_failures.inc()
            return
        self._batch_segments.observe(segments)
        self._batch_tokens.observe(real_tokens)
        self._batch_padded.observe(padded_tokens)
        self._batch_seconds.observe(seconds)

    def on_cache(self, hits: int, misses: int, joined: int) -> None:
        """Record one request's cache look-up."""
        self._cache["hit"].inc(hits)
        self._cache["miss"].inc(misses)
        self._cache["joined"].inc(joined)

    def on_dropped(self, segments: int) -> None:
        """Record segments dropped before inference."""
        self._dropped.inc(segments)

    def on_restart(self, reason: str) -> None:
        """Record a replaced worker."""
        self._restarts.labels(self.model, reason).inc()

    # -- requests -------------------------------------------------------------------------------

    def on_inputs(self, kind: str, count: int) -> None:
        """Record ``count`` inputs received as ``kind`` (``text`` or ``token_ids``)."""
        self._inputs[kind].inc(count)

    def observe_request(self, timings: dict[str, float], texts: int, tokens: int, truncated: int = 0) -> None:
        """Record an answered request: stage latencies (seconds), texts (or pairs), tokens and those cut."""
        for stage, seconds in timings.items():
            self._latency.labels(self.model, stage).observe(seconds)
        self._texts.inc(texts)
        self._tokens.inc(tokens)
        self._truncated.inc(truncated)


class RequestMetricsMiddleware:
    """Pure ASGI middleware counting HTTP requests by route template, status and model (cheap: no body copy).

    Paths outside ``routes`` are counted as ``other`` so unknown URLs cannot grow the label set; the model
    is what the route noted under :data:`MODEL_SCOPE_KEY` in the request's scope (a served name, so the
    label set stays bounded), or ``""``.
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
            self.metrics.requests.labels(route, str(status[0]), scope.get(MODEL_SCOPE_KEY, "")).inc()
