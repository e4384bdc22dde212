"""Loading a model into an :class:`Embedder`: settings resolved, files found, tokenizer and backend built.

The package root re-exports :func:`load` and :func:`load_spec`; the engine's own callers (server,
tools) import them from here, never from the package root.
"""

from __future__ import annotations

from typing import Any

from embedlab.engine.embedder import Embedder
from embedlab.models.resolve import resolve_model
from embedlab.models.spec import ModelSpec, read_spec
from embedlab.settings import EngineSettings, load_settings


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
            hardware), ``torch`` (exact reference), ``torch-bf16``, ``onnx`` (exact), ``onnx-int8``
            (fast path, measured quality cost) or ``hybrid``.
        device: ``cpu`` (default), ``cuda`` or ``cuda:N``.
        threads: intra-op CPU threads (default: the physical cores available).
        settings: a full :class:`EngineSettings` (default: defaults < environment ``EMBEDLAB_*``);
            the keyword arguments override its fields.
        **overrides: any other :class:`EngineSettings` field (``max_batch_tokens``, ``long_input``...).

    Raises:
        ModelNotFoundError, ModelLoadError, BackendUnavailableError, ConfigError.
    """
    from embedlab.backends import create_backend
    from embedlab.engine.tokenize import load_tokenizer

    given = {"model": model, "backend": backend, "device": device, "threads": threads, **overrides}
    chosen = load_settings(EngineSettings, base=settings, **given)
    spec = load_spec(chosen.model)
    tokenizer = load_tokenizer(spec)
    runtime = create_backend(chosen.backend, spec, device=chosen.device, threads=chosen.threads)
    return Embedder(spec, runtime, tokenizer, chosen)
