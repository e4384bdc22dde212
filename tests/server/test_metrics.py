"""Server metrics: each observer call moves the right series, read back by parsing the Prometheus text."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from embedlab.server.metrics import (
    LATENCY_BUCKETS,
    MODEL_SCOPE_KEY,
    SIZE_BUCKETS,
    TOKEN_BUCKETS,
    Message,
    ModelMetrics,
    Receive,
    RequestMetricsMiddleware,
    Scope,
    Send,
    ServerMetrics,
)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(metrics: ServerMetrics) -> Samples:
    """Every sample of the rendered exposition, keyed by (name, labels)."""
    out: Samples = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def with_model(name: str = "m", depth: float = 0) -> tuple[ServerMetrics, ModelMetrics]:
    metrics = ServerMetrics()
    model = metrics.for_model(name)
    model.watch_queue(lambda: depth)
    return metrics, model


def test_a_new_model_shows_every_labelled_series_at_zero() -> None:
    metrics = ServerMetrics()
    assert not [key for key in parse(metrics) if key[0] != "embedlab_requests_in_flight"]  # no model, no series
    metrics.for_model("m")
    samples = parse(metrics)
    for result in ("hit", "miss", "joined"):
        assert value(samples, "embedlab_cache_lookups_total", model="m", result=result) == 0
    for kind in ("text", "token_ids"):
        assert value(samples, "embedlab_inputs_total", model="m", kind=kind) == 0
    for stage in ("tokenize", "queue", "inference", "total"):
        assert value(samples, "embedlab_request_latency_seconds_count", model="m", stage=stage) == 0
    for name in (
        "embedlab_batches_failed_total",
        "embedlab_embedded_texts_total",
        "embedlab_dropped_segments_total",
        "embedlab_truncated_texts_total",
        "embedlab_queue_segments",
        "embedlab_batch_segments_count",
    ):
        assert value(samples, name, model="m") == 0
    assert value(samples, "embedlab_requests_in_flight") == 0
    assert not [key for key in samples if key[0] == "embedlab_requests_total"]  # created on first request


def test_help_and_type_lines() -> None:
    text = with_model()[0].render().decode()
    assert "# TYPE embedlab_requests_total counter" in text
    assert "# TYPE embedlab_batch_tokens histogram" in text
    assert "# TYPE embedlab_queue_segments gauge" in text
    assert "# HELP embedlab_batch_tokens Real tokens per forward batch" in text


def test_queue_depth_is_read_at_render_time() -> None:
    depth = [3.0]
    metrics = ServerMetrics()
    metrics.for_model("m").watch_queue(lambda: depth[0])
    assert value(parse(metrics), "embedlab_queue_segments", model="m") == 3
    depth[0] = 17
    assert value(parse(metrics), "embedlab_queue_segments", model="m") == 17


def test_batches_fill_cumulative_histogram_buckets() -> None:
    metrics, model = with_model()
    model.on_batch(segments=3, real_tokens=100, padded_tokens=128, seconds=0.02, ok=True)
    model.on_batch(segments=20, real_tokens=300, padded_tokens=512, seconds=0.2, ok=True)
    model.on_batch(segments=50, real_tokens=9000, padded_tokens=9600, seconds=7.0, ok=False)  # not observed
    s = parse(metrics)
    bounds = ("2.0", "4.0", "16.0", "32.0", "+Inf")
    segments = {le: value(s, "embedlab_batch_segments_bucket", le=le, model="m") for le in bounds}
    assert segments == {"2.0": 0, "4.0": 1, "16.0": 1, "32.0": 2, "+Inf": 2}
    assert value(s, "embedlab_batch_segments_sum", model="m") == 23
    assert value(s, "embedlab_batch_segments_count", model="m") == 2
    assert value(s, "embedlab_batch_tokens_bucket", le="64.0", model="m") == 0
    assert value(s, "embedlab_batch_tokens_bucket", le="256.0", model="m") == 1
    assert value(s, "embedlab_batch_tokens_sum", model="m") == 400
    assert value(s, "embedlab_batch_padded_tokens_bucket", le="512.0", model="m") == 2  # bucket bounds are inclusive
    assert value(s, "embedlab_batch_padded_tokens_bucket", le="256.0", model="m") == 1
    assert value(s, "embedlab_batch_seconds_bucket", le="0.025", model="m") == 1
    assert value(s, "embedlab_batch_seconds_sum", model="m") == pytest.approx(0.22)
    assert value(s, "embedlab_batches_failed_total", model="m") == 1


def test_bucket_bounds_are_the_documented_ones() -> None:
    s = parse(with_model()[0])
    for name, bounds in (
        ("embedlab_batch_segments_bucket", SIZE_BUCKETS),
        ("embedlab_batch_tokens_bucket", TOKEN_BUCKETS),
        ("embedlab_batch_seconds_bucket", LATENCY_BUCKETS),
    ):
        les = sorted(float(dict(labels)["le"]) for key_name, labels in s if key_name == name)
        assert les == [*map(float, bounds), float("inf")], name


def test_cache_dropped_restarts_inputs_and_answered_requests() -> None:
    metrics, model = with_model()
    model.on_cache(hits=2, misses=5, joined=1)
    model.on_cache(hits=1, misses=0, joined=0)
    model.on_dropped(3)
    model.on_dropped(1)
    model.on_restart("stuck")
    model.on_restart("stuck")
    model.on_restart("dead")
    model.on_inputs("token_ids", 4)
    model.observe_request({"tokenize": 0.004, "queue": 0.0, "inference": 0.03, "total": 0.04}, texts=3, tokens=21)
    model.observe_request(
        {"tokenize": 0.002, "queue": 0.5, "inference": 0.01, "total": 0.6}, texts=1, tokens=9, truncated=1
    )
    s = parse(metrics)
    cache = [value(s, "embedlab_cache_lookups_total", model="m", result=r) for r in ("hit", "miss", "joined")]
    assert cache == [3, 5, 1]
    assert value(s, "embedlab_dropped_segments_total", model="m") == 4
    assert value(s, "embedlab_worker_restarts_total", model="m", reason="stuck") == 2
    assert value(s, "embedlab_worker_restarts_total", model="m", reason="dead") == 1
    assert value(s, "embedlab_inputs_total", model="m", kind="token_ids") == 4
    assert value(s, "embedlab_embedded_texts_total", model="m") == 4
    assert value(s, "embedlab_embedded_tokens_total", model="m") == 30
    assert value(s, "embedlab_truncated_texts_total", model="m") == 1
    assert value(s, "embedlab_request_latency_seconds_count", model="m", stage="queue") == 2
    assert value(s, "embedlab_request_latency_seconds_sum", model="m", stage="total") == pytest.approx(0.64)
    assert value(s, "embedlab_request_latency_seconds_bucket", model="m", stage="queue", le="0.001") == 1
    assert value(s, "embedlab_request_latency_seconds_bucket", model="m", stage="queue", le="0.25") == 1
    assert value(s, "embedlab_request_latency_seconds_bucket", model="m", stage="queue", le="0.5") == 2


def test_two_models_keep_their_series_apart() -> None:
    metrics = ServerMetrics()
    first, second = metrics.for_model("a"), metrics.for_model("b")
    first.watch_queue(lambda: 5)
    second.watch_queue(lambda: 0)
    first.on_batch(segments=3, real_tokens=100, padded_tokens=128, seconds=0.02, ok=True)
    second.observe_request({"total": 0.1}, texts=2, tokens=9)
    s = parse(metrics)
    assert value(s, "embedlab_queue_segments", model="a") == 5 and value(s, "embedlab_queue_segments", model="b") == 0
    assert value(s, "embedlab_batch_segments_count", model="a") == 1
    assert value(s, "embedlab_batch_segments_count", model="b") == 0
    assert value(s, "embedlab_embedded_texts_total", model="a") == 0
    assert value(s, "embedlab_embedded_texts_total", model="b") == 2


def test_two_apps_never_share_counters() -> None:
    (first, a), (second, _) = with_model(), with_model()
    a.on_dropped(5)
    assert value(parse(first), "embedlab_dropped_segments_total", model="m") == 5
    assert value(parse(second), "embedlab_dropped_segments_total", model="m") == 0


# -- the request-counting middleware, in front of small ASGI apps ---------------------------------


class Downstream:
    """An ASGI app answering ``status`` (or raising, or sending nothing); it records the in-flight gauge and,
    as a route does, notes ``model`` in the scope of requests to /v1/embeddings."""

    def __init__(self, metrics: ServerMetrics, status: int = 200, mode: str = "answer", model: str = "") -> None:
        self.metrics = metrics
        self.status = status
        self.mode = mode
        self.model = model
        self.in_flight_seen: list[float] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            return
        self.in_flight_seen.append(value(parse(self.metrics), "embedlab_requests_in_flight"))
        if self.model and scope["path"] == "/v1/embeddings":
            scope[MODEL_SCOPE_KEY] = self.model
        if self.mode == "raise":
            raise RuntimeError("a bug downstream")
        if self.mode == "silent":
            return
        await send({"type": "http.response.start", "status": self.status, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def serve(metrics: ServerMetrics, downstream: Downstream, *paths: str) -> list[int]:
    app = RequestMetricsMiddleware(downstream, metrics, frozenset({"/v1/embeddings", "/health"}))

    async def go() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return [(await client.get(path)).status_code for path in paths]

    return asyncio.run(go())


def requests_total(metrics: ServerMetrics, model: str = "") -> dict[tuple[str, str], float]:
    return {
        (dict(labels)["route"], dict(labels)["status"]): number
        for (name, labels), number in parse(metrics).items()
        if name == "embedlab_requests_total" and dict(labels)["model"] == model
    }


def test_requests_are_counted_by_route_template_and_status() -> None:
    metrics = ServerMetrics()
    downstream = Downstream(metrics, status=201)
    assert serve(metrics, downstream, "/v1/embeddings", "/v1/embeddings", "/health", "/x/1", "/x/2") == [201] * 5
    assert requests_total(metrics) == {("/v1/embeddings", "201"): 2, ("/health", "201"): 1, ("other", "201"): 2}
    assert downstream.in_flight_seen == [1.0] * 5  # counted while inside, back to 0 after
    assert value(parse(metrics), "embedlab_requests_in_flight") == 0


def test_the_model_a_route_noted_labels_its_requests() -> None:
    metrics = ServerMetrics()
    downstream = Downstream(metrics, model="tiny")
    assert serve(metrics, downstream, "/v1/embeddings", "/health", "/v1/embeddings") == [200] * 3
    assert requests_total(metrics, model="tiny") == {("/v1/embeddings", "200"): 2}
    assert requests_total(metrics) == {("/health", "200"): 1}


def test_a_crash_counts_as_500_and_no_answer_as_499() -> None:
    metrics = ServerMetrics()
    with pytest.raises(RuntimeError, match="a bug downstream"):
        serve(metrics, Downstream(metrics, mode="raise"), "/health")
    assert requests_total(metrics) == {("/health", "500"): 1}
    assert value(parse(metrics), "embedlab_requests_in_flight") == 0
    silent = ServerMetrics()
    app = RequestMetricsMiddleware(Downstream(silent, mode="silent"), silent, frozenset({"/health"}))
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: dict[str, Any] = {"type": "http", "method": "GET", "path": "/health", "headers": []}
    asyncio.run(app(scope, receive, send))
    assert sent == [] and requests_total(silent) == {("/health", "499"): 1}


def test_non_http_scopes_pass_through_uncounted() -> None:
    metrics = ServerMetrics()
    downstream = Downstream(metrics)
    app = RequestMetricsMiddleware(downstream, metrics, frozenset({"/health"}))
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app({"type": "lifespan"}, receive, send))
    assert sent == [{"type": "lifespan.startup.complete"}]
    assert requests_total(metrics) == {} and downstream.in_flight_seen == []
