"""Runtime backends behind one protocol, created by name with :func:`create_backend`."""

from __future__ import annotations

from embedlab.backends.base import Backend, EncodedBatch
from embedlab.errors import ConfigError
from embedlab.models.spec import ModelSpec

BACKENDS: tuple[str, ...] = ("torch", "torch-bf16", "onnx", "onnx-int8")


def cpu_has_bf16() -> bool:
    """Whether this CPU has native bfloat16 matrix instructions (AVX512-BF16 or AMX-BF16)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool({"avx512_bf16", "amx_bf16"} & flags)
    except OSError:
        return False
    return False


def auto_backend(device: str = "cpu") -> str:
    """The default backend: the fastest one whose measured quality cost on STS Benchmark is ≤ 0.001.

    Measured (README, "Backends"): bfloat16 PyTorch costs +0.0001 Spearman and is the fastest such backend
    where the hardware has bf16 matrix units; without them bf16 is emulated and slow, so ONNX Runtime fp32
    (exact) is chosen. On CUDA, bf16 where the GPU supports it, else fp32 PyTorch.
    """
    if device.startswith("cuda"):
        try:
            import torch

            return "torch-bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "torch"
        except ImportError:
            return "onnx"
    return "torch-bf16" if cpu_has_bf16() else "onnx"


def create_backend(name: str, spec: ModelSpec, device: str = "cpu", threads: int | None = None) -> Backend:
    """Build the named backend for ``spec`` (``auto``: see :func:`auto_backend`). Runtimes load lazily here.

    Raises:
        ConfigError: unknown backend name.
        BackendUnavailableError: the runtime or device is missing.
    """
    if name == "auto":
        name = auto_backend(device)
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
    raise ConfigError(f"unknown backend {name!r}; choose one of auto, {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "Backend", "EncodedBatch", "auto_backend", "cpu_has_bf16", "create_backend"]
