"""embedlab: measure, plan and run text-embedding models on your own hardware.

>>> import embedlab
>>> model = embedlab.load()                       # the default model, offline, auto backend
>>> model.embed(["a sentence", "another"]).shape
(2, 384)
"""

from __future__ import annotations

from embedlab.engine.embedder import Embedder, EmbeddingResult
from embedlab.engine.loader import load, load_spec
from embedlab.engine.options import EmbedOptions
from embedlab.errors import (
    BackendError,
    BackendUnavailableError,
    ConfigError,
    DataFileError,
    EmbedlabError,
    EmptyInputError,
    ExportError,
    InferenceError,
    InputError,
    InputTooLongError,
    InputTypeError,
    ModelError,
    ModelLoadError,
    ModelNotFoundError,
    OutputError,
)
from embedlab.models.resolve import DEFAULT_MODEL
from embedlab.models.spec import ModelSpec
from embedlab.settings import EngineSettings
from embedlab.version import __version__

__all__ = [
    "BackendError",
    "BackendUnavailableError",
    "ConfigError",
    "DEFAULT_MODEL",
    "DataFileError",
    "EmbedOptions",
    "Embedder",
    "EmbeddingResult",
    "EmbedlabError",
    "EmptyInputError",
    "EngineSettings",
    "ExportError",
    "InferenceError",
    "InputError",
    "InputTooLongError",
    "InputTypeError",
    "ModelError",
    "ModelLoadError",
    "ModelNotFoundError",
    "ModelSpec",
    "OutputError",
    "__version__",
    "load",
    "load_spec",
]
