"""Every route of a real server (tiny model) on loopback: answers, extensions, and hostile inputs."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from liveserver import LiveServer, tiny_settings

import embedlab
from embedlab.engine.embedder import Embedder
from embedlab.server import ServerSettings, create_app

TEXTS = ["the cat sat on the mat", "a dog", "query: cat"]


@pytest.fixture(scope="module")
def client(tiny_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=tiny_server.url, timeout=30) as http:
        yield http


def vectors_of(answer: dict[str, Any]) -> np.ndarray:
    return np.asarray([item["embedding"] for item in answer["data"]], dtype=np.float32)


def assert_serving(client: httpx.Client, tiny_embedder: Embedder) -> None:
    answer = client.post("/v1/embeddings", json={"input": ["still here"]})
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(vectors_of(answer.json()), tiny_embedder.embed(["still here"]), atol=1e-5)


def test_embeddings_follow_openai_schema(client: httpx.Client, tiny_embedder: Embedder) -> None:
    answer = client.post("/v1/embeddings", json={"input": TEXTS, "model": "tiny", "user": "someone"})
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert body["object"] == "list" and body["model"] == "tiny"
    assert [(d["object"], d["index"]) for d in body["data"]] == [("embedding", i) for i in range(3)]
    np.testing.assert_allclose(vectors_of(body), tiny_embedder.embed(TEXTS), atol=1e-5)
    tokens = int(tiny_embedder.count_tokens(TEXTS).sum())
    assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens, "truncated_inputs": 0}
    assert answer.headers["x-embedlab-truncated"] == "0"
    for header in ("x-total-time", "x-inference-time", "x-queue-time", "x-tokenization-time", "server-timing"):
        assert header in answer.headers
    assert "total;dur=" in answer.headers["server-timing"]


def test_single_string_base64_and_the_short_path(client: httpx.Client, tiny_embedder: Embedder) -> None:
    answer = client.post("/embeddings", json={"input": "a dog", "encoding_format": "base64"}).json()
    vector = np.frombuffer(base64.b64decode(answer["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_allclose(vector, tiny_embedder.embed(["a dog"])[0], atol=1e-5)


def test_dimensions_and_normalize(client: httpx.Client, tiny_embedder: Embedder) -> None:
    short = vectors_of(client.post("/v1/embeddings", json={"input": TEXTS, "dimensions": 8}).json())
    np.testing.assert_allclose(short, tiny_embedder.embed(TEXTS, dimensions=8), atol=1e-5)
    raw = vectors_of(client.post("/v1/embeddings", json={"input": TEXTS, "normalize": False}).json())
    np.testing.assert_allclose(raw, tiny_embedder.embed(TEXTS, normalize=False), atol=1e-5)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)


def test_long_input_policies(client: httpx.Client, tiny_embedder: Embedder) -> None:
    long = " ".join(["b"] * 150)
    refused = client.post("/v1/embeddings", json={"input": ["ok", long], "truncate": False})
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "context_length_exceeded" and "input 1 has 152 tokens" in error["message"]
    assert "(send truncate: true to embed the text cut at the limit" in error["message"]
    assert "long_input" not in error["message"]  # the client used truncate
    chunked = vectors_of(client.post("/v1/embeddings", json={"input": [long], "long_input": "chunk"}).json())
    np.testing.assert_allclose(chunked, tiny_embedder.embed([long], long_input="chunk"), atol=1e-5)
    cut = client.post("/v1/embeddings", json={"input": [long], "truncate": True}).json()
    np.testing.assert_allclose(vectors_of(cut), tiny_embedder.embed([long]), atol=1e-5)
    assert cut["usage"]["total_tokens"] == tiny_embedder.spec.max_tokens and cut["usage"]["truncated_inputs"] == 1
    contradiction = client.post("/v1/embeddings", json={"input": ["a"], "truncate": True, "long_input": "error"})
    assert contradiction.status_code == 400 and "contradicts" in contradiction.json()["error"]["message"]


def test_token_ids_are_read_as_cl100k_never_as_model_ids(client: httpx.Client, tiny_embedder: Embedder) -> None:
    hello_world = [15339, 1917]  # cl100k_base ids of "hello world"
    answer = client.post("/v1/embeddings", json={"input": hello_world}).json()
    np.testing.assert_allclose(vectors_of(answer), tiny_embedder.embed(["hello world"]), atol=1e-5)
    nested = client.post("/v1/embeddings", json={"input": [hello_world, [1820, 8415, 7731]]}).json()
    np.testing.assert_allclose(vectors_of(nested), tiny_embedder.embed(["hello world", "the cat sat"]), atol=1e-5)
    assert answer["usage"]["total_tokens"] == int(tiny_embedder.count_tokens(["hello world"])[0])


def test_tei_embed_route(client: httpx.Client, tiny_embedder: Embedder) -> None:
    one = client.post("/embed", json={"inputs": "a dog"})
    assert one.status_code == 200 and "x-total-time" in one.headers
    np.testing.assert_allclose(np.asarray(one.json()), tiny_embedder.embed(["a dog"]), atol=1e-5)
    many = client.post("/embed", json={"inputs": TEXTS, "normalize": False, "dimensions": 4}).json()
    np.testing.assert_allclose(np.asarray(many), tiny_embedder.embed(TEXTS, normalize=False, dimensions=4), atol=1e-5)


def test_tokenize_route(client: httpx.Client, tiny_embedder: Embedder) -> None:
    tokens = client.post("/tokenize", json={"inputs": ["cat sat", "a"]}).json()
    assert [[t["id"] for t in row] for row in tokens] == [
        tiny_embedder.tokenizer.encode("cat sat").ids,
        tiny_embedder.tokenizer.encode("a").ids,
    ]
    first = tokens[0]
    assert first[0] == {"id": first[0]["id"], "text": "[CLS]", "special": True, "start": None, "stop": None}
    assert first[1] == {"id": first[1]["id"], "text": "cat", "special": False, "start": 0, "stop": 3}
    bare = client.post("/tokenize", json={"input": "cat", "add_special_tokens": False}).json()
    assert [t["text"] for t in bare[0]] == ["cat"]


def test_models_info_and_metrics(client: httpx.Client, tiny_embedder: Embedder) -> None:
    models = client.get("/v1/models").json()
    assert models["object"] == "list" and models["data"][0]["id"] == "tiny"
    assert {m["id"] for m in models["data"]} >= {"tiny", tiny_embedder.spec.name}
    assert {m["root"] for m in models["data"]} == {"tiny"}
    info = client.get("/info").json()
    assert info["ready"] is True and info["limits"]["max_client_batch"] == 2048 and len(info["models"]) == 1
    model = info["models"][0]
    assert model["model"] == "tiny" and model["backend"] == "torch" and model["ready"] is True
    assert model["spec"]["dim"] == tiny_embedder.dim
    assert model["limits"]["max_tokens_per_input"] == tiny_embedder.spec.max_tokens
    assert model["workers"] == ServerSettings().worker_layout()[0]
    assert model["threads_per_worker"] == tiny_embedder.settings.threads
    assert model["memory"]["load_rss_bytes"] is None  # loaded by the test, not by the server
    client.post("/v1/embeddings", json={"input": ["metrics please"]})
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    for name in (
        'embedlab_requests_total{model="tiny",route="/v1/embeddings",status="200"}',
        'embedlab_queue_segments{model="tiny"}',
        'embedlab_batch_segments_bucket{le="1.0",model="tiny"}',
        'embedlab_batch_tokens_bucket{le="16.0",model="tiny"}',
        'embedlab_batch_seconds_bucket{le="0.001",model="tiny"}',
        'embedlab_request_latency_seconds_bucket{le="0.001",model="tiny",stage="queue"}',
        'embedlab_request_latency_seconds_count{model="tiny",stage="inference"}',
        'embedlab_cache_lookups_total{model="tiny",result="hit"}',
        'embedlab_cache_lookups_total{model="tiny",result="miss"}',
    ):
        assert name in text, name
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines() if line.startswith("embedlab_batch_s"))
    label = '{model="tiny"}'
    assert samples[f"embedlab_batch_seconds_count{label}"] == samples[f"embedlab_batch_segments_count{label}"]
    assert float(samples['embedlab_batch_seconds_sum{model="tiny"}']) > 0
    health = client.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"


def test_cache_serves_repeats(client: httpx.Client) -> None:
    client.post("/v1/embeddings", json={"input": ["a repeated text"]})
    again = client.post("/v1/embeddings", json={"input": ["a repeated text", "a repeated text"]})
    assert again.headers["x-cache-hits"] == "2"


BIG = 10_000_000

HOSTILE: list[tuple[str, dict[str, Any], int, str]] = [
    ("empty input", {"json": {"input": []}}, 400, "empty list"),
    ("empty string", {"json": {"input": ""}}, 400, "input 0 is empty"),
    ("blank among texts", {"json": {"input": ["a", "  "]}}, 400, "input 1 is empty"),
    ("10 MB body", {"json": {"input": "a" * BIG}}, 413, "max_payload_bytes"),
    ("100,000 items", {"json": {"input": ["a"] * 100_000}}, 413, "at most 2048"),
    ("nested lists of strings", {"json": {"input": [["a", "b"]]}}, 400, "send a flat list of strings"),
    ("floats", {"json": {"input": [1.5, 2.5]}}, 400, "input 0 is 1.5 (number)"),
    ("mixed list", {"json": {"input": ["a", 3]}}, 400, "input 1 is 3 (integer)"),
    ("null input", {"json": {"input": None}}, 400, "got null"),
    ("missing input", {"json": {"model": "tiny"}}, 400, "'input' is required"),
    ("body not an object", {"json": ["a"]}, 400, "must be a JSON object"),
    (
        "invalid JSON",
        {"content": b'{"input": ', "headers": {"content-type": "application/json"}},
        400,
        "not valid JSON",
    ),
    ("wrong content type", {"content": b"input=a", "headers": {"content-type": "text/plain"}}, 415, "application/json"),
    ("unknown model", {"json": {"input": "a", "model": "gpt-4"}}, 400, "use one of: "),
    ("negative dimensions", {"json": {"input": "a", "dimensions": -1}}, 400, "dimensions must be between 1"),
    ("zero dimensions", {"json": {"input": "a", "dimensions": 0}}, 400, "dimensions must be between 1"),
    ("huge dimensions", {"json": {"input": "a", "dimensions": 10**12}}, 400, "dimensions must be between 1"),
    ("dimensions as text", {"json": {"input": "a", "dimensions": "8"}}, 400, "dimensions"),
    ("token id out of range", {"json": {"input": [[1, 2], [100263]]}}, 400, "token id 100263"),
    ("negative token id", {"json": {"input": [-5]}}, 400, "token id -5"),
    ("empty token list", {"json": {"input": [[]]}}, 400, "empty list of token ids"),
    ("unknown field", {"json": {"input": "a", "temperature": 0.2}}, 400, "unknown field 'temperature'"),
    ("bad encoding format", {"json": {"input": "a", "encoding_format": "hex"}}, 400, "encoding_format"),
    ("bad long_input", {"json": {"input": "a", "long_input": "drop"}}, 400, "long_input"),
    ("unknown prompt", {"json": {"input": "a", "prompt_name": "nope"}}, 400, "unknown prompt_name: model"),
]


@pytest.mark.parametrize(("case", "request_args", "status", "message"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_input_gets_a_clear_4xx_and_the_server_keeps_serving(
    client: httpx.Client, tiny_embedder: Embedder, case: str, request_args: dict[str, Any], status: int, message: str
) -> None:
    answer = client.post("/v1/embeddings", **request_args)
    assert answer.status_code == status, answer.text[:300]
    error = answer.json()["error"]
    assert message in error["message"], error
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
    assert "Traceback" not in answer.text
    assert_serving(client, tiny_embedder)


def test_wrong_method_and_unknown_route(client: httpx.Client) -> None:
    wrong = client.get("/v1/embeddings")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"
    missing = client.post("/v2/embeddings", json={"input": "a"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_input_type_maps_to_the_model_prompts(make_tiny_bert: Any) -> None:
    directory: Path = make_tiny_bert(prompts={"query": "query: ", "passage": "passage: "})
    model = embedlab.load(str(directory), backend="torch", threads=1)
    with TestClient(create_app(tiny_settings(model_aliases=["text-embedding-3-small"]), embedder=model)) as http:
        for input_type, prompt in (("query", "query"), ("passage", "passage"), ("document", "passage")):
            answer = http.post(
                "/v1/embeddings", json={"input": ["cat"], "input_type": input_type, "model": "text-embedding-3-small"}
            )
            assert answer.status_code == 200, answer.text
            np.testing.assert_allclose(vectors_of(answer.json()), model.embed(["cat"], prompt_name=prompt), atol=1e-5)
        both = http.post("/v1/embeddings", json={"input": ["cat"], "input_type": "query", "prompt_name": "query"})
        assert both.status_code == 400 and "not both" in both.json()["error"]["message"]


def test_unknown_fields_can_be_let_through(tiny_embedder: Embedder) -> None:
    with TestClient(create_app(tiny_settings(reject_unknown_fields=False), embedder=tiny_embedder)) as http:
        answer = http.post("/v1/embeddings", content=json.dumps({"input": "a", "future_option": 1}))
        assert answer.status_code == 200
