"""Runtime backends behind one protocol, created by name with :func:`create_backend`.

``auto`` is not a backend of its own: the engine measures the ones here on the machine at hand and
runs the fastest that matches the exact reference (:mod:`embedlab.engine.calibration`).
"""

from __future__ import annotations

from typing import Literal

from embedlab.backends.base import Backend, EncodedBatch
from embedlab.cpu import cpu_has_bf16
from embedlab.errors import ConfigError
from embedlab.models.spec import ModelFiles, ModelSpec

BACKENDS: tuple[str, ...] = ("torch", "torch-bf16", "onnx", "onnx-int8", "openvino", "openvino-f32")
#: the backends that run a cross-encoder's classification head (OpenVINO runs embedding models only)
CROSS_ENCODER_BACKENDS: tuple[str, ...] = ("torch", "torch-bf16", "onnx", "onnx-int8")


#: batches up to this many padded tokens have their length padded to a multiple of 16 on ``openvino`` with
#: several workers (see :class:`~embedlab.backends.openvino_backend.OpenVinoBackend` ``seq_bucket``)
THROUGHPUT_BUCKET_TOKENS = 1024


def create_backend(
    name: str, spec: ModelFiles, device: str = "cpu", threads: int | None = None, concurrency: int = 1
) -> Backend:
    """Build the named backend for ``spec``. Runtimes load lazily here.

    Args:
        name: one of :data:`BACKENDS` (:data:`CROSS_ENCODER_BACKENDS` for a cross-encoder).
        spec: the model: a :class:`ModelSpec`, or a cross-encoder's spec (its ``output`` is ``logits``).
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        threads: intra-op CPU threads of each call (default: the physical cores available).
        concurrency: callers that run ``forward`` at the same time (the server's workers); a runtime
            that needs to know (OpenVINO: one stream each) sets itself up for them.

    Raises:
        ConfigError: unknown backend name, or one that does not run this kind of model.
        BackendUnavailableError: the runtime or device is missing.
    """
    if spec.output == "logits" and name not in CROSS_ENCODER_BACKENDS:
        known = ", ".join(CROSS_ENCODER_BACKENDS)
        reason = "runs embedding models only" if name in BACKENDS else "is not a backend"
        raise ConfigError(f"backend {name!r} {reason}; for a cross-encoder choose one of {known}")
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
    if name in ("openvino", "openvino-f32") and isinstance(spec, ModelSpec):
        from embedlab.backends.openvino_backend import OpenVinoBackend

        precision: Literal["bf16", "f32"] = "bf16" if name == "openvino" and cpu_has_bf16() else "f32"
        if concurrency > 1:  # one stream per concurrent caller, each with its share of the threads
            return OpenVinoBackend(
                spec,
                device=device,
                threads=None if threads is None else threads * concurrency,
                precision=precision,
                mode="throughput",
                streams=concurrency,
                split_min_rows=None,
                name=name,
                # every batch up to 1,024 padded tokens (all of the server's, by its default budget) padded to a
                # multiple of 16 tokens: far fewer shapes, each of which OpenVINO keeps kernels and memory for
                # (serve_load, 64 clients: same texts/s, peak RSS 375 vs 464 MB); offline batches are larger
                bucket_max_tokens=THROUGHPUT_BUCKET_TOKENS,
            )
        return OpenVinoBackend(spec, device=device, threads=threads, precision=precision, mode="latency", name=name)
    raise ConfigError(f"unknown backend {name!r}; choose one of auto, {', '.join(BACKENDS)}")


__all__ = [
    "BACKENDS",
    "CROSS_ENCODER_BACKENDS",
    "Backend",
    "EncodedBatch",
    "create_backend",
]
