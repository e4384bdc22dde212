"""The cross-encoder routes: TEI's ``/rerank`` and ``/predict``, and ``/v1/rerank`` in the Jina / Cohere shape.

Pairs go through the model's own dynamic batcher (the same token-budget queue and workers as embeddings:
:meth:`~embedlab.engine.serving.DynamicBatcher.rerank` / ``predict``), and the scores are those of
``sentence_transformers.CrossEncoder(path).predict`` on the same pairs: the activation the model's config
names (sigmoid for a one-label reranker) unless ``raw_scores`` asks for the logits.

=================  ====================================================  ======================================
route              request                                               answer
=================  ====================================================  ======================================
``/rerank``        TEI: ``query``, ``texts``, ``raw_scores``,            ``[{index, score, text?}]``, best first
                   ``return_text``, ``truncate`` (default false)
``/v1/rerank``     Jina / Cohere: ``model``, ``query``, ``documents``    ``{id, model, results: [{index,
                   (strings or ``{"text"}``), ``top_n``,                 relevance_score, document?}], usage}``
                   ``return_documents``, ``truncate`` (default true)
``/predict``       TEI: ``inputs`` (a pair or pairs), ``raw_scores``,    per pair ``[{score, label}]``, best first
                   ``truncate``
=================  ====================================================  ======================================

``/rerank`` also takes the Jina / Cohere body (``documents`` instead of ``texts``) and answers it in that
shape, so a client configured with the server's root URL instead of ``/v1`` works too. Pairs cut at the
token limit are counted in ``x-embedlab-truncated`` (and ``usage.truncated_inputs``), never silently.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import Response

from embedlab.engine.rerank import PairScores, RerankResult
from embedlab.errors import InputTooLongError, PairTooLongError
from embedlab.server.http import (
    ClientGone,
    json_endpoint,
    json_response,
    run_unless_client_leaves,
    served_model,
    server_state,
    timing_headers,
)
from embedlab.server.rerank_schemas import TeiPredictRequest, TeiRerankRequest, V1RerankRequest
from embedlab.server.schemas import check_batch_size, validate_object
from embedlab.server.state import ServedModel
from embedlab.server.truncation import HEADER as TRUNCATED_HEADER

router = APIRouter()
#: the JSON body schema of each cross-encoder route (tests/server/test_validation.py walks every field of each)
RERANK_SCHEMAS: dict[str, type[BaseModel]] = {
    "/rerank": TeiRerankRequest,
    "/v1/rerank": V1RerankRequest,
    "/predict": TeiPredictRequest,
}
TOO_LONG_HINT = 'send "truncate": true to cut the longer text of each pair first, or shorten the texts'


def _headers(scores: PairScores) -> dict[str, str]:
    return {**timing_headers(scores.timings), TRUNCATED_HEADER: str(scores.n_truncated)}


def _observe(model: ServedModel, scores: PairScores) -> None:
    model.metrics.observe_request(scores.timings, len(scores.tokens), scores.total_tokens, scores.n_truncated)


def _body(request: Request, data: dict[str, Any], schema: type[BaseModel]) -> Any:
    """The parsed body as ``schema``."""
    return validate_object(schema, data, allow_unknown=not server_state(request).settings.reject_unknown_fields)


async def _rerank(
    request: Request,
    model: ServedModel,
    query: str,
    texts: list[str],
    raw_scores: bool,
    truncate: bool,
    top_n: Any,
    field: str,
) -> RerankResult:
    """The batcher's ranking of ``texts`` against ``query``; a pair over the limit names ``truncate``.

    Raises:
        PairTooLongError: with ``truncate`` false, a pair over the limit (400).
        ClientGone: the client left first.
    """
    check_batch_size(len(texts), server_state(request).settings.max_client_batch, field)
    model.require("cross-encoder")
    try:
        result = await run_unless_client_leaves(
            request, model.batcher.rerank(query, texts, raw_scores=raw_scores, truncate=truncate, top_n=top_n)
        )
    except InputTooLongError as exc:
        raise PairTooLongError(exc.index, exc.n_tokens, exc.limit, TOO_LONG_HINT) from exc
    _observe(model, result)
    return result


def _v1_answer(model: ServedModel, body: V1RerankRequest, texts: list[str], result: RerankResult) -> dict[str, Any]:
    results = []
    for index in result.ranking:
        item: dict[str, Any] = {"index": index, "relevance_score": float(result.scores[index])}
        if body.return_documents:
            item["document"] = {"text": texts[index]}
        results.append(item)
    return {
        "id": f"rerank-{uuid.uuid4().hex}",
        "object": "list",
        "model": model.name,
        "results": results,
        "usage": {"total_tokens": result.total_tokens, "truncated_inputs": result.n_truncated},
    }


async def v1_rerank(request: Request, data: dict[str, Any]) -> Response:
    """``/v1/rerank``: the Jina / Cohere body (:class:`V1RerankRequest`) → ``{results: [...], usage}``."""
    try:
        body: V1RerankRequest = _body(request, data, V1RerankRequest)
        model = served_model(request, body.model)
        texts = body.texts()
        result = await _rerank(request, model, body.query, texts, False, body.truncate, body.top_n, "documents")
    except ClientGone:
        return Response(status_code=499)
    return json_response(_v1_answer(model, body, texts, result), headers=_headers(result))


async def tei_rerank(request: Request, data: dict[str, Any]) -> Response:
    """``/rerank`` (TEI, :class:`TeiRerankRequest`) → ``[{index, score, text?}]`` best first; a Jina / Cohere
    body (``documents`` given and ``texts`` not) is answered as ``/v1/rerank`` answers it."""
    if "documents" in data and "texts" not in data:
        return await v1_rerank(request, data)
    try:
        body: TeiRerankRequest = _body(request, data, TeiRerankRequest)
        model = served_model(request, body.model)
        result = await _rerank(request, model, body.query, body.texts, body.raw_scores, body.truncate, None, "texts")
    except ClientGone:
        return Response(status_code=499)
    answer = []
    for index in result.ranking:
        item: dict[str, Any] = {"index": index, "score": float(result.scores[index])}
        if body.return_text:
            item["text"] = body.texts[index]
        answer.append(item)
    return json_response(answer, headers=_headers(result))


async def tei_predict(request: Request, data: dict[str, Any]) -> Response:
    """``/predict`` (TEI, :class:`TeiPredictRequest`) → per pair its labels' scores, best first; one pair sent
    alone is answered with its one list."""
    try:
        body: TeiPredictRequest = _body(request, data, TeiPredictRequest)
        model = served_model(request, body.model)
        pairs = body.inputs.pairs
        check_batch_size(len(pairs), server_state(request).settings.max_client_batch, "inputs")
        labels = model.reranker.spec.labels
        try:
            scores = await run_unless_client_leaves(
                request, model.batcher.predict(pairs, raw_scores=body.raw_scores, truncate=body.truncate)
            )
        except InputTooLongError as exc:
            raise PairTooLongError(exc.index, exc.n_tokens, exc.limit, TOO_LONG_HINT) from exc
    except ClientGone:
        return Response(status_code=499)
    _observe(model, scores)
    rows = scores.scores.reshape(len(pairs), -1)
    answer = [
        [{"score": float(row[column]), "label": labels[column]} for column in (-row).argsort(kind="stable")]
        for row in rows
    ]
    return json_response(answer[0] if body.inputs.single else answer, headers=_headers(scores))


router.add_api_route(
    "/rerank",
    json_endpoint(tei_rerank),
    methods=["POST"],
    summary="Rerank texts against a query (TEI)",
    response_class=Response,
)
router.add_api_route(
    "/v1/rerank",
    json_endpoint(v1_rerank),
    methods=["POST"],
    summary="Rerank documents against a query (Jina / Cohere)",
    response_class=Response,
)
router.add_api_route(
    "/predict",
    json_endpoint(tei_predict),
    methods=["POST"],
    summary="Score pairs with a cross-encoder (TEI)",
    response_class=Response,
)
