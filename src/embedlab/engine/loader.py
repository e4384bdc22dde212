"""Loading a model: an embedding model into an :class:`Embedder`, a cross-encoder into a :class:`Reranker`;
settings resolved, files found, tokenizer and backend built.

The package root re-exports :func:`load`, :func:`load_reranker` and :func:`load_spec`; the engine's own
callers (server, tools) import them from here, never from the package root.
"""

from __future__ import annotations

from typing import Any

from embedlab.backends.base import Backend
from embedlab.engine.calibration import Calibration, auto_choice
from embedlab.engine.embedder import Embedder
from embedlab.engine.rerank import Reranker
from embedlab.models.cross_encoder import read_cross_encoder_spec
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
        backend: ``auto`` (default: the fastest backend on this machine, measured once, among those whose
            vectors match the exact reference to cosine ≥ 0.9999; see :mod:`embedlab.engine.calibration`),
            ``torch`` (exact reference), ``torch-bf16``, ``onnx`` (exact), ``openvino`` (bf16 where the CPU
            has it), ``openvino-f32`` (exact), ``onnx-int8`` (measured quality cost).
        device: ``cpu`` (default), ``cuda`` or ``cuda:N``.
        threads: intra-op CPU threads of each worker (default: the physical cores available, shared out
            between the workers; see :meth:`EngineSettings.worker_layout`).
        settings: a full :class:`EngineSettings` (default: defaults < environment ``EMBEDLAB_*``);
            the keyword arguments override its fields.
        **overrides: any other :class:`EngineSettings` field (``max_batch_tokens``, ``long_input``...).

    Raises:
        ModelNotFoundError, ModelLoadError, BackendUnavailableError, ConfigError.
        ModelKindError: the model is a cross-encoder (load it with :func:`load_reranker`).
    """
    from embedlab.engine.tokenize import load_tokenizer

    given = {"model": model, "backend": backend, "device": device, "threads": threads, **overrides}
    chosen = load_settings(EngineSettings, base=settings, **given)
    spec = load_spec(chosen.model)
    tokenizer = load_tokenizer(spec)
    workers, threads_per_worker = chosen.worker_layout()
    runtime, calibration = create_runtime(chosen.backend, spec, chosen.device, threads_per_worker, workers)
    return Embedder(spec, runtime, tokenizer, chosen, calibration)


def load_reranker(
    model: str,
    *,
    backend: str | None = None,
    device: str | None = None,
    threads: int | None = None,
    settings: EngineSettings | None = None,
    **overrides: Any,
) -> Reranker:
    """Load a cross-encoder (a sentence-transformers ``CrossEncoder`` folder or hub id) into a :class:`Reranker`.

    Args:
        model: a local directory or a Hugging Face repo id, resolved as :func:`load` resolves it.
        backend: ``torch`` (the exact reference), ``torch-bf16``, ``onnx`` (exact; the classification graph is
            exported once and cached beside, never in place of, the folder's embedding graph) or ``onnx-int8``.
            ``auto`` (the settings' default) runs ``torch``: the calibration that picks a faster backend
            measures embedding models only.
        device: ``cpu`` (default), ``cuda`` or ``cuda:N``.
        threads: intra-op CPU threads of each worker (see :meth:`EngineSettings.worker_layout`).
        settings: a full :class:`EngineSettings`; the keyword arguments override its fields.
        **overrides: any other :class:`EngineSettings` field; those a reranker uses are ``max_batch_tokens``,
            ``max_batch_size``, ``bucket_ratio``, ``workers`` and ``max_tokens`` (tokens per pair).

    Raises:
        ModelNotFoundError, ModelLoadError, BackendUnavailableError, ConfigError.
        ModelKindError: the model is an embedding model (load it with :func:`load`).
    """
    from embedlab.backends import create_backend
    from embedlab.engine.tokenize import load_tokenizer

    given = {"model": model, "backend": backend, "device": device, "threads": threads, **overrides}
    chosen = load_settings(EngineSettings, base=settings, **given)
    spec = read_cross_encoder_spec(resolve_model(chosen.model))
    tokenizer = load_tokenizer(spec)
    workers, threads_per_worker = chosen.worker_layout()
    name = "torch" if chosen.backend == "auto" else chosen.backend
    runtime = create_backend(name, spec, chosen.device, threads_per_worker, workers)
    return Reranker(spec, runtime, tokenizer, chosen)


def create_runtime(
    name: str, spec: ModelSpec, device: str = "cpu", threads: int | None = None, concurrency: int = 1
) -> tuple[Backend, Calibration | None]:
    """The backend ``name`` asks for, and for ``auto`` the calibration it was chosen by.

    ``auto`` runs what this machine's calibration decided (:func:`~embedlab.engine.calibration.auto_choice`):
    one backend, or two split by batch size.

    Raises:
        ConfigError: unknown backend name. BackendUnavailableError: the runtime or device is missing.
    """
    from embedlab.backends import create_backend

    if name != "auto":
        return create_backend(name, spec, device, threads, concurrency), None
    calibration = auto_choice(spec, device, threads)
    decision = calibration.decision
    small = create_backend(decision.small, spec, device, threads, concurrency)
    if decision.split_tokens is None:
        return small, calibration
    from embedlab.backends.split import SplitBackend

    large = create_backend(decision.large, spec, device, threads, concurrency)
    return SplitBackend(small, large, decision.split_tokens, name=decision.name), calibration
