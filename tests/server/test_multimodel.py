"""Several models in one server: the real default model and a tiny one, served together on loopback.

Requests route by ``model`` (name or alias) on every route; each model has its own batcher, queue, cache
and metrics series, so one model's long batch does not hold up a request to the other.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from liveserver import LiveServer, live_server
from prometheus_client.parser import text_string_to_metric_families

from embedlab import DEFAULT_MODEL
from embedlab.engine.embedder import Embedder
from embedlab.errors import ConfigError
from embedlab.server import ServerSettings, create_app
from faultybackend import FaultyBackend

pytestmark = pytest.mark.slow  # the real default model is loaded by the server

TEXTS = ["the cat sat on the mat", "a dog", "query: cat"]
DEFAULT_NAMES = [DEFAULT_MODEL, "all-MiniLM-L6-v2", "text-embedding-3-small"]
TINY_NAMES = ["tiny", "tiny-alias"]
EMBEDDING_ROUTES = ["/v1/embeddings", "/embeddings", "/embed", "/"]


def two_model_settings(tiny_dir: Path, **overrides: Any) -> ServerSettings:
    """The default model (exact torch backend) and the tiny one, each with aliases; small timeouts."""
    models = [
        {"model": DEFAULT_MODEL, "backend": "torch", "model_aliases": ["text-embedding-3-small"]},
        {"model": str(tiny_dir), "backend": "torch", "served_model_name": "tiny", "model_aliases": ["tiny-alias"]},
    ]
    values: dict[str, Any] = {"models": models, "inference_timeout_s": 20.0, "request_timeout_s": 60.0}
    values.update(overrides)
    return ServerSettings(**values)


@pytest.fixture(scope="module")
def server(tiny_bert_dir: Path) -> Iterator[LiveServer]:
    """A real server that loads both models itself (so their memory shares are measured)."""
    with live_server(create_app(two_model_settings(tiny_bert_dir))) as live:
        yield live


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as http:
        yield http


def body_for(route: str, texts: list[str], model: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"input" if route in ("/v1/embeddings", "/embeddings") else "inputs": texts}
    if model is not None:
        body["model"] = model
    return body


def vectors_from(route: str, answer: httpx.Response) -> np.ndarray:
    assert answer.status_code == 200, answer.text[:300]
    body = answer.json()
    rows = [d["embedding"] for d in body["data"]] if route in ("/v1/embeddings", "/embeddings") else body
    return np.asarray(rows, dtype=np.float32)


def wait_until(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def samples(client: httpx.Client) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def test_the_openai_client_reaches_each_model_by_every_name(
    server: LiveServer, default_model: Any, tiny_embedder: Embedder, tiny_bert_dir: Path
) -> None:
    from openai import OpenAI

    openai = OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    for name in DEFAULT_NAMES:
        answer = openai.embeddings.create(model=name, input=TEXTS)  # base64, as the client asks by default
        assert answer.model == DEFAULT_MODEL
        got = np.asarray([d.embedding for d in answer.data], dtype=np.float32)
        np.testing.assert_allclose(got, default_model.embed(TEXTS), atol=1e-5)
    for name in [*TINY_NAMES, str(tiny_bert_dir.resolve())]:
        answer = openai.embeddings.create(model=name, input=TEXTS, encoding_format="float")
        assert answer.model == "tiny"
        got = np.asarray([d.embedding for d in answer.data], dtype=np.float32)
        np.testing.assert_allclose(got, tiny_embedder.embed(TEXTS), atol=1e-5)
        assert answer.usage.total_tokens == int(tiny_embedder.count_tokens(TEXTS).sum())


@pytest.mark.parametrize("route", EMBEDDING_ROUTES)
def test_every_embedding_route_routes_by_model(
    client: httpx.Client, route: str, default_model: Any, tiny_embedder: Embedder
) -> None:
    tiny = vectors_from(route, client.post(route, json=body_for(route, TEXTS, "tiny-alias")))
    np.testing.assert_allclose(tiny, tiny_embedder.embed(TEXTS), atol=1e-5)
    default = vectors_from(route, client.post(route, json=body_for(route, TEXTS, "all-MiniLM-L6-v2")))
    np.testing.assert_allclose(default, default_model.embed(TEXTS), atol=1e-5)


def test_tokenize_uses_the_named_model_s_tokenizer(
    client: httpx.Client, default_model: Any, tiny_embedder: Embedder
) -> None:
    text = "tokenizers differ"
    for name, model in (("tiny", tiny_embedder), (DEFAULT_MODEL, default_model)):
        answer = client.post("/tokenize", json={"inputs": [text], "model": name})
        assert answer.status_code == 200, answer.text
        assert [t["id"] for t in answer.json()[0]] == model.tokenizer.encode(text).ids


@pytest.mark.parametrize("route", [*EMBEDDING_ROUTES, "/tokenize"])
def test_without_a_model_several_served_is_a_400_naming_them(client: httpx.Client, route: str) -> None:
    answer = client.post(route, json=body_for(route, ["a"], None))
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["param"] == "model" and error["type"] == "invalid_request_error"
    assert "serves 2 models" in error["message"] and f"{DEFAULT_MODEL}, tiny" in error["message"]


@pytest.mark.parametrize("route", [*EMBEDDING_ROUTES, "/tokenize"])
def test_an_unknown_model_is_a_400_listing_every_name(client: httpx.Client, route: str) -> None:
    answer = client.post(route, json=body_for(route, ["a"], "gpt-4"))
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "model_not_found" and "'gpt-4' is not served here" in error["message"]
    for name in [*DEFAULT_NAMES, *TINY_NAMES]:
        assert name in error["message"]


def test_v1_models_lists_every_model_then_its_aliases(client: httpx.Client, tiny_bert_dir: Path) -> None:
    data = client.get("/v1/models").json()["data"]
    ids = [m["id"] for m in data]
    assert ids == [
        DEFAULT_MODEL,
        "all-MiniLM-L6-v2",
        "text-embedding-3-small",
        "tiny",
        *sorted([str(tiny_bert_dir.resolve()), tiny_bert_dir.name, "tiny-alias"]),
    ]
    assert [m["root"] for m in data] == [DEFAULT_MODEL] * 3 + ["tiny"] * 4
    assert {m["object"] for m in data} == {"model"}


def test_info_lists_each_model_with_its_runtime_limits_and_memory_share(
    client: httpx.Client, tiny_embedder: Embedder
) -> None:
    info = client.get("/info").json()
    assert info["ready"] is True and [m["model"] for m in info["models"]] == [DEFAULT_MODEL, "tiny"]
    default, tiny = info["models"]
    assert default["spec"]["dim"] == 384 and tiny["spec"]["dim"] == tiny_embedder.dim
    assert default["backend"] == tiny["backend"] == "torch"
    assert tiny["aliases"] == sorted(set(tiny["aliases"])) and "tiny-alias" in tiny["aliases"]
    assert default["limits"]["max_tokens_per_input"] == 256
    assert tiny["limits"]["max_tokens_per_input"] == tiny_embedder.spec.max_tokens
    layout = ServerSettings().worker_layout()  # each model gets the layout one model would have
    assert (default["workers"], default["threads_per_worker"]) == layout
    assert (tiny["workers"], tiny["threads_per_worker"]) == layout
    memory = info["memory"]
    assert "RSS growth" in memory["method"] and memory["rss_before_models_bytes"] > 0
    # all-MiniLM-L6-v2's fp32 weights are 90 MB, the tiny model's tens of kB; memory-mapped weights become
    # resident as the warm-up's forward pass reads them, so the share counts the load and the warm-up
    assert default["memory"]["rss_share_bytes"] > 30 * 2**20
    assert default["memory"]["rss_share_bytes"] > 10 * tiny["memory"]["rss_share_bytes"]
    for model in (default, tiny):
        share = model["memory"]
        assert share["rss_share_bytes"] == share["load_rss_bytes"] + share["warm_up_rss_bytes"]
    assert memory["rss_bytes"] > memory["rss_before_models_bytes"]


def test_health_lists_every_model(client: httpx.Client) -> None:
    answer = client.get("/health")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "ok" and [m["model"] for m in body["models"]] == [DEFAULT_MODEL, "tiny"]
    assert {m["status"] for m in body["models"]} == {"ok"}


def test_each_model_has_its_own_cache(client: httpx.Client) -> None:
    text = ["one text for both caches"]
    for name in ("tiny", DEFAULT_MODEL):
        first = client.post("/v1/embeddings", json={"input": text, "model": name})
        assert first.headers["x-cache-hits"] == "0", name  # the other model's vector is not this one's
        again = client.post("/v1/embeddings", json={"input": text, "model": name})
        assert again.headers["x-cache-hits"] == "1", name


def test_metrics_carry_the_model_label(client: httpx.Client) -> None:
    before = samples(client)
    client.post("/v1/embeddings", json={"input": ["x y z", "w"], "model": "tiny"})
    client.post("/embed", json={"inputs": "counted for the default", "model": "all-MiniLM-L6-v2"})
    client.post("/v1/embeddings", json={"input": "a"})  # no model: a 400 before any model is picked
    after = samples(client)

    def grew(name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        return after[key] - before.get(key, 0.0)

    assert grew("embedlab_embedded_texts_total", model="tiny") == 2
    assert grew("embedlab_embedded_texts_total", model=DEFAULT_MODEL) == 1
    assert grew("embedlab_inputs_total", model="tiny", kind="text") == 2
    assert grew("embedlab_requests_total", route="/v1/embeddings", status="200", model="tiny") == 1
    assert grew("embedlab_requests_total", route="/embed", status="200", model=DEFAULT_MODEL) == 1
    assert grew("embedlab_requests_total", route="/v1/embeddings", status="400", model="") == 1
    assert grew("embedlab_request_latency_seconds_count", model="tiny", stage="total") == 1
    assert grew("embedlab_batch_segments_sum", model="tiny") == 2
    for model in (DEFAULT_MODEL, "tiny"):
        for name in ("embedlab_queue_segments", "embedlab_truncated_texts_total", "embedlab_dropped_segments_total"):
            assert (name, frozenset({("model", model)})) in after, (name, model)
    assert not [key for key in after if key[0] == "embedlab_embedded_texts_total" and not dict(key[1]).get("model")]


def test_a_long_batch_on_one_model_does_not_hold_up_the_other(
    faulty_embedder: tuple[Embedder, FaultyBackend], default_model: Any, tiny_bert_dir: Path
) -> None:
    slow, backend = faulty_embedder
    models = [
        {"model": str(tiny_bert_dir), "served_model_name": "slow", "workers": 1},
        {"model": DEFAULT_MODEL, "served_model_name": "fast"},
    ]
    settings = ServerSettings(models=models, inference_timeout_s=60.0, request_timeout_s=60.0, cache_entries=0)
    with (
        live_server(create_app(settings, embedders=[slow, default_model])) as live,
        httpx.Client(base_url=live.url, timeout=60) as http,
    ):
        slow_batcher = live.state.models[0].batcher
        backend.hold()  # the slow model's one worker enters its batch and stays there
        calls = backend.calls
        answers: dict[str, httpx.Response] = {}

        def send(key: str, body: dict[str, Any]) -> None:
            with httpx.Client(base_url=live.url, timeout=60) as own:
                answers[key] = own.post("/v1/embeddings", json=body)

        long_batch = threading.Thread(target=send, args=("long", {"input": TEXTS * 20, "model": "slow"}))
        long_batch.start()
        assert backend.wait_for_calls(calls + 1)
        waiting = slow_batcher.queue_segments  # the long batch's texts of other lengths wait for the next batch
        queued = threading.Thread(target=send, args=("queued", {"input": ["waits behind it"], "model": "slow"}))
        queued.start()
        wait_until(lambda: slow_batcher.queue_segments == waiting + 1)
        fast = http.post("/v1/embeddings", json={"input": TEXTS, "model": "fast"})
        # the fast model answered while the slow one's batch is still inside its forward pass ...
        assert long_batch.is_alive() and queued.is_alive() and "long" not in answers and "queued" not in answers
        assert backend.calls == calls + 1 and slow_batcher.queue_segments == waiting + 1
        np.testing.assert_allclose(vectors_from("/v1/embeddings", fast), default_model.embed(TEXTS), atol=1e-5)
        queue = samples(http)
        assert queue[("embedlab_queue_segments", frozenset({("model", "slow")}))] == waiting + 1
        assert queue[("embedlab_queue_segments", frozenset({("model", "fast")}))] == 0
        backend.release()  # ... and the slow model then finishes its own work
        long_batch.join(60)
        queued.join(60)
        np.testing.assert_allclose(vectors_from("/v1/embeddings", answers["long"]), slow.embed(TEXTS * 20), atol=1e-5)
        assert answers["queued"].status_code == 200


def test_two_models_under_one_name_are_refused_before_serving(tiny_bert_dir: Path) -> None:
    resolved = str(tiny_bert_dir.resolve())
    same = ServerSettings(models=[str(tiny_bert_dir), resolved + "/."], backend="torch")
    with pytest.raises(ConfigError, match=f"two models answer to the name '{resolved}'"):
        create_app(same)  # the names only meet once the models are loaded: both are the same directory


def test_each_model_gets_its_own_cache_file(tiny_bert_dir: Path, make_tiny_bert: Any, tmp_path: Path) -> None:
    other = make_tiny_bert(seed=1)
    models = [
        {"model": str(tiny_bert_dir), "served_model_name": "a/one", "backend": "torch"},
        {"model": str(other), "served_model_name": "b", "backend": "torch"},
    ]
    with TestClient(create_app(ServerSettings(models=models, cache_path=tmp_path / "vectors.sqlite"))) as http:
        for name in ("a/one", "b"):
            assert http.post("/v1/embeddings", json={"input": ["kept"], "model": name}).status_code == 200
        paths = [m["cache"]["path"] for m in http.get("/info").json()["models"]]
    assert paths == [str(tmp_path / "vectors.a-one.sqlite"), str(tmp_path / "vectors.b.sqlite")]
    assert all(Path(p).is_file() for p in paths)
    shared = [{**entry, "cache_path": str(tmp_path / "one.sqlite")} for entry in models]
    with pytest.raises(ConfigError, match="would share the cache file"):
        create_app(ServerSettings(models=shared))


def test_one_model_answers_without_a_model_as_before(tiny_embedder: Embedder) -> None:
    with TestClient(create_app(ServerSettings(served_model_name="tiny"), embedder=tiny_embedder)) as http:
        for route in EMBEDDING_ROUTES:
            np.testing.assert_allclose(
                vectors_from(route, http.post(route, json=body_for(route, ["a"], None))),
                tiny_embedder.embed(["a"]),
                atol=1e-5,
            )
        assert http.post("/tokenize", json={"inputs": "a"}).status_code == 200


def test_loaded_models_must_match_the_models_served(tiny_embedder: Embedder, tiny_bert_dir: Path) -> None:
    two = ServerSettings(
        models=[str(tiny_bert_dir), {"model": str(tiny_bert_dir), "served_model_name": "b"}], backend="torch"
    )
    with pytest.raises(ConfigError, match="1 loaded model"):
        create_app(two, embedders=[tiny_embedder])
