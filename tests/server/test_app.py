"""The app under stress and failure, on real servers: overload, a failing or hung worker, clients that
leave, a persistent cache across restarts, API keys."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from liveserver import live_server, tiny_settings

from embedlab.engine.embedder import Embedder
from embedlab.server import create_app
from faultybackend import FaultyBackend


def wait_until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass(frozen=True)
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def raw_post(port: int, path: str, payload: Any) -> RawAnswer:
    """One HTTP/1.1 POST on its own connection with asyncio streams (a lean client, so 2,000 at once stay cheap)."""
    body = json.dumps(payload).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    writer.write(f"{head}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    await writer.drain()
    raw = await reader.read()
    writer.close()
    header_block, _, content = raw.partition(b"\r\n\r\n")
    status_line, *lines = header_block.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return RawAnswer(int(status_line.split()[1]), headers, content)


def test_a_burst_of_2000_requests_gets_answers_or_429_and_the_server_stays_healthy(
    faulty_embedder: tuple[Embedder, FaultyBackend],
) -> None:
    embedder, backend = faulty_embedder
    texts = [f"burst {i} " + " ".join(chr(97 + (i * k) % 26) for k in range(1, 2 + i % 7)) for i in range(2000)]
    expected = embedder.embed(texts)
    settings = tiny_settings(
        max_concurrent_requests=64,
        max_queue_segments=256,
        cache_entries=0,
        inference_timeout_s=120,
        request_timeout_s=120,
    )
    with live_server(create_app(settings, embedder=embedder)) as server:
        batcher = server.state.models[0].batcher
        rss_before = rss_mb()

        async def burst() -> list[RawAnswer]:
            backend.hold()  # inference is slow: the first 64 requests are admitted and wait
            tasks = [asyncio.ensure_future(raw_post(server.port, "/v1/embeddings", {"input": [t]})) for t in texts]
            while sum(t.done() for t in tasks) < len(texts) - 64:
                await asyncio.sleep(0.05)
            assert batcher.in_flight_requests == 64 and batcher.queue_segments <= 64
            backend.release()
            return list(await asyncio.gather(*tasks))

        answers = asyncio.run(burst())
        statuses = Counter(a.status for a in answers)
        assert statuses == {200: 64, 429: 1936}
        for text_index, answer in enumerate(answers):
            if answer.status == 200:
                vector = np.asarray(answer.json()["data"][0]["embedding"], dtype=np.float32)
                np.testing.assert_allclose(vector, expected[text_index], atol=1e-5)
            else:
                assert int(answer.headers["retry-after"]) >= 1
                assert answer.json()["error"]["code"] == "server_overloaded"
        assert rss_mb() - rss_before < 300  # bounded: refused requests hold nothing
        assert batcher.in_flight_requests == 0 and batcher.queue_segments == 0
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert client.get("/health").status_code == 200
            assert client.post("/v1/embeddings", json={"input": ["after the burst"]}).status_code == 200


def test_a_failing_worker_answers_500_then_recovers(faulty_embedder: tuple[Embedder, FaultyBackend]) -> None:
    embedder, backend = faulty_embedder
    with (
        live_server(create_app(tiny_settings(health_max_age_s=60), embedder=embedder)) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        assert client.get("/health").status_code == 200
        backend.fail = True
        failed = client.post("/v1/embeddings", json={"input": ["boom"]})
        assert failed.status_code == 500
        assert failed.json()["error"]["code"] == "backend_error"
        assert "injected backend failure" in failed.json()["error"]["message"]
        unhealthy = client.get("/health")
        assert unhealthy.status_code == 503 and "failing" in unhealthy.json()["error"]["message"]
        backend.fail = False
        assert client.get("/health").status_code == 200  # a probe through the worker proved it again
        assert client.post("/v1/embeddings", json={"input": ["boom"]}).status_code == 200
        assert "embedlab_batches_failed_total" in client.get("/metrics").text
        failed_batches = server.state.metrics.registry.get_sample_value(
            "embedlab_batches_failed_total", {"model": "tiny"}
        )
        assert failed_batches is not None and failed_batches >= 1


def test_a_hung_worker_answers_503_within_the_timeout_then_recovers(
    faulty_embedder: tuple[Embedder, FaultyBackend],
) -> None:
    embedder, backend = faulty_embedder
    settings = tiny_settings(inference_timeout_s=0.5, request_timeout_s=10)
    with (
        live_server(create_app(settings, embedder=embedder)) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        backend.hold()  # the next forward pass never returns on its own
        started = time.monotonic()
        stuck = client.post("/v1/embeddings", json={"input": ["hang"]})
        assert stuck.status_code == 503 and time.monotonic() - started < 8
        assert "stuck" in stuck.json()["error"]["message"] and int(stuck.headers["retry-after"]) >= 1
        health = client.get("/health")
        assert health.status_code == 503
        backend.release()
        wait_until(lambda: client.get("/health").status_code == 200)
        answer = client.post("/v1/embeddings", json={"input": ["hang"]})
        assert answer.status_code == 200
        np.testing.assert_allclose(answer.json()["data"][0]["embedding"], embedder.embed(["hang"])[0], atol=1e-5)
        assert 'embedlab_worker_restarts_total{model="tiny",reason="stuck"}' in client.get("/metrics").text


def test_texts_of_a_client_that_disconnected_never_reach_the_model(
    faulty_embedder: tuple[Embedder, FaultyBackend],
) -> None:
    embedder, backend = faulty_embedder
    settings = tiny_settings(workers=1)  # one held worker keeps the next text waiting in the queue
    with (
        live_server(create_app(settings, embedder=embedder)) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        batcher = server.state.models[0].batcher
        backend.hold()
        calls = backend.calls

        async def blocker() -> httpx.Response:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                return await http.post("/v1/embeddings", json={"input": ["the dog"]})

        import threading

        result: list[httpx.Response] = []
        thread = threading.Thread(target=lambda: result.append(asyncio.run(blocker())))
        thread.start()
        assert backend.wait_for_calls(calls + 1)
        body = b'{"input": ["z z z"]}'
        request = (
            f"POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        with socket.create_connection(("127.0.0.1", server.port)) as leaving:
            leaving.sendall(request)
            wait_until(lambda: batcher.queue_segments == 1)
        wait_until(lambda: batcher.queue_segments == 0)  # dropped once the client went away
        backend.release()
        thread.join(30)
        assert result and result[0].status_code == 200
        never = embedder.tokenizer.encode("z z z").ids
        assert never not in backend.sequences()
        assert 'embedlab_dropped_segments_total{model="tiny"} 1.0' in client.get("/metrics").text


def test_the_persistent_cache_survives_a_restart(
    faulty_embedder: tuple[Embedder, FaultyBackend], tmp_path: Path
) -> None:
    embedder, backend = faulty_embedder
    path = tmp_path / "vectors.sqlite"
    texts = ["kept on disk", "and this one"]
    with TestClient(create_app(tiny_settings(cache_path=path), embedder=embedder)) as http:
        first = http.post("/v1/embeddings", json={"input": texts})
        assert first.headers["x-cache-hits"] == "0"
    calls = backend.calls
    with TestClient(create_app(tiny_settings(cache_path=path), embedder=embedder)) as http:
        after_warm_up = backend.calls
        again = http.post("/v1/embeddings", json={"input": texts})
        assert again.headers["x-cache-hits"] == "2" and backend.calls == after_warm_up > calls
        assert again.json()["data"] == first.json()["data"]
    path.write_bytes(b"garbage" * 1000)  # a corrupt file is rebuilt, never trusted
    with TestClient(create_app(tiny_settings(cache_path=path), embedder=embedder)) as http:
        rebuilt = http.post("/v1/embeddings", json={"input": texts})
        assert rebuilt.status_code == 200 and rebuilt.headers["x-cache-hits"] == "0"
        np.testing.assert_allclose([d["embedding"] for d in rebuilt.json()["data"]], embedder.embed(texts), atol=1e-5)


def test_api_key_guards_every_route_but_health_and_the_page(tiny_embedder: Embedder) -> None:
    with TestClient(create_app(tiny_settings(api_key="s3cret"), embedder=tiny_embedder)) as http:
        for method, path in (
            ("POST", "/v1/embeddings"),
            ("POST", "/embeddings"),
            ("POST", "/embed"),
            ("POST", "/tokenize"),
            ("GET", "/v1/models"),
            ("GET", "/info"),
            ("GET", "/metrics"),
            ("GET", "/openapi.json"),
        ):
            refused = http.request(method, path, json={"input": "a"})
            assert refused.status_code == 401, path
            assert refused.json()["error"]["type"] == "authentication_error"
            assert refused.headers["www-authenticate"] == "Bearer"
            wrong = http.request(method, path, json={"input": "a"}, headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401 and "not valid" in wrong.json()["error"]["message"]
        assert http.get("/health").status_code == 200
        assert http.get("/").status_code == 200
        good = {"Authorization": "Bearer s3cret"}
        assert http.post("/v1/embeddings", json={"input": "a"}, headers=good).status_code == 200
        assert http.get("/info", headers=good).status_code == 200
        assert 'status="401"' in http.get("/metrics", headers=good).text


def test_health_and_embeddings_are_503_until_the_warm_up_is_done(tiny_embedder: Embedder) -> None:
    app = create_app(tiny_settings(), embedder=tiny_embedder)
    cold = TestClient(app)  # not entered: the lifespan (worker start + warm-up) has not run
    starting = cold.get("/health")
    assert starting.status_code == 503 and "starting" in starting.json()["error"]["message"]
    refused = cold.post("/v1/embeddings", json={"input": ["early"]})
    assert refused.status_code == 503 and "warming up" in refused.json()["error"]["message"]
    assert int(refused.headers["retry-after"]) >= 1
    with TestClient(app) as warm:  # uvicorn runs the same lifespan before it accepts connections
        assert warm.get("/health").status_code == 200
        assert warm.post("/v1/embeddings", json={"input": ["early"]}).status_code == 200


@pytest.mark.parametrize("path", ["/v1/embeddings", "/embed"])
def test_oversized_client_batches_are_split_server_side(tiny_embedder: Embedder, path: str) -> None:
    texts = [f"text {i} " + "a " * (i % 50) for i in range(300)]
    settings = tiny_settings(max_batch_size=32, max_batch_tokens=512)
    with TestClient(create_app(settings, embedder=tiny_embedder)) as http:
        key = "input" if path == "/v1/embeddings" else "inputs"
        answer = http.post(path, json={key: texts})
        assert answer.status_code == 200
        body = answer.json()
        got = [d["embedding"] for d in body["data"]] if path == "/v1/embeddings" else body
        np.testing.assert_allclose(np.asarray(got, dtype=np.float32), tiny_embedder.embed(texts), atol=1e-5)
        registry = http.app.state.server.metrics.registry  # type: ignore[attr-defined]
        batches = registry.get_sample_value("embedlab_batch_segments_count", {"model": "tiny"})
        assert batches is not None and batches > 300 / 32
