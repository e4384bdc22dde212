"""The app factory: settings in, a FastAPI app out, with its engine(s), metrics, auth and error mapping.

Loading the models happens in :func:`create_app` (so a bad model fails before a port is bound), one
after the other in the order of the settings, each one's resident-memory growth measured
(:mod:`embedlab.server.memory_share`); the worker threads start and the warm-ups run in the app's
lifespan, and ``/health`` says ready only after every model's warm-up round trip succeeded.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from embedlab.engine.cache import VectorCache, build_cache
from embedlab.engine.embedder import Embedder
from embedlab.engine.loader import load, load_reranker
from embedlab.engine.rerank import Reranker
from embedlab.engine.serving import DynamicBatcher
from embedlab.errors import ConfigError, EmbedlabError
from embedlab.models.kind import model_kind
from embedlab.models.resolve import resolve_model
from embedlab.server.auth import BearerAuthMiddleware
from embedlab.server.errors import (
    MethodNotAllowedError,
    RequestSchemaError,
    RouteNotFoundError,
    error_response,
)
from embedlab.server.int8_ranges import load_calibration
from embedlab.server.memory_share import ModelMemory, measure_growth, resident_bytes
from embedlab.server.metrics import RequestMetricsMiddleware, ServerMetrics
from embedlab.server.model_names import ModelNames, accepted_names_of, resolve_names
from embedlab.server.rerank_routes import router as rerank_router
from embedlab.server.routes import ROUTES, router
from embedlab.server.settings import ServerSettings
from embedlab.server.state import ServedModel, ServerState
from embedlab.version import __version__

log = logging.getLogger("embedlab.server")


def load_embedder(settings: ServerSettings) -> Embedder:
    """Load the model on the configured backend, set up for the server's concurrent workers.

    Raises:
        ModelNotFoundError, ModelLoadError, BackendUnavailableError, ConfigError.
    """
    return load(settings=settings.engine_settings())


def load_engine(settings: ServerSettings) -> Embedder | Reranker:
    """Load the model as what it is: an embedding model (:func:`load_embedder`) or a cross-encoder
    (:func:`~embedlab.engine.loader.load_reranker`), told apart by its own files (:mod:`embedlab.models.kind`).

    Raises:
        ModelNotFoundError, ModelLoadError, BackendUnavailableError, ConfigError.
    """
    kind, _evidence = model_kind(resolve_model(settings.model).path)
    if kind == "cross-encoder":
        engine = settings.engine_settings()
        return load_reranker(str(engine.model), settings=engine)
    return load_embedder(settings)


def model_settings(settings: ServerSettings) -> list[ServerSettings]:
    """The settings of each model ``settings`` serves (:meth:`ServerSettings.per_model`).

    Raises:
        ConfigError: an entry of ``models`` with an invalid value.
    """
    try:
        return settings.per_model()
    except ValueError as exc:
        raise ConfigError(f"invalid settings: {exc}") from None


def cache_file(settings: ServerSettings, model: ServerSettings, index: int, served: str) -> Path | None:
    """The sqlite cache file of the ``index``-th model, served as ``served``, with its settings ``model``.

    One model: ``cache_path`` as set. Several: a model's own ``cache_path`` when its entry sets one; the
    server-wide one gets the served name before its suffix (``vectors.sqlite`` → ``vectors.bge-small.sqlite``),
    since one file holds vectors of one size.
    """
    if model.cache_path is None or not settings.models or settings.models[index].cache_path is not None:
        return model.cache_path
    path = model.cache_path
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", served).strip("-.") or f"model{index}"
    return path.with_name(f"{path.stem}.{slug}{path.suffix}")


def _load_models(
    per_model: Sequence[ServerSettings], given: Sequence[Embedder | Reranker | None]
) -> tuple[list[Embedder | Reranker], list[ModelNames], list[frozenset[str]], list[ModelMemory]]:
    """Load (or take) each model in order, measuring the RSS growth of each load; names checked after each."""
    embedders: list[Embedder | Reranker] = []
    names: list[ModelNames] = []
    memories: list[ModelMemory] = []
    accepted: list[frozenset[str]] = []
    for settings, ready in zip(per_model, given, strict=True):
        memory = ModelMemory()
        if ready is None:
            embedder, memory.load_bytes = measure_growth(partial(load_engine, settings))
        else:
            embedder = ready
        embedders.append(embedder)
        names.append(accepted_names_of(settings, embedder.spec.name))
        memories.append(memory)
        accepted = resolve_names(names)  # a clash fails here, before the next model loads
    return embedders, names, accepted, memories


def create_app(
    settings: ServerSettings | None = None,
    embedder: Embedder | Reranker | None = None,
    *,
    embedders: Sequence[Embedder | Reranker | None] | None = None,
) -> FastAPI:
    """Build the server app.

    Args:
        settings: server settings (default: from the environment); one model, or several in ``models``; each
            an embedding model or a cross-encoder (reranker), told apart by its files.
        embedder: an already loaded model (an Embedder or a Reranker) to serve instead of loading
            ``settings.model`` (one model only).
        embedders: per served model in order, an already loaded model or None to load it (several models).

    Raises:
        ModelNotFoundError, ModelLoadError, BackendUnavailableError, ConfigError: as :func:`embedlab.load`;
            ConfigError also for two models that answer to the same name, or share a cache file.
        DataFileError: ``int8_calibration_texts`` cannot be read or holds fewer than 2 texts.
    """
    settings = settings or ServerSettings()
    per_model = model_settings(settings)
    if embedder is not None and embedders is not None:
        raise ConfigError("give the loaded model in embedder or in embedders, not both")
    given = list(embedders) if embedders is not None else [embedder] + [None] * (len(per_model) - 1)
    if len(given) != len(per_model):
        raise ConfigError(f"{len(given)} loaded model(s) given for {len(per_model)} served model(s)")
    rss_before = resident_bytes()
    loaded, names, accepted, memories = _load_models(per_model, given)
    metrics = ServerMetrics()
    models: list[ServedModel] = []
    files: dict[Path, str] = {}
    for index, (own, model) in enumerate(zip(per_model, loaded, strict=True)):
        served = names[index].served
        path = cache_file(settings, own, index, served)
        if path is not None and path in files:
            raise ConfigError(
                f"models {files[path]!r} and {served!r} would share the cache file {path}; give each its own"
            )
        if path is not None:
            files[path] = served
        cache: VectorCache | None = None
        if isinstance(model, Embedder):
            cache = build_cache(own.cache_entries, path, model.spec.hidden_size, own.cache_disk_entries)
        model_metrics = metrics.for_model(served)
        batcher = DynamicBatcher(model, own.batcher_settings(), cache=cache, observer=model_metrics)
        model_metrics.watch_queue(partial(getattr, batcher, "queue_segments"))
        calibration = None
        if own.int8_calibration_texts is not None and isinstance(model, Embedder):
            calibration = load_calibration(model, own.int8_calibration_texts)
            log.info(
                "%s: int8 / uint8 ranges measured on %d texts of %s", served, len(calibration.vectors), calibration.path
            )
        models.append(
            ServedModel(
                name=served,
                accepted_names=accepted[index],
                settings=own,
                engine=model,
                kind="embedding" if isinstance(model, Embedder) else "cross-encoder",
                batcher=batcher,
                metrics=model_metrics,
                cache=cache,
                cache_path=path,
                int8_ranges=calibration,
                memory=memories[index],
            )
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for served_model in models:
            served_model.batcher.start()
        try:
            for served_model in models:
                await _warm_up(served_model)
        except EmbedlabError:
            for served_model in models:
                served_model.batcher.stop()
            raise
        yield
        for served_model in models:
            served_model.batcher.stop()
            if served_model.cache is not None:
                served_model.cache.close()

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
        models=tuple(models),
        metrics=metrics,
        started_at=time.time(),
        rss_before_models=rss_before,
    )
    app.include_router(router)
    app.include_router(rerank_router)
    _install_error_handlers(app)
    if settings.api_key is not None:
        app.add_middleware(BearerAuthMiddleware, api_key=settings.api_key.get_secret_value())
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics, routes=ROUTES)
    return app


async def _warm_up(model: ServedModel) -> None:
    """Run a model's warm-up round trip, measure the RSS it added, and log that it is ready."""
    engine = model.engine
    before = resident_bytes()
    started = time.perf_counter()
    await model.batcher.warm_up()
    seconds = time.perf_counter() - started
    after = resident_bytes()
    if before is not None and after is not None:
        model.memory.warm_up_bytes = after - before
    choice = engine.calibration if isinstance(engine, Embedder) else None
    share = model.memory.share_bytes
    log.info(
        "serving %s on %s (%s, %d worker(s) x %s thread(s)) — ready after a %.2f s warm-up%s%s",
        model.name,
        engine.backend.name,
        engine.backend.device,
        model.batcher.settings.workers,
        engine.settings.threads,
        seconds,
        f"; RSS share {share / 2**20:.0f} MB" if share is not None else "",
        f"; backend auto chose {engine.backend.name}: {choice.decision.reason}" if choice else "",
    )


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
