"""embedlab: measure, plan and run text-embedding models on your own hardware.

>>> import embedlab
>>> model = embedlab.load()                       # the default model, offline, auto backend
>>> model.embed(["a sentence", "another"]).shape
(2, 384)
>>> reranker = embedlab.load_reranker("path/to/cross-encoder")  # a sentence-transformers CrossEncoder folder
>>> result = reranker.rerank("a query", ["a document", "another"], top_n=1)
>>> result.scores.shape, len(result.ranking)
((2,), 1)
"""

from __future__ import annotations

from embedlab.engine.embedder import Embedder, EmbeddingResult
from embedlab.engine.loader import load, load_reranker, load_spec
from embedlab.engine.options import EmbedOptions
from embedlab.engine.rerank import PairScores, Reranker, RerankResult
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
    ModelKindError,
    ModelLoadError,
    ModelNotFoundError,
    OutputError,
    PairTooLongError,
)
from embedlab.models.cross_encoder import CrossEncoderSpec
from embedlab.models.resolve import DEFAULT_MODEL
from embedlab.models.spec import ModelSpec
from embedlab.settings import EngineSettings
from embedlab.version import __version__

__all__ = [
    "BackendError",
    "BackendUnavailableError",
    "ConfigError",
    "CrossEncoderSpec",
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
    "ModelKindError",
    "ModelLoadError",
    "ModelNotFoundError",
    "ModelSpec",
    "OutputError",
    "PairScores",
    "PairTooLongError",
    "RerankResult",
    "Reranker",
    "__version__",
    "load",
    "load_reranker",
    "load_spec",
]
