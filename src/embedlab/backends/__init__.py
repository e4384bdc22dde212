"""Runtime backends behind one protocol, created by name with :func:`create_backend`."""

from __future__ import annotations

from embedlab.backends.base import Backend, EncodedBatch
from embedlab.errors import ConfigError
from embedlab.models.spec import ModelSpec

BACKENDS: tuple[str, ...] = ("torch", "torch-bf16", "onnx", "onnx-int8")


def create_backend(name: str, spec: ModelSpec, device: str = "cpu", threads: int | None = None) -> Backend:
    """Build the named backend for ``spec``. Optional runtimes are imported only here, lazily.

    Raises:
        ConfigError: unknown backend name.
        BackendUnavailableError: the runtime or device is missing.
    """
    if name == "torch":
        from embedlab.backends.torch_backend import TorchBackend

        return TorchBackend(spec, device=device, threads=threads)
    if name == "torch-bf16":
        from embedlab.backends.torch_backend import TorchBackend

        return TorchBackend(spec, device=device, dtype="bfloat16", threads=threads)
    if name == "onnx":
        from embedlab.backends.onnx_backend import OnnxBackend

        return OnnxBackend(spec, device=device, threads=threads)
    if name == "onnx-int8":
        from embedlab.backends.onnx_backend import OnnxBackend
        from embedlab.backends.onnx_export import cached_or_export
        from embedlab.backends.quantize import quantized_graph

        graph = quantized_graph(cached_or_export(spec), "int8")
        return OnnxBackend(spec, device=device, threads=threads, graph=graph, name="onnx-int8")
    raise ConfigError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "Backend", "EncodedBatch", "create_backend"]
