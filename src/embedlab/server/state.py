"""What the routes need from the app, built once per app: the settings, the served models, the metrics.

A server serves one model or several (``ServerSettings.models``); each :class:`ServedModel` has its own
batcher, workers, cache and metrics series, and a request picks one by ``model`` (:meth:`ServerState.model_for`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from embedlab.engine.cache import VectorCache
from embedlab.engine.embedder import Embedder
from embedlab.engine.rerank import Reranker
from embedlab.engine.serving import DynamicBatcher
from embedlab.errors import UnknownModelError
from embedlab.server.errors import RequestSchemaError
from embedlab.server.int8_ranges import CalibrationRanges
from embedlab.server.memory_share import ModelMemory
from embedlab.server.metrics import ModelMetrics, ServerMetrics
from embedlab.server.settings import ServerSettings

#: what kind of model a server serves; it picks the main route that ``POST /`` answers with
ModelKind = Literal["embedding", "cross-encoder"]
#: the routes each kind of model answers (named in the error a request to the other kind gets)
KIND_ROUTES: dict[str, str] = {
    "embedding": "/v1/embeddings, /embed",
    "cross-encoder": "/rerank, /v1/rerank, /predict",
}


@dataclass
class ServedModel:
    """One model the server serves, with everything that is its own.

    Attributes:
        name: the name reported in responses (``served_model_name``, else the model's own name).
        accepted_names: every name a request's ``model`` may use for it (see :mod:`embedlab.server.model_names`).
        settings: this model's settings: the server-wide ones with its ``models`` entry's fields in place.
        engine: the loaded model: an :class:`Embedder`, or a :class:`Reranker` for a cross-encoder
            (:attr:`embedder` / :attr:`reranker` give it as the kind a route needs).
        batcher: the dynamic batcher in front of it (its own queue, admission limits and workers).
        metrics: its labelled metrics series (the batcher's observer).
        cache: its vector cache (None when disabled, and for a cross-encoder: scores are never cached).
        cache_path: the sqlite file of its cache (None: memory only).
        int8_ranges: int8 / uint8 ranges measured on the calibration file (None: the default [-1, 1]).
        kind: the kind of model (``POST /`` answers with its main route).
        memory: the RSS growth measured while it loaded and warmed up.
    """

    name: str
    accepted_names: frozenset[str]
    settings: ServerSettings
    engine: Embedder | Reranker
    batcher: DynamicBatcher
    metrics: ModelMetrics
    cache: VectorCache | None
    cache_path: Path | None = None
    int8_ranges: CalibrationRanges | None = None
    kind: ModelKind = "embedding"
    memory: ModelMemory = field(default_factory=ModelMemory)

    @property
    def embedder(self) -> Embedder:
        """The model as an embedding model.

        Raises:
            RequestSchemaError: it is a cross-encoder (400, naming the routes it answers).
        """
        if not isinstance(self.engine, Embedder):
            raise self._wrong_kind("an embedding model")
        return self.engine

    @property
    def reranker(self) -> Reranker:
        """The model as a cross-encoder.

        Raises:
            RequestSchemaError: it is an embedding model (400, naming the routes it answers).
        """
        if not isinstance(self.engine, Reranker):
            raise self._wrong_kind("a cross-encoder (reranker)")
        return self.engine

    def require(self, kind: ModelKind) -> None:
        """Check the model is of ``kind`` before any work.

        Raises:
            RequestSchemaError: it is not (400, naming the routes it answers).
        """
        if self.kind != kind:
            raise self._wrong_kind("a cross-encoder (reranker)" if kind == "cross-encoder" else "an embedding model")

    def _wrong_kind(self, needed: str) -> RequestSchemaError:
        what = "a cross-encoder (reranker)" if self.kind == "cross-encoder" else "an embedding model"
        return RequestSchemaError(
            f"model {self.name!r} is {what}; this route needs {needed}: use {KIND_ROUTES[self.kind]} with it", "model"
        )

    @property
    def aliases(self) -> list[str]:
        """The accepted names other than the served name, sorted."""
        return sorted(self.accepted_names - {self.name})


@dataclass
class ServerState:
    """Everything the routes need, built once per app.

    Attributes:
        settings: the server-wide settings.
        models: the served models, in load order (at least one).
        metrics: this app's Prometheus metrics.
        started_at: wall-clock time the app was created (seconds since the epoch).
        rss_before_models: the process's resident bytes before the first model loaded (None: unknown).
    """

    settings: ServerSettings
    models: tuple[ServedModel, ...]
    metrics: ServerMetrics
    started_at: float
    rss_before_models: int | None = None
    _by_name: dict[str, ServedModel] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name = {name: model for model in self.models for name in model.accepted_names}

    def model_for(self, requested: str | None, field_name: str = "model") -> ServedModel:
        """The model a request names: by served name or alias; None picks the one model if only one is served.

        Raises:
            RequestSchemaError: None while several models are served (400, naming them).
            UnknownModelError: a name no served model answers to (400, listing the names).
        """
        if requested is None:
            if len(self.models) == 1:
                return self.models[0]
            names = ", ".join(model.name for model in self.models)
            raise RequestSchemaError(
                f"this server serves {len(self.models)} models; name one in '{field_name}': {names}", field_name
            )
        model = self._by_name.get(requested)
        if model is None:
            names = ", ".join(sorted(self._by_name))
            raise UnknownModelError(f"model {requested!r} is not served here; use one of: {names}")
        return model
