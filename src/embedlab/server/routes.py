"""The HTTP routes. Each handler parses, calls the engine, and shapes the answer; no model code here.

Bodies are read with a byte limit and parsed strictly (see :mod:`embedlab.server.schemas`); errors
are raised as embedlab errors and turned into answers by the one table in :mod:`embedlab.server.errors`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel
from starlette.responses import HTMLResponse, Response

from embedlab.engine.options import EmbedOptions
from embedlab.engine.serving import EmbedOutcome
from embedlab.engine.vector_precision import PRECISIONS
from embedlab.errors import ConfigError, InputTooLongError, WorkerUnavailableError
from embedlab.server.dashboard import dashboard_html
from embedlab.server.errors import RequestSchemaError, error_response
from embedlab.server.http import (
    ClientGone,
    JsonHandler,
    json_endpoint,
    json_response,
    read_json_body,
    read_json_object,
    run_unless_client_leaves,
    served_model,
    server_state,
    timing_headers,
)
from embedlab.server.int8_ranges import default_ranges_info
from embedlab.server.memory_share import METHOD as MEMORY_METHOD
from embedlab.server.memory_share import rss_bytes
from embedlab.server.rerank_routes import RERANK_SCHEMAS, tei_predict, tei_rerank
from embedlab.server.schemas import (
    EmbeddingsRequest,
    ParsedInput,
    TeiEmbedRequest,
    TokenizeRequest,
    check_batch_size,
    describe,
    validate_body,
    validate_object,
)
from embedlab.server.state import ModelKind, ServedModel
from embedlab.server.tokenids import decode_token_ids
from embedlab.server.truncation import HEADER as TRUNCATED_HEADER
from embedlab.server.truncation import too_long_hint
from embedlab.server.wire_format import base64_vectors, json_vectors
from embedlab.settings import LongInputPolicy
from embedlab.version import __version__

router = APIRouter()
ROUTES = frozenset(
    {"/", "/v1/embeddings", "/embeddings", "/embed", "/tokenize", "/v1/models", "/info", "/health", "/metrics"}
    | set(RERANK_SCHEMAS)
)
#: the JSON body schema of each POST route (tests/server/test_validation.py walks every field of each)
REQUEST_SCHEMAS: dict[str, type[BaseModel]] = {
    "/v1/embeddings": EmbeddingsRequest,
    "/embeddings": EmbeddingsRequest,
    "/embed": TeiEmbedRequest,
    "/tokenize": TokenizeRequest,
    "/": TeiEmbedRequest,  # POST / is the named model's main route (MAIN_ROUTES): /embed for an embedding model
    **RERANK_SCHEMAS,
}
TOKEN_IDS_INLINE = 20_000  # decode fewer ids than this in the event loop; more in a thread


def _long_input(truncate: bool | None, long_input: LongInputPolicy | None) -> LongInputPolicy | None:
    if truncate is None:
        return long_input
    implied: LongInputPolicy = "truncate" if truncate else "error"
    if long_input is not None and long_input != implied:
        raise ConfigError(f"truncate={str(truncate).lower()} contradicts long_input={long_input!r}; give one of them")
    return implied


async def _texts_of(model: ServedModel, parsed: ParsedInput) -> list[str]:
    if parsed.texts is not None:
        model.metrics.on_inputs("text", len(parsed.texts))
        return parsed.texts
    model.metrics.on_inputs("token_ids", len(parsed))
    ids = parsed.token_ids or []
    if sum(len(row) for row in ids) <= TOKEN_IDS_INLINE:
        return decode_token_ids(ids)
    return await asyncio.to_thread(decode_token_ids, ids)


def _with_ranges(model: ServedModel, options: EmbedOptions) -> EmbedOptions:
    """``options`` with the calibration file's ranges for an ``int8`` / ``uint8`` request, when the model has them.

    Raises:
        ConfigError: int8 / uint8 of vectors that are not normalised, on a server without a calibration
            file (the default [-1, 1] only fits normalised vectors); bad options, as the engine resolves them.
    """
    if options.precision not in ("int8", "uint8"):
        return options
    resolved = model.embedder.resolve(replace(options, precision=None))
    if model.int8_ranges is not None:
        return replace(options, ranges=model.int8_ranges.ranges_for(resolved.dimensions, resolved.normalize))
    if not resolved.normalize:
        raise ConfigError(
            f"precision {options.precision!r} of vectors that are not normalised needs measured ranges; start the "
            "server with int8_calibration_texts (--int8-calibration-texts FILE), or leave normalize on"
        )
    return options


def _headers(outcome: EmbedOutcome) -> dict[str, str]:
    """The timing headers and ``x-embedlab-truncated`` of an embedding answer."""
    return {**timing_headers(outcome.timings, outcome.cache_hits), TRUNCATED_HEADER: str(outcome.n_truncated)}


async def _embed(
    request: Request, model: ServedModel, texts: list[str], options: EmbedOptions, too_long_hint: str
) -> EmbedOutcome:
    """Embed ``texts`` with ``model``; a text over the limit under ``error`` raises with ``too_long_hint``.

    Raises:
        RequestSchemaError: the model is a cross-encoder (400, naming its routes).
        InputTooLongError: naming the input and what the client can do, in the route's field names.
        ClientGone: the client left first.
    """
    model.require("embedding")
    try:
        outcome = await run_unless_client_leaves(request, model.batcher.embed(texts, _with_ranges(model, options)))
    except InputTooLongError as exc:
        raise InputTooLongError(exc.index, exc.n_tokens, exc.limit, too_long_hint) from exc
    model.metrics.observe_request(outcome.timings, len(texts), outcome.total_tokens, outcome.n_truncated)
    return outcome


def _embeddings_openapi() -> dict[str, Any]:
    schema = EmbeddingsRequest.model_json_schema()
    schema["properties"]["input"] = {
        "anyOf": [
            {"type": "string"},
            {"type": "array", "items": {"type": "string"}},
            {"type": "array", "items": {"type": "integer"}},
            {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
        ]
    }
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


async def _create_embeddings(request: Request) -> Response:
    try:
        state = server_state(request)
        settings = state.settings
        raw = await read_json_body(request, settings.max_payload_bytes)
        body = validate_body(EmbeddingsRequest, raw, allow_unknown=not settings.reject_unknown_fields)
        model = served_model(request, body.model)
        parsed: ParsedInput = body.input
        check_batch_size(len(parsed), settings.max_client_batch)
        options = EmbedOptions(
            long_input=_long_input(body.truncate, body.long_input),
            prompt_name=body.prompt_name,
            input_type=body.input_type,
            dimensions=body.dimensions,
            normalize=body.normalize,
            precision=body.precision,
        )
        texts = await _texts_of(model, parsed)
        hint = too_long_hint(body.truncate, body.long_input, has_long_input=True)
        outcome = await _embed(request, model, texts, options, hint)
    except ClientGone:
        return Response(status_code=499)
    vectors = outcome.vectors
    embeddings = base64_vectors(vectors) if body.encoding_format == "base64" else json_vectors(vectors)
    data = [{"object": "embedding", "index": i, "embedding": embeddings[i]} for i in range(len(vectors))]
    tokens = outcome.total_tokens
    answer = {
        "object": "list",
        "data": data,
        "model": model.name,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens, "truncated_inputs": outcome.n_truncated},
    }
    return json_response(answer, headers=_headers(outcome))


router.add_api_route(
    "/v1/embeddings",
    _create_embeddings,
    methods=["POST"],
    summary="Create embeddings (OpenAI API)",
    openapi_extra=_embeddings_openapi(),
    response_class=Response,
)
router.add_api_route(
    "/embeddings",
    _create_embeddings,
    methods=["POST"],
    summary="Create embeddings (OpenAI API, without /v1)",
    include_in_schema=False,
    response_class=Response,
)


async def tei_embed(request: Request, data: dict[str, Any]) -> Response:
    """TEI's ``{"inputs": str | [str], ...}`` (:class:`TeiEmbedRequest`) → ``[[number]]``, or ``[str]`` in base64.

    The optional ``model`` (an extension: TEI serves one model) picks the model when several are served.
    """
    try:
        state = server_state(request)
        body = validate_object(TeiEmbedRequest, data, allow_unknown=not state.settings.reject_unknown_fields)
        model = served_model(request, body.model)
        texts = [body.inputs] if isinstance(body.inputs, str) else list(body.inputs)
        check_batch_size(len(texts), state.settings.max_client_batch, "inputs")
        model.metrics.on_inputs("text", len(texts))
        options = EmbedOptions(
            long_input=_long_input(body.truncate, None),
            prompt_name=body.prompt_name,
            dimensions=body.dimensions,
            normalize=body.normalize,
            precision=body.precision,
        )
        outcome = await _embed(request, model, texts, options, too_long_hint(body.truncate, None, has_long_input=False))
    except ClientGone:
        return Response(status_code=499)
    vectors = outcome.vectors
    answer = base64_vectors(vectors) if body.encoding_format == "base64" else json_vectors(vectors)
    return json_response(answer, headers=_headers(outcome))


router.add_api_route(
    "/embed",
    json_endpoint(tei_embed),
    methods=["POST"],
    summary="Embed (text-embeddings-inference style)",
    response_class=Response,
)


#: What ``POST /`` answers for each kind of served model: its main route, as TEI's router does (TEI's
#: clients, huggingface_hub's ``InferenceClient(base_url=...)`` among them, post to the root): ``/embed`` for
#: an embedding model; for a cross-encoder ``/rerank`` when it has one label (a reranker, TEI's ``Reranker``)
#: and ``/predict`` when it has several (TEI's ``Classifier``).
MAIN_ROUTES: dict[ModelKind, JsonHandler] = {
    "embedding": tei_embed,
    "cross-encoder": tei_rerank,
}


@router.post("/", summary="The model's main route (TEI style: /embed, /rerank or /predict)", response_class=Response)
async def main_route(request: Request) -> Response:
    """``POST /``: the main route (:data:`MAIN_ROUTES`) of the model the body's ``model`` names (or the one
    served); ``GET /`` stays the dashboard."""
    state = server_state(request)
    data = await read_json_object(request)
    named = data.get("model")
    if named is not None and not isinstance(named, str):
        raise RequestSchemaError(f"model: Input should be a valid string; got {describe(named)}", "model")
    model = state.model_for(named)
    if model.kind == "cross-encoder" and model.reranker.spec.num_labels > 1:
        return await tei_predict(request, data)
    return await MAIN_ROUTES[model.kind](request, data)


@router.post("/tokenize", summary="Tokenize with the model's tokenizer", response_class=Response)
async def tokenize(request: Request) -> Response:
    """``{"inputs": str | [str], "add_special_tokens", "prompt_name", "model"}`` → per input, its tokens, offsets."""
    state = server_state(request)
    raw = await read_json_body(request, state.settings.max_payload_bytes)
    body = validate_body(TokenizeRequest, raw, allow_unknown=not state.settings.reject_unknown_fields)
    if body.inputs is not None and body.input is not None:
        raise RequestSchemaError("give the texts to tokenize in 'inputs' or in 'input', not both", "input")
    field, given = ("input", body.input) if body.input is not None else ("inputs", body.inputs)
    if given is None:
        raise RequestSchemaError("field 'inputs' is required: the texts to tokenize", "inputs")
    model = served_model(request, body.model)
    texts = [given] if isinstance(given, str) else list(given)
    check_batch_size(len(texts), state.settings.max_client_batch, field)
    prefix = model.embedder.resolve(prompt_name=body.prompt_name).prompt if body.prompt_name is not None else ""
    encodings = await asyncio.to_thread(
        model.engine.tokenizer.encode_batch, [prefix + t for t in texts], add_special_tokens=body.add_special_tokens
    )
    answer = []
    for text, encoding in zip(texts, encodings, strict=True):
        full = prefix + text
        tokens = []
        for token_id, token, special, (start, stop) in zip(
            encoding.ids, encoding.tokens, encoding.special_tokens_mask, encoding.offsets, strict=True
        ):
            is_special = bool(special)
            tokens.append(
                {
                    "id": token_id,
                    "text": token if is_special else full[start:stop],
                    "special": is_special,
                    "start": None if is_special else start,
                    "stop": None if is_special else stop,
                }
            )
        answer.append(tokens)
    return json_response(answer)


@router.get("/v1/models", summary="The served models (OpenAI API)", response_class=Response)
async def list_models(request: Request) -> Response:
    """Every served model in load order, each followed by its aliases, as OpenAI model objects.

    ``root`` (an extension, as vLLM's) is the served name of the model a name reaches.
    """
    state = server_state(request)
    created = int(state.started_at)
    data = [
        {"id": name, "object": "model", "created": created, "owned_by": "embedlab", "root": model.name}
        for model in state.models
        for name in (model.name, *model.aliases)
    ]
    return json_response({"object": "list", "data": data})


def _runtime_info(model: ServedModel) -> dict[str, Any]:
    """What any served model reports on ``/info``: names, kind, runtime, workers, limits, memory share."""
    engine = model.engine
    limits = model.batcher.settings
    return {
        "model": model.name,
        "aliases": model.aliases,
        "kind": model.kind,
        "spec": engine.spec.to_dict(),
        "backend": engine.backend.name,
        "device": engine.backend.device,
        "workers": limits.workers,
        "threads_per_worker": engine.settings.threads,
        "ready": model.batcher.ready,
        "limits": {
            "max_tokens_per_input": engine.defaults.max_tokens,
            "max_batch_tokens": limits.max_batch_tokens,
            "max_batch_size": limits.max_batch_size,
            "max_concurrent_requests": limits.max_concurrent_requests,
            "max_queue_segments": limits.max_queue_segments,
            "request_timeout_s": limits.request_timeout_s,
            "inference_timeout_s": limits.inference_timeout_s,
        },
        "memory": {
            "rss_share_bytes": model.memory.share_bytes,
            "load_rss_bytes": model.memory.load_bytes,
            "warm_up_rss_bytes": model.memory.warm_up_bytes,
        },
    }


def _model_info(model: ServedModel) -> dict[str, Any]:
    """One served model's part of ``/info``: spec, runtime, limits, defaults, cache and memory share."""
    if model.kind == "cross-encoder":
        spec = model.reranker.spec
        return {
            **_runtime_info(model),
            "defaults": {"activation": spec.activation, "labels": list(spec.labels), "raw_scores": False},
            "routes": ["/rerank", "/v1/rerank", "/predict", "/"],
        }
    embedder = model.embedder
    return {
        **_runtime_info(model),
        "backend_auto": embedder.calibration.summary() if embedder.calibration is not None else None,
        "defaults": {
            "long_input": embedder.settings.long_input,
            "dimensions": embedder.settings.dimensions,
            "prompt_name": embedder.settings.prompt_name,
            "normalize": embedder.spec.normalize,
            "precision": embedder.defaults.precision,
        },
        "int8_ranges": model.int8_ranges.describe() if model.int8_ranges is not None else default_ranges_info(),
        "cache": {
            "memory_entries": model.settings.cache_entries,
            "path": str(model.cache_path) if model.cache_path else None,
            "held": len(model.cache) if model.cache is not None else 0,
        },
    }


@router.get("/info", summary="Served models, their limits and runtime", response_class=Response)
async def info(request: Request) -> Response:
    """The server's version, limits and memory, and per served model (``models``, in load order) its spec,
    backend, workers, limits, defaults, cache and RSS share."""
    state = server_state(request)
    settings = state.settings
    answer = {
        "version": __version__,
        "uptime_s": round(time.time() - state.started_at, 3),
        "ready": all(model.batcher.ready for model in state.models),
        "models": [_model_info(model) for model in state.models],
        "limits": {
            "max_payload_bytes": settings.max_payload_bytes,
            "max_client_batch": settings.max_client_batch,
        },
        "precisions": list(PRECISIONS),
        "memory": {
            "rss_bytes": rss_bytes(),  # read as is: trimming the heap on every /info poll would cost the allocator
            "rss_before_models_bytes": state.rss_before_models,
            "method": MEMORY_METHOD,
        },
        "auth": settings.api_key is not None,
        "routes": sorted(ROUTES),
    }
    return json_response(answer)


@router.get("/health", summary="200 when every model's round trip succeeded recently", response_class=Response)
async def health(request: Request) -> Response:
    """200 after warm-up while every model's workers answer; 503 while any model is starting, stuck, dead or
    failing. The body lists each model's state (``models``); the top-level figures sum them (the age: the oldest)."""
    state = server_state(request)
    snapshots = await asyncio.gather(*(model.batcher.check_health() for model in state.models))
    models = [
        {
            "model": model.name,
            "status": snapshot.status,
            "last_success_age_s": snapshot.last_success_age_s,
            "queue_segments": snapshot.queue_segments,
            "in_flight_requests": snapshot.in_flight_requests,
            "restarts": snapshot.restarts,
            "error": snapshot.last_error if snapshot.status not in ("ok", "starting") else None,
        }
        for model, snapshot in zip(state.models, snapshots, strict=True)
    ]
    sick = [entry for entry in models if entry["status"] != "ok"]
    if not sick:
        ages = [s.last_success_age_s for s in snapshots if s.last_success_age_s is not None]
        return json_response(
            {
                "status": "ok",
                "last_success_age_s": max(ages) if ages else None,
                "queue_segments": sum(s.queue_segments for s in snapshots),
                "in_flight_requests": sum(s.in_flight_requests for s in snapshots),
                "restarts": sum(s.restarts for s in snapshots),
                "models": models,
            }
        )
    problems = "; ".join(
        f"model {entry['model']!r} unhealthy ({entry['status']})" + (f": {entry['error']}" if entry["error"] else "")
        for entry in sick
    )
    return error_response(WorkerUnavailableError(problems, retry_after=2), extra={"models": models})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """The Prometheus text exposition of this server's registry."""
    return Response(server_state(request).metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/", summary="Dashboard page", response_class=HTMLResponse, include_in_schema=False)
async def dashboard() -> HTMLResponse:
    """The dashboard: model card, live metrics, a try-it box with a similarity matrix."""
    return HTMLResponse(dashboard_html())
