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
from dataclasses import dataclass
from pathlib import PurePath

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

import embedlab
from embedlab.engine.batcher import DynamicBatcher
from embedlab.engine.cache import VectorCache, build_cache
from embedlab.engine.embedder import Embedder
from embedlab.errors import (
    BackendError,
    ConfigError,
    EmbedlabError,
    ModelLoadError,
    UnknownModelError,
)
from embedlab.server.auth import BearerAuthMiddleware
from embedlab.server.errors import (
    MethodNotAllowedError,
    RequestSchemaError,
    RouteNotFoundError,
    error_response,
)
from embedlab.server.metrics import RequestMetricsMiddleware, ServerMetrics
from embedlab.server.routes import ROUTES, router
from embedlab.server.settings import ServerSettings

log = logging.getLogger("embedlab.server")

INPUT_TYPE_PROMPTS: dict[str, tuple[str, ...]] = {
    "query": ("query",),
    "passage": ("passage", "document"),
    "document": ("document", "passage"),
}


@dataclass
class ServerState:
    """Everything the routes need, built once per app.

    Attributes:
        settings: the server settings.
        embedder: the loaded model.
        batcher: the dynamic batcher in front of the model.
        metrics: this app's Prometheus metrics.
        cache: the vector cache (None when disabled).
        served_name: the model name reported in responses.
        accepted_names: names a request's ``model`` may use.
        started_at: wall-clock time the app was created (seconds since the epoch).
    """

    settings: ServerSettings
    embedder: Embedder
    batcher: DynamicBatcher
    metrics: ServerMetrics
    cache: VectorCache | None
    served_name: str
    accepted_names: frozenset[str]
    started_at: float

    def check_model(self, requested: str | None) -> None:
        """Accept None, the served name, or an alias; else :class:`UnknownModelError` listing the names."""
        if requested is None or requested in self.accepted_names:
            return
        names = ", ".join(sorted(self.accepted_names))
        raise UnknownModelError(f"model {requested!r} is not served here; use one of: {names}")

    def prompt_name_for(self, prompt_name: str | None, input_type: str | None) -> str | None:
        """The model prompt a request asks for by ``prompt_name`` or by ``input_type`` (query / passage).

        A model without prompts ignores ``input_type`` (it embeds queries and passages alike).
        """
        if input_type is None:
            return prompt_name
        if prompt_name is not None:
            raise ConfigError("give either prompt_name or input_type, not both")
        prompts = self.embedder.spec.prompts
        if not prompts:
            return None
        for name in INPUT_TYPE_PROMPTS[input_type]:
            if name in prompts:
                return name
        raise ConfigError(
            f"model {self.served_name} has no prompt for input_type {input_type!r} "
            f"(its prompts: {', '.join(sorted(prompts))})"
        )


def load_embedder(settings: ServerSettings) -> Embedder:
    """Load the model on the configured backend; with none configured, ONNX, falling back to torch.

    Raises:
        ModelNotFoundError, ModelLoadError, BackendUnavailableError, ConfigError.
    """
    if settings.backend is not None:
        return embedlab.load(settings=settings.engine_settings(settings.backend))
    try:
        return embedlab.load(settings=settings.engine_settings("onnx"))
    except (BackendError, ModelLoadError) as exc:
        log.warning("the onnx backend is unavailable (%s); serving with torch instead", exc)
        return embedlab.load(settings=settings.engine_settings("torch"))


def _names(settings: ServerSettings, embedder: Embedder) -> tuple[str, frozenset[str]]:
    spec_name = embedder.spec.name
    served = settings.served_model_name or spec_name
    names = {served, spec_name, *settings.model_aliases}
    if "/" in spec_name or PurePath(spec_name).is_absolute():
        names.add(PurePath(spec_name).name)  # "all-MiniLM-L6-v2" for "sentence-transformers/all-MiniLM-L6-v2"
    return served, frozenset(n for n in names if n)


def create_app(settings: ServerSettings | None = None, embedder: Embedder | None = None) -> FastAPI:
    """Build the server app.

    Args:
        settings: server settings (default: from the environment).
        embedder: an already loaded model to serve instead of loading ``settings.model``.

    Raises:
        ModelNotFoundError, ModelLoadError, BackendUnavailableError, ConfigError: as :func:`embedlab.load`.
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
    served, accepted = _names(settings, embedder)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        batcher.start()
        started = time.perf_counter()
        try:
            await batcher.warm_up()
        except EmbedlabError:
            batcher.stop()
            raise
        log.info(
            "serving %s on %s (%s) — ready after a %.2f s warm-up",
            served,
            embedder.backend.name,
            embedder.backend.device,
            time.perf_counter() - started,
        )
        yield
        batcher.stop()
        if cache is not None:
            cache.close()

    app = FastAPI(
        title="embedlab",
        version=embedlab.__version__,
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
