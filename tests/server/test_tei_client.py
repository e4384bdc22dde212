"""TEI's own client: huggingface_hub's ``InferenceClient(base_url=...).feature_extraction`` against a real server.

The client posts TEI's body (``{"inputs": ..., "normalize", "prompt_name", "truncate",
"truncation_direction", "dimensions", "encoding_format"}``, None values left out) to the server's root;
``POST /`` answers as ``/embed`` for an embedding model, and ``GET /`` stays the dashboard.

huggingface_hub refuses every request in offline mode (``HF_HUB_OFFLINE=1``, which the test runs set so
that nothing is downloaded), loopback included; these tests switch that off for the client only, and
the client is only ever pointed at the server on 127.0.0.1.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from huggingface_hub import InferenceClient
from huggingface_hub.errors import HfHubHTTPError
from liveserver import LiveServer, live_server, tiny_settings

from embedlab.engine.embedder import Embedder
from embedlab.server import create_app

TEXTS = ["the cat sat on the mat", "a dog", "stock markets fell sharply today"]


@pytest.fixture(autouse=True, scope="module")
def _client_online() -> Iterator[None]:
    import huggingface_hub.constants

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
        yield


@pytest.fixture(scope="module")
def http(tiny_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=tiny_server.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def hub(tiny_server: LiveServer) -> InferenceClient:
    return InferenceClient(base_url=tiny_server.url)


def embed_route(http: httpx.Client, inputs: str | list[str], **fields: Any) -> np.ndarray:
    answer = http.post("/embed", json={"inputs": inputs, **fields})
    assert answer.status_code == 200, answer.text[:300]
    return np.asarray(answer.json(), dtype=np.float32)


def test_feature_extraction_of_one_text_and_of_a_list(hub: InferenceClient, http: httpx.Client) -> None:
    one = hub.feature_extraction("hello")
    assert one.dtype == np.float32 and one.shape == (1, 32)  # TEI answers [[...]] for a single text too
    np.testing.assert_array_equal(one, embed_route(http, "hello"))
    many = hub.feature_extraction(TEXTS)
    assert many.shape == (len(TEXTS), 32)
    np.testing.assert_array_equal(many, embed_route(http, TEXTS))


def test_every_field_the_client_sends_is_taken(
    hub: InferenceClient, http: httpx.Client, tiny_embedder: Embedder
) -> None:
    fields = {"normalize": False, "truncate": True, "dimensions": 8}
    got = hub.feature_extraction(TEXTS, truncation_direction="right", encoding_format="float", **fields)
    np.testing.assert_array_equal(got, embed_route(http, TEXTS, truncation_direction="right", **fields))
    np.testing.assert_allclose(got, tiny_embedder.embed(TEXTS, normalize=False, dimensions=8), atol=1e-5)
    assert not np.allclose(np.linalg.norm(got, axis=1), 1.0)


def test_the_root_answers_exactly_as_embed_with_its_headers(http: httpx.Client) -> None:
    root = http.post("/", json={"inputs": TEXTS, "precision": "int8"})
    embed = http.post("/embed", json={"inputs": TEXTS, "precision": "int8"})
    assert root.status_code == 200 and root.json() == embed.json()
    assert root.headers["x-embedlab-truncated"] == "0" and "x-total-time" in root.headers
    packed = http.post("/", json={"inputs": TEXTS, "encoding_format": "base64"}).json()
    vectors = np.stack([np.frombuffer(base64.b64decode(row), dtype="<f4") for row in packed])
    np.testing.assert_array_equal(vectors, embed_route(http, TEXTS))


def test_get_root_is_still_the_dashboard_and_errors_reach_the_client(hub: InferenceClient, http: httpx.Client) -> None:
    page = http.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    with pytest.raises(HfHubHTTPError) as caught:
        hub.feature_extraction("hello", truncation_direction="left")
    assert caught.value.response is not None and caught.value.response.status_code == 400
    assert "truncation_direction" in caught.value.response.json()["error"]["message"]
    assert http.put("/", json={"inputs": "a"}).status_code == 405


def test_the_client_sends_its_key(tiny_embedder: Embedder) -> None:
    app = create_app(tiny_settings(api_key="s3cret"), embedder=tiny_embedder)
    with live_server(app) as server:
        with pytest.raises(HfHubHTTPError) as caught:
            InferenceClient(base_url=server.url, api_key="wrong").feature_extraction("hello")
        assert caught.value.response is not None and caught.value.response.status_code == 401
        vector = InferenceClient(base_url=server.url, api_key="s3cret").feature_extraction("hello")
        np.testing.assert_allclose(vector, tiny_embedder.embed(["hello"]), atol=1e-5)
