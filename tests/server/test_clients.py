"""Real clients, unchanged, against a real server of the real default model on loopback.

openai (base64 by default, and floats), langchain-openai (its default sends cl100k_base token ids),
LlamaIndex's OpenAI-like client, and a Dify-style burst of single-text requests. Every vector must be
the one ``embedlab.load().embed`` gives for the same text.
"""

from __future__ import annotations

import base64
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from liveserver import LiveServer

from embedlab import DEFAULT_MODEL

pytestmark = pytest.mark.slow

TEXTS = [
    "A man is playing a guitar.",
    "Someone plays an instrument on stage.",
    "The stock market fell sharply today.",
    "Les marchés financiers ont chuté.",
    "naïve café résumé — 東京 🚀",
]


def close(got: Any, expected: Any) -> None:
    np.testing.assert_allclose(np.asarray(got, dtype=np.float32), expected, atol=1e-5)


def token_id_inputs(server: LiveServer) -> float:
    """Inputs the server received as token ids so far (from its own Prometheus counter)."""
    labels = {"model": DEFAULT_MODEL, "kind": "token_ids"}
    value = server.state.metrics.registry.get_sample_value("embedlab_inputs_total", labels)
    return float(value or 0.0)


def test_openai_client_base64_default_floats_batch_and_dimensions(
    default_server: LiveServer, default_model: Any
) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=default_server.url + "/v1", api_key="not-needed", max_retries=0)
    single = client.embeddings.create(model=DEFAULT_MODEL, input=TEXTS[0])  # the client asks for base64
    close([single.data[0].embedding], default_model.embed(TEXTS[:1]))
    assert single.model == DEFAULT_MODEL and single.data[0].index == 0
    assert single.usage.total_tokens == single.usage.prompt_tokens == int(default_model.count_tokens(TEXTS[:1])[0])

    batch = client.embeddings.create(model="all-MiniLM-L6-v2", input=TEXTS, encoding_format="float")
    assert [d.index for d in batch.data] == list(range(len(TEXTS)))
    close([d.embedding for d in batch.data], default_model.embed(TEXTS))
    assert batch.usage.total_tokens == int(default_model.count_tokens(TEXTS).sum())

    for encoding_format in ("base64", "float"):
        short = client.embeddings.create(
            model=DEFAULT_MODEL,
            input=TEXTS,
            dimensions=64,
            encoding_format=encoding_format,  # type: ignore[arg-type]
        )
        if encoding_format == "base64":  # asked for explicitly, the client hands over the string as is
            vectors = np.stack([np.frombuffer(base64.b64decode(d.embedding), dtype="<f4") for d in short.data])
        else:
            vectors = np.asarray([d.embedding for d in short.data], dtype=np.float32)
        assert vectors.shape == (len(TEXTS), 64)
        close(vectors, default_model.embed(TEXTS, dimensions=64))
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_openai_client_raises_its_own_errors_for_ours(default_server: LiveServer) -> None:
    import openai

    client = openai.OpenAI(base_url=default_server.url + "/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.BadRequestError, match="not served here") as wrong_model:
        client.embeddings.create(model="text-embedding-3-small", input="hi")
    assert wrong_model.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError, match="dimensions must be between 1 and the model's 384"):
        client.embeddings.create(model=DEFAULT_MODEL, input="hi", dimensions=4096)


def test_langchain_default_settings_send_token_ids_and_get_the_right_vectors(
    default_server: LiveServer, default_model: Any, tiktoken_offline: Path
) -> None:
    from langchain_openai import OpenAIEmbeddings

    embeddings = OpenAIEmbeddings(model=DEFAULT_MODEL, base_url=default_server.url + "/v1", api_key="x", max_retries=0)
    assert embeddings.check_embedding_ctx_length and embeddings.tiktoken_enabled  # the defaults: token ids
    before = token_id_inputs(default_server)
    close(embeddings.embed_documents(TEXTS), default_model.embed(TEXTS))
    close([embeddings.embed_query(TEXTS[1])], default_model.embed(TEXTS[1:2]))
    assert token_id_inputs(default_server) == before + len(TEXTS) + 1  # they did arrive as token ids


def test_langchain_raw_texts_get_the_same_vectors(default_server: LiveServer, default_model: Any) -> None:
    from langchain_openai import OpenAIEmbeddings

    embeddings = OpenAIEmbeddings(
        model=DEFAULT_MODEL,
        base_url=default_server.url + "/v1",
        api_key="x",
        check_embedding_ctx_length=False,
        max_retries=0,
    )
    before = token_id_inputs(default_server)
    close(embeddings.embed_documents(TEXTS), default_model.embed(TEXTS))
    assert token_id_inputs(default_server) == before


def test_llamaindex_openai_like_embedding(default_server: LiveServer, default_model: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # third-party import-time deprecations
        from llama_index.embeddings.openai_like import OpenAILikeEmbedding

    model = OpenAILikeEmbedding(
        model_name=DEFAULT_MODEL, api_base=default_server.url + "/v1", api_key="x", embed_batch_size=2
    )
    close(model.get_text_embedding_batch(TEXTS), default_model.embed(TEXTS))
    close([model.get_query_embedding(TEXTS[2])], default_model.embed(TEXTS[2:3]))


def test_dify_style_64_concurrent_single_text_requests(default_server: LiveServer, default_model: Any) -> None:
    texts = [f"request number {i}: {TEXTS[i % len(TEXTS)]} #{i * 7919 % 1000}" for i in range(64)]
    expected = default_model.embed(texts)

    def call(text: str) -> dict[str, Any]:
        payload = {"input": [text], "model": DEFAULT_MODEL, "encoding_format": "float", "user": "dify-user"}
        response = httpx.post(
            default_server.url + "/v1/embeddings", json=payload, headers={"Authorization": "Bearer dify"}, timeout=60
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    with ThreadPoolExecutor(64) as pool:
        answers = list(pool.map(call, texts))
    for i, answer in enumerate(answers):
        close([answer["data"][0]["embedding"]], expected[i : i + 1])  # its own text, by content
        assert answer["model"] == DEFAULT_MODEL
        assert answer["usage"]["total_tokens"] == int(default_model.count_tokens([texts[i]])[0])
