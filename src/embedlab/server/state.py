"""What the routes need from the app, built once per app: settings, model, batcher, metrics, names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath
from typing import Literal

from embedlab.engine.cache import VectorCache
from embedlab.engine.embedder import Embedder
from embedlab.engine.serving import DynamicBatcher
from embedlab.errors import UnknownModelError
from embedlab.server.int8_ranges import CalibrationRanges
from embedlab.server.metrics import ServerMetrics
from embedlab.server.settings import ServerSettings

#: what kind of model a server serves; it picks the main route that ``POST /`` answers with
ModelKind = Literal["embedding"]


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
        int8_ranges: int8 / uint8 ranges measured on the calibration file (None: the default [-1, 1]).
        model_kind: the kind of the served model (``POST /`` answers with its main route).
    """

    settings: ServerSettings
    embedder: Embedder
    batcher: DynamicBatcher
    metrics: ServerMetrics
    cache: VectorCache | None
    served_name: str
    accepted_names: frozenset[str]
    started_at: float
    int8_ranges: CalibrationRanges | None = None
    model_kind: ModelKind = "embedding"

    def check_model(self, requested: str | None) -> None:
        """Accept None, the served name, or an alias; else :class:`UnknownModelError` listing the names."""
        if requested is None or requested in self.accepted_names:
            return
        names = ", ".join(sorted(self.accepted_names))
        raise UnknownModelError(f"model {requested!r} is not served here; use one of: {names}")


def served_names(settings: ServerSettings, spec_name: str) -> tuple[str, frozenset[str]]:
    """(the name reported in responses, every name a request's ``model`` may use) for a model.

    The accepted names are the served name, the model's own name, the aliases, and the last part of a
    hub name or path ("all-MiniLM-L6-v2" for "sentence-transformers/all-MiniLM-L6-v2").
    """
    served = settings.served_model_name or spec_name
    names = {served, spec_name, *settings.model_aliases}
    if "/" in spec_name or PurePath(spec_name).is_absolute():
        names.add(PurePath(spec_name).name)
    return served, frozenset(n for n in names if n)
