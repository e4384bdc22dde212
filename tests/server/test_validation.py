"""One status for one kind of error: every request-validation error is a 400 naming the field and the value.

The test walks every field of every POST route's body schema (read from the pydantic models, so a new
field or route is covered without touching this file) with a value of the wrong type, and every field
that has one with a wrong value of the right type, against a real server on loopback serving a tiny embedding
model (``tiny``) and a tiny cross-encoder (``tiny-ce``): every body names its model.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import httpx
import orjson
import pytest
from fastapi.routing import APIRoute
from liveserver import live_server
from pydantic import BaseModel

from embedlab.server import ServerSettings, create_app
from embedlab.server.rerank_routes import router as rerank_router
from embedlab.server.rerank_schemas import TeiPredictRequest, TeiRerankRequest, V1RerankRequest
from embedlab.server.routes import REQUEST_SCHEMAS, router
from embedlab.server.schemas import EmbeddingsRequest, TeiEmbedRequest, TokenizeRequest

#: a minimal valid body of each schema (the walked field is added to it; its first field is a required one)
VALID_BODIES: dict[type[BaseModel], dict[str, Any]] = {
    EmbeddingsRequest: {"input": "a", "model": "tiny"},
    TeiEmbedRequest: {"inputs": "a", "model": "tiny"},
    TokenizeRequest: {"inputs": "a", "model": "tiny"},
    TeiRerankRequest: {"query": "a", "texts": ["b"], "model": "tiny-ce"},
    V1RerankRequest: {"query": "a", "documents": ["b"], "model": "tiny-ce"},
    TeiPredictRequest: {"inputs": ["a", "b"], "model": "tiny-ce"},
}
#: a field given instead of another one of the valid body (the other is left out)
ALTERNATIVES: dict[tuple[type[BaseModel], str], str] = {(TokenizeRequest, "input"): "inputs"}
#: per field, a value of the right type the server must refuse, and text its message must quote
WRONG_VALUES: dict[tuple[type[BaseModel], str], tuple[Any, str]] = {
    (EmbeddingsRequest, "input"): ([], "empty list"),
    (EmbeddingsRequest, "model"): ("gpt-nope", "'gpt-nope'"),
    (EmbeddingsRequest, "encoding_format"): ("hex", '"hex"'),
    (EmbeddingsRequest, "dimensions"): (100_000, "100000"),
    (EmbeddingsRequest, "long_input"): ("drop", '"drop"'),
    (EmbeddingsRequest, "prompt_name"): ("nope", "'nope'"),
    (EmbeddingsRequest, "input_type"): ("code", '"code"'),
    (EmbeddingsRequest, "precision"): ("float8", '"float8"'),
    (TeiEmbedRequest, "inputs"): ([], "empty list"),
    (TeiEmbedRequest, "truncation_direction"): ("left", '"left"'),
    (TeiEmbedRequest, "prompt_name"): ("nope", "'nope'"),
    (TeiEmbedRequest, "dimensions"): (0, "got 0"),
    (TeiEmbedRequest, "precision"): ("int4", '"int4"'),
    (TeiEmbedRequest, "encoding_format"): ("hex", '"hex"'),
    (TeiEmbedRequest, "model"): ("gpt-nope", "'gpt-nope'"),
    (TokenizeRequest, "inputs"): ([], "empty list"),
    (TokenizeRequest, "input"): ([], "empty list"),
    (TokenizeRequest, "prompt_name"): ("nope", "'nope'"),
    (TokenizeRequest, "model"): ("gpt-nope", "'gpt-nope'"),
    (TeiRerankRequest, "query"): ("  ", "query"),
    (TeiRerankRequest, "texts"): ([], "empty list"),
    (TeiRerankRequest, "truncation_direction"): ("left", '"left"'),
    (TeiRerankRequest, "model"): ("tiny", "'tiny' is an embedding model"),
    (V1RerankRequest, "query"): ("", "query"),
    (V1RerankRequest, "documents"): ([], "empty list"),
    (V1RerankRequest, "model"): ("gpt-nope", "'gpt-nope'"),
    (V1RerankRequest, "top_n"): (0, "got 0"),
    (TeiPredictRequest, "inputs"): ([["a", "b", "c"]], '["a","b","c"]'),
    (TeiPredictRequest, "truncation_direction"): ("left", '"left"'),
    (TeiPredictRequest, "model"): ("tiny", "'tiny' is an embedding model"),
}
#: fields where every value of the right type is valid
ANY_VALUE_OF_ITS_TYPE: set[tuple[type[BaseModel], str]] = {
    (EmbeddingsRequest, "user"),
    (EmbeddingsRequest, "truncate"),
    (EmbeddingsRequest, "normalize"),
    (TeiEmbedRequest, "truncate"),
    (TeiEmbedRequest, "normalize"),
    (TokenizeRequest, "add_special_tokens"),
    (TeiRerankRequest, "raw_scores"),
    (TeiRerankRequest, "return_text"),
    (TeiRerankRequest, "truncate"),
    (V1RerankRequest, "return_documents"),
    (V1RerankRequest, "truncate"),
    (TeiPredictRequest, "raw_scores"),
    (TeiPredictRequest, "truncate"),
}


def admits_strings(annotation: Any) -> bool:
    """Whether a field of this annotation takes some JSON string."""
    if annotation is Any or annotation is str:
        return True
    origin = get_origin(annotation)
    if origin is Literal:
        return any(isinstance(choice, str) for choice in get_args(annotation))
    if origin is Annotated:
        return admits_strings(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return any(admits_strings(arm) for arm in get_args(annotation))
    return False


def wrong_types(schema: type[BaseModel], field: str) -> list[Any]:
    """Values of a JSON type the field does not take: an object (no field takes one), and a number or a string."""
    return [{"wrong": "type"}, 12345 if admits_strings(schema.model_fields[field].annotation) else "12345"]


def body_with(schema: type[BaseModel], field: str, value: Any) -> dict[str, Any]:
    body = {k: v for k, v in VALID_BODIES[schema].items() if k != ALTERNATIVES.get((schema, field))}
    return {**body, field: value}


WRONG_TYPE_CASES = [
    (path, field, value)
    for path, schema in REQUEST_SCHEMAS.items()
    for field in schema.model_fields
    for value in wrong_types(schema, field)
]
WRONG_VALUE_CASES = [
    (path, field, *WRONG_VALUES[(schema, field)])
    for path, schema in REQUEST_SCHEMAS.items()
    for field in schema.model_fields
    if (schema, field) in WRONG_VALUES
]


@pytest.fixture(scope="module")
def client(tiny_bert_dir: Path, tiny_cross_encoder_dir: Path) -> Iterator[httpx.Client]:
    models = [
        {"model": str(tiny_bert_dir), "backend": "torch", "served_model_name": "tiny"},
        {"model": str(tiny_cross_encoder_dir), "backend": "torch", "served_model_name": "tiny-ce"},
    ]
    settings = ServerSettings(models=models, inference_timeout_s=5.0, request_timeout_s=20.0)
    with live_server(create_app(settings)) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


def bad_request(client: httpx.Client, path: str, **request: Any) -> dict[str, Any]:
    answer = client.post(path, **request)
    assert answer.status_code == 400, answer.text[:300]
    error: dict[str, Any] = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
    return error


def test_every_post_route_has_a_schema_and_every_field_a_verdict() -> None:
    posted = {
        r.path for r in [*router.routes, *rerank_router.routes] if isinstance(r, APIRoute) and "POST" in r.methods
    }
    assert posted == set(REQUEST_SCHEMAS)
    for schema in set(REQUEST_SCHEMAS.values()):
        assert schema in VALID_BODIES, f"give {schema.__name__} a valid body in VALID_BODIES"
        for field in schema.model_fields:
            key = (schema, field)
            assert (key in WRONG_VALUES) != (key in ANY_VALUE_OF_ITS_TYPE), (
                f"{schema.__name__}.{field}: add a wrong value to WRONG_VALUES, or to ANY_VALUE_OF_ITS_TYPE "
                "if every value of its type is valid"
            )


@pytest.mark.parametrize("path", sorted(REQUEST_SCHEMAS))
def test_the_valid_bodies_are_answered(client: httpx.Client, path: str) -> None:
    answer = client.post(path, json=VALID_BODIES[REQUEST_SCHEMAS[path]])
    assert answer.status_code == 200, answer.text[:300]


@pytest.mark.parametrize(
    ("path", "field", "value"), WRONG_TYPE_CASES, ids=[f"{p} {f} {v!r}" for p, f, v in WRONG_TYPE_CASES]
)
def test_a_wrong_type_is_a_400_naming_the_field_and_the_value(
    client: httpx.Client, path: str, field: str, value: Any
) -> None:
    error = bad_request(client, path, json=body_with(REQUEST_SCHEMAS[path], field, value))
    assert error["param"] == field and error["code"] == "invalid_request_schema"
    assert error["message"].startswith(field) and orjson.dumps(value).decode() in error["message"]


@pytest.mark.parametrize(
    ("path", "field", "value", "quoted"), WRONG_VALUE_CASES, ids=[f"{c[0]} {c[1]} {c[2]!r}" for c in WRONG_VALUE_CASES]
)
def test_a_wrong_value_is_a_400_naming_the_field_and_the_value(
    client: httpx.Client, path: str, field: str, value: Any, quoted: str
) -> None:
    error = bad_request(client, path, json=body_with(REQUEST_SCHEMAS[path], field, value))
    assert field in error["message"] and quoted in error["message"]
    assert error["param"] in (field, None)  # None where the model's limits, not the schema, refused it


@pytest.mark.parametrize("path", sorted(REQUEST_SCHEMAS))
def test_unknown_missing_and_misshapen_bodies_are_400s(client: httpx.Client, path: str) -> None:
    schema = REQUEST_SCHEMAS[path]
    valid = VALID_BODIES[schema]
    unknown = bad_request(client, path, json={**valid, "temperature": 0.2})
    assert unknown["param"] == "temperature" and "unknown field 'temperature' (got 0.2" in unknown["message"]
    assert all(field in unknown["message"] for field in schema.model_fields)  # it lists the route's fields
    required = next(iter(valid))
    missing = bad_request(client, path, json={})
    if path == "/":  # POST / answers with the named model's main route: with two served, it needs the name first
        assert missing["param"] == "model" and "name one in 'model': tiny, tiny-ce" in missing["message"]
    else:
        assert missing["param"] == required and f"'{required}' is required" in missing["message"]
    for shape, text in (([valid], "[{"), ("a", '"a" (string)'), (None, "null")):
        error = bad_request(client, path, content=orjson.dumps(shape), headers={"content-type": "application/json"})
        assert "must be a JSON object" in error["message"] and text in error["message"]
    malformed = bad_request(client, path, content=b'{"inputs": ', headers={"content-type": "application/json"})
    assert malformed["code"] == "invalid_json"


def test_the_other_4xx_stay_what_they_are(client: httpx.Client) -> None:
    assert client.post("/embed", content=b"inputs=a", headers={"content-type": "text/plain"}).status_code == 415
    assert client.post("/embed", json={"inputs": ["a"] * 5000, "model": "tiny"}).status_code == 413
    assert client.get("/embed").status_code == 405
    assert client.post("/nowhere", json={}).status_code == 404
