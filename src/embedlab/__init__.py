"""embedlab: measure, plan and run text-embedding models on your own hardware.

>>> import embedlab
>>> model = embedlab.load()                       # the default model, offline, auto backend
>>> model.embed(["a sentence", "another"]).shape
(2, 384)
"""

from __future__ import annotations

from typing import Any

from embedlab.engine.embedder import Embedder, EmbeddingResult
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
from embedlab.models.resolve import DEFAULT_MODEL, resolve_model
from embedlab.models.spec import ModelSpec, read_spec
from embedlab.settings import EngineSettings

__version__ = "0.1.0"


def load_spec(model: str | None = None) -> ModelSpec:
    """Resolve ``model`` (name, path or None for the default) and read its :class:`ModelSpec`."""
    return read_spec(resolve_model(model))


def load(
    model: str | None = None,
    *,
    backend: str | None = None,
    device: str | None = None,
    threads: int | None = None,
    settings: EngineSettings | None = None,
    **overrides: Any,
) -> Embedder:
    """Load a model into an :class:`Embedder`.

    Args:
        model: a local directory, a Hugging Face repo id, or None for ``sentence-transformers/all-MiniLM-L6-v2``.
        backend: ``auto`` (default: the fastest backend whose STS quality cost is ≤ 0.001 on this
            hardware: ``torch-bf16`` on CPUs with bf16 units, else ``onnx``), ``torch`` (exact reference),
            ``torch-bf16``, ``onnx`` (exact) or ``onnx-int8`` (fast path, measured quality cost).
        device: ``cpu`` (default), ``cuda`` or ``cuda:N``.
        threads: intra-op CPU threads (default: the physical cores available).
        settings: a full :class:`EngineSettings`; keyword arguments override its fields.
        **overrides: any other :class:`EngineSettings` field (``max_batch_tokens``, ``long_input``...).

    Raises:
        ModelNotFoundError, ModelLoadError, BackendUnavailableError, ConfigError.
    """
    from embedlab.backends import create_backend
    from embedlab.engine.tokenize import load_tokenizer

    base = settings or EngineSettings()
    given = {"model": model, "backend": backend, "device": device, "threads": threads, **overrides}
    chosen = base.model_copy(update={k: v for k, v in given.items() if v is not None})
    try:
        chosen = EngineSettings.model_validate(chosen.model_dump())
    except Exception as exc:  # pydantic.ValidationError, with every bad field named
        raise ConfigError(f"invalid settings: {exc}") from exc
    spec = load_spec(chosen.model)
    tokenizer = load_tokenizer(spec)
    runtime = create_backend(chosen.backend, spec, device=chosen.device, threads=chosen.threads)
    return Embedder(spec, runtime, tokenizer, chosen)


__all__ = [
    "BackendError",
    "BackendUnavailableError",
    "ConfigError",
    "DEFAULT_MODEL",
    "DataFileError",
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
