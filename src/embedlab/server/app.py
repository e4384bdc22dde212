"""The app factory: settings in, a FastAPI app out, with its engine, metrics, auth and error mapping.

Loading the model happens in :func:`create_app` (so a bad model fails before a port is bound); the
worker threads start and the warm-up runs in the app's lifespan, and ``/health`` says ready only after
the warm-up round trip succeeded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from embedlab.engine.cache import build_cache
from embedlab.engine.embedder import Embedder
from embedlab.engine.loader import load
from embedlab.engine.serving import DynamicBatcher
from embedlab.errors import EmbedlabError
from embedlab.server.auth import BearerAuthMiddleware
from embedlab.server.errors import (
    MethodNotAllowedError,
    RequestSchemaError,
    RouteNotFoundError,
    error_response,
)
from embedlab.server.int8_ranges import load_calibration
from embedlab.server.metrics import RequestMetricsMiddleware, ServerMetrics
from embedlab.server.routes import ROUTES, router
from embedlab.server.settings import ServerSettings
from embedlab.server.state import ServerState, served_names
from embedlab.version import __version__

log = logging.getLogger("embedlab.server")


def load_embedder(settings: ServerSettings) -> Embedder:
    """Load the model on the configured backend, set up for the server's concurrent workers.

    Raises:
        ModelNotFoundError, ModelLoadError, BackendUnavailableError, ConfigError.
    """
    return load(settings=settings.engine_settings())


def create_app(settings: ServerSettings | None = None, embedder: Embedder | None = None) -> FastAPI:
    """Build the server app.

    Args:
        settings: server settings (default: from the environment).
        embedder: an already loaded model to serve instead of loading ``settings.model``.

    Raises:
        ModelNotFoundError, ModelLoadError, BackendUnavailableError, ConfigError: as :func:`embedlab.load`.
        DataFileError: ``int8_calibration_texts`` cannot be read or holds fewer than 2 texts.
    """
    settings = settings or ServerSettings()
    embedder = embedder or load_embedder(settings)
    cache = build_cache(
        settings.cache_entries, settings.cache_path, embedder.spec.hidden_size, settings.cache_disk_entries
    )
    holder: list[DynamicBatcher] = []
    metrics = ServerMetrics(queue_depth=lambda: holder[0].queue_segments if holder else 0)
    batcher = DynamicBatcher(embedder, settings.batcher_settings(), cache=cache, observer=metrics)
    holder.append(batcher)
    served, accepted = served_names(settings, embedder.spec.name)
    calibration = None
    if settings.int8_calibration_texts is not None:
        calibration = load_calibration(embedder, settings.int8_calibration_texts)
        log.info("int8 / uint8 ranges measured on %d texts of %s", len(calibration.vectors), calibration.path)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        batcher.start()
        started = time.perf_counter()
        try:
            await batcher.warm_up()
        except EmbedlabError:
            batcher.stop()
            raise
        choice = embedder.calibration
        log.info(
            "serving %s on %s (%s, %d worker(s)) — ready after a %.2f s warm-up%s",
            served,
            embedder.backend.name,
            embedder.backend.device,
            batcher.settings.workers,
            time.perf_counter() - started,
            f"; backend auto chose {embedder.backend.name}: {choice.decision.reason}" if choice else "",
        )
        yield
        batcher.stop()
        if cache is not None:
            cache.close()

    app = FastAPI(
        title="embedlab",
        version=__version__,
        summary="OpenAI-compatible text-embedding server",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.server = ServerState(
        settings=settings,
        embedder=embedder,
        batcher=batcher,
        metrics=metrics,
        cache=cache,
        served_name=served,
        accepted_names=accepted,
        started_at=time.time(),
        int8_ranges=calibration,
    )
    app.include_router(router)
    _install_error_handlers(app)
    if settings.api_key is not None:
        app.add_middleware(BearerAuthMiddleware, api_key=settings.api_key.get_secret_value())
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics, routes=ROUTES)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    async def on_embedlab_error(request: Request, exc: Exception) -> Response:
        return error_response(exc)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        if status == 404:
            return error_response(RouteNotFoundError(f"no route {request.url.path}; see GET /info for the API"))
        if status == 405:
            return error_response(MethodNotAllowedError(f"{request.method} is not allowed on {request.url.path}"))
        return error_response(RequestSchemaError(str(getattr(exc, "detail", exc))))

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        return error_response(RequestSchemaError(f"invalid request: {exc}"))

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(exc)

    app.add_exception_handler(EmbedlabError, on_embedlab_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_unexpected)
