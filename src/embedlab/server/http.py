"""What every route handler shares: the app's state, the model a request names, reading a JSON body with a
byte limit, cancelling work whose client left, and the JSON answer with its timing headers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import orjson
from fastapi import Request
from starlette.responses import Response

from embedlab.errors import RequestTooLargeError
from embedlab.server.errors import UnsupportedMediaTypeError
from embedlab.server.metrics import MODEL_SCOPE_KEY
from embedlab.server.schemas import json_object
from embedlab.server.state import ServedModel, ServerState

T = TypeVar("T")
DRAIN_LIMIT = 64 * 1024 * 1024  # bytes of an oversized body read (and discarded) so the client sees the 413


class ClientGone(Exception):
    """The client closed the connection before its answer was ready."""


def server_state(request: Request) -> ServerState:
    """The app's :class:`ServerState`."""
    state: ServerState = request.app.state.server
    return state


def served_model(request: Request, requested: str | None) -> ServedModel:
    """The model a request names (:meth:`ServerState.model_for`), noted in its scope for the metrics' label.

    Raises:
        RequestSchemaError: no name while several models are served. UnknownModelError: a name not served.
    """
    model = server_state(request).model_for(requested)
    request.scope[MODEL_SCOPE_KEY] = model.name
    return model


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """``data`` as JSON (numpy arrays and numbers included)."""
    return Response(
        orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


def timing_headers(timings: dict[str, float], cache_hits: int | None = None) -> dict[str, str]:
    """``server-timing`` and TEI's ``x-*-time`` headers (milliseconds) of a request's stage ``timings`` (seconds),
    and ``x-cache-hits`` when the route has a cache."""
    ms = {stage: seconds * 1000.0 for stage, seconds in timings.items()}
    headers = {
        "server-timing": ", ".join(f"{stage};dur={value:.3f}" for stage, value in ms.items()),
        "x-tokenization-time": f"{ms['tokenize']:.3f}",
        "x-queue-time": f"{ms['queue']:.3f}",
        "x-inference-time": f"{ms['inference']:.3f}",
        "x-total-time": f"{ms['total']:.3f}",
    }
    if cache_hits is not None:
        headers["x-cache-hits"] = str(cache_hits)
    return headers


async def read_json_body(request: Request, limit: int) -> bytes:
    """The request body, at most ``limit`` bytes.

    Raises:
        UnsupportedMediaTypeError: a Content-Type other than JSON (415).
        RequestTooLargeError: over ``limit`` bytes (413); the body is read and discarded up to a cap
            first, so the client can read the answer.
    """
    content_type = request.headers.get("content-type")
    if content_type is not None:
        media = content_type.split(";", 1)[0].strip().lower()
        if media != "application/json" and not media.endswith("+json"):
            raise UnsupportedMediaTypeError(
                f"send the body as JSON with the header 'Content-Type: application/json' (got {media or 'none'!r})"
            )
    too_large = RequestTooLargeError(
        f"the body is over {limit} bytes (max_payload_bytes); send fewer or shorter inputs per request"
    )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + DRAIN_LIMIT:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        elif size > limit + DRAIN_LIMIT:
            break
    if size > limit:
        raise too_large
    return b"".join(chunks)


async def read_json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, read within the server's ``max_payload_bytes``.

    Raises:
        UnsupportedMediaTypeError (415), RequestTooLargeError (413), MalformedBodyError, RequestSchemaError (400).
    """
    return json_object(await read_json_body(request, server_state(request).settings.max_payload_bytes))


#: a route's handler of an already parsed JSON body (``POST /`` parses it first to pick the model)
JsonHandler = Callable[[Request, dict[str, Any]], Awaitable[Response]]


def json_endpoint(handler: JsonHandler) -> Callable[[Request], Awaitable[Response]]:
    """The FastAPI endpoint of ``handler``: the request's body read and parsed (:func:`read_json_object`), then
    handed on (the parsed body is not a parameter FastAPI would read as a body of its own)."""

    async def endpoint(request: Request) -> Response:
        return await handler(request, await read_json_object(request))

    return endpoint


async def _wait_for_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def run_unless_client_leaves(request: Request, work: Coroutine[Any, Any, T]) -> T:
    """Run ``work``; if the client disconnects first, cancel it (its queued texts are dropped) and raise ClientGone."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_wait_for_disconnect(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        raise
    finally:
        watcher.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    raise ClientGone
