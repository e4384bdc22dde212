"""``/rerank`` (TEI), ``/v1/rerank`` (Jina / Cohere), ``/predict`` and ``POST /`` on a real server on loopback that
serves a tiny embedding model beside two tiny cross-encoders; scores against sentence-transformers' CrossEncoder."""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from liveserver import LiveServer, live_server

from embedlab.server import ServerSettings, create_app


def words(n: int, seed: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(["the", "cat", "sat", "on", "mat", "dog", "a", "b", "c"]) for _ in range(n))


QUERY = "the cat sat"
DOCUMENTS = ["the cat sat on the mat", "a dog", "mat", words(12, 1), "b c a", words(100, 2)]  # the last is cut


def cross_encoder_scores(path: Path, pairs: list[tuple[str, str]], **options: Any) -> np.ndarray:
    from sentence_transformers import CrossEncoder

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Implicit dimension choice for softmax", UserWarning)
        return np.asarray(CrossEncoder(str(path), device="cpu").predict(pairs, **options))


@pytest.fixture(scope="module")
def rerankers(make_tiny_cross_encoder: Callable[..., Path]) -> tuple[Path, Path]:
    return make_tiny_cross_encoder(), make_tiny_cross_encoder(num_labels=3, seed=2)


@pytest.fixture(scope="module")
def server(tiny_bert_dir: Path, rerankers: tuple[Path, Path]) -> Iterator[LiveServer]:
    models = [
        {"model": str(tiny_bert_dir), "backend": "torch", "served_model_name": "tiny"},
        {"model": str(rerankers[0]), "backend": "torch", "served_model_name": "ce", "model_aliases": ["reranker"]},
        {"model": str(rerankers[1]), "backend": "onnx", "served_model_name": "nli"},
    ]
    settings = ServerSettings(models=models, inference_timeout_s=20.0, request_timeout_s=60.0)
    with live_server(create_app(settings)) as live:
        yield live


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as http:
        yield http


@pytest.fixture(scope="module")
def expected(rerankers: tuple[Path, Path]) -> dict[str, np.ndarray]:
    pairs = [(QUERY, d) for d in DOCUMENTS]
    return {
        "sigmoid": cross_encoder_scores(rerankers[0], pairs),
        "logits": cross_encoder_scores(rerankers[0], pairs, activation_fn=__import__("torch").nn.Identity()),
    }


def test_tei_rerank_equals_cross_encoder_predict_ranked(client: httpx.Client, expected: dict[str, np.ndarray]) -> None:
    answer = client.post("/rerank", json={"model": "ce", "query": QUERY, "texts": DOCUMENTS, "truncate": True})
    assert answer.status_code == 200, answer.text
    ranked = answer.json()
    assert [item["index"] for item in ranked] == list(np.argsort(-expected["sigmoid"], kind="stable"))
    scores = np.array([item["score"] for item in sorted(ranked, key=lambda item: item["index"])])
    np.testing.assert_allclose(scores, expected["sigmoid"], atol=1e-5)
    assert all("text" not in item for item in ranked)
    assert answer.headers["x-embedlab-truncated"] == "1"  # the 100-word document, never silently
    raw = client.post(
        "/rerank",
        json={
            "model": "reranker",
            "query": QUERY,
            "texts": DOCUMENTS,
            "truncate": True,
            "raw_scores": True,
            "return_text": True,
        },
    ).json()
    np.testing.assert_allclose(
        [item["score"] for item in sorted(raw, key=lambda item: item["index"])], expected["logits"], atol=1e-5
    )
    assert [item["text"] for item in raw] == [DOCUMENTS[item["index"]] for item in raw]


def test_tei_default_does_not_truncate(client: httpx.Client) -> None:
    """TEI's default ``truncate`` is false: a pair over the limit is a 400 that names the field to send."""
    answer = client.post("/rerank", json={"model": "ce", "query": QUERY, "texts": DOCUMENTS})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "context_length_exceeded"
    assert (
        error["message"].startswith("pair 5 (the query with document 5) has") and '"truncate": true' in error["message"]
    )


def test_v1_rerank_in_the_jina_and_cohere_shape(client: httpx.Client, expected: dict[str, np.ndarray]) -> None:
    documents: list[Any] = [*DOCUMENTS[:3], {"text": DOCUMENTS[3]}, *DOCUMENTS[4:]]
    answer = client.post("/v1/rerank", json={"model": "ce", "query": QUERY, "documents": documents, "top_n": 3})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    order = list(np.argsort(-expected["sigmoid"], kind="stable"))[:3]
    assert body["model"] == "ce" and body["id"].startswith("rerank-")
    assert [r["index"] for r in body["results"]] == order
    np.testing.assert_allclose([r["relevance_score"] for r in body["results"]], expected["sigmoid"][order], atol=1e-5)
    assert [r["document"]["text"] for r in body["results"]] == [DOCUMENTS[i] for i in order]
    assert body["usage"]["truncated_inputs"] == 1 and body["usage"]["total_tokens"] > 0
    bare = client.post(
        "/v1/rerank", json={"model": "ce", "query": QUERY, "documents": DOCUMENTS[:2], "return_documents": False}
    ).json()
    assert all(set(r) == {"index", "relevance_score"} for r in bare["results"]) and len(bare["results"]) == 2
    # a Jina / Cohere body sent to /rerank (a client given the root URL) is answered in its own shape
    same = client.post("/rerank", json={"model": "ce", "query": QUERY, "documents": DOCUMENTS, "top_n": 3}).json()
    assert [r["index"] for r in same["results"]] == order


def test_several_labels_predict_and_the_root_route(client: httpx.Client, rerankers: tuple[Path, Path]) -> None:
    pairs = [[QUERY, d] for d in DOCUMENTS[:4]]
    reference = cross_encoder_scores(rerankers[1], [tuple(p) for p in pairs])  # (4, 3): identity for 3 labels
    answer = client.post("/predict", json={"model": "nli", "inputs": pairs})
    assert answer.status_code == 200, answer.text
    for row, got in zip(reference, answer.json(), strict=True):
        assert [g["label"] for g in got] == [f"LABEL_{i}" for i in np.argsort(-row, kind="stable")]
        np.testing.assert_allclose(
            sorted((g["score"] for g in got), reverse=True), sorted(row, reverse=True), atol=1e-4
        )
    single = client.post("/", json={"model": "nli", "inputs": pairs[0]}).json()  # TEI: a classifier's root is /predict
    assert [g["label"] for g in single] == [g["label"] for g in answer.json()[0]]
    ranked = client.post("/", json={"model": "ce", "query": QUERY, "texts": DOCUMENTS[:3]})  # a reranker's is /rerank
    assert ranked.status_code == 200 and {item["index"] for item in ranked.json()} == {0, 1, 2}
    embedded = client.post("/", json={"model": "tiny", "inputs": "the cat"})  # and an embedding model's is /embed
    assert embedded.status_code == 200 and len(embedded.json()[0]) == 32


def test_a_route_of_the_other_kind_is_a_400_naming_the_right_routes(client: httpx.Client) -> None:
    wrong = client.post("/v1/embeddings", json={"model": "ce", "input": "a"})
    assert wrong.status_code == 400
    assert "'ce' is a cross-encoder (reranker)" in wrong.json()["error"]["message"]
    assert "/rerank, /v1/rerank, /predict" in wrong.json()["error"]["message"]
    other = client.post("/v1/rerank", json={"model": "tiny", "query": "a", "documents": ["b"]})
    assert other.status_code == 400 and "use /v1/embeddings, /embed with it" in other.json()["error"]["message"]
    several = client.post("/rerank", json={"model": "nli", "query": "a", "texts": ["b"]})
    assert several.status_code == 400 and "label" in several.json()["error"]["message"]


def test_info_models_and_metrics_know_the_rerankers(client: httpx.Client) -> None:
    info = {m["model"]: m for m in client.get("/info").json()["models"]}
    assert (info["ce"]["kind"], info["nli"]["kind"], info["tiny"]["kind"]) == (
        "cross-encoder",
        "cross-encoder",
        "embedding",
    )
    assert info["ce"]["defaults"]["activation"] == "sigmoid" and info["nli"]["defaults"]["labels"] == [
        "LABEL_0",
        "LABEL_1",
        "LABEL_2",
    ]
    assert info["nli"]["backend"] == "onnx"
    listed = {m["id"]: m["root"] for m in client.get("/v1/models").json()["data"]}
    assert [name for name, root in listed.items() if name == root] == ["tiny", "ce", "nli"]
    assert listed["reranker"] == "ce"
    client.post("/v1/rerank", json={"model": "ce", "query": QUERY, "documents": DOCUMENTS[:2]})
    metrics = client.get("/metrics").text
    assert 'model="ce"' in metrics and 'route="/v1/rerank"' in metrics
