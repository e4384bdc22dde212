"""Runtime backends behind one protocol, created by name with :func:`create_backend`."""

from __future__ import annotations

from embedlab.backends.base import Backend, EncodedBatch
from embedlab.errors import ConfigError
from embedlab.models.spec import ModelSpec

BACKENDS: tuple[str, ...] = ("torch", "torch-bf16", "onnx", "onnx-int8", "hybrid")

# hybrid: batches of at most this many padded tokens run on ONNX Runtime fp32, larger ones on bf16 PyTorch.
# Measured crossover on the default model (AVX512-BF16 CPU, 2 threads): ORT is 2.3x faster at 8 tokens,
# 1.25x at 32, even at 64 (8.7 vs 8.3 ms), and bf16 PyTorch 1.6x faster from 256 tokens on.
HYBRID_SMALL_TOKENS = 48


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
    for batches where the hardware has bf16 matrix units, while ONNX Runtime fp32 answers single queries
    fastest: ``hybrid`` runs each batch on the faster of the two. Without bf16 units bf16 is emulated and
    slow, so ONNX Runtime fp32 (exact) is chosen. On CUDA, bf16 where the GPU supports it, else fp32 PyTorch.
    """
    if device.startswith("cuda"):
        try:
            import torch

            return "torch-bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "torch"
        except ImportError:
            return "onnx"
    return "hybrid" if cpu_has_bf16() else "onnx"


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
    if name == "hybrid":
        if device != "cpu":
            raise ConfigError("the hybrid backend is for CPUs; on a GPU use torch-bf16 (or torch, onnx)")
        from embedlab.backends.split import SplitBackend

        small = create_backend("onnx", spec, device=device, threads=threads)
        large = create_backend("torch-bf16", spec, device=device, threads=threads)
        return SplitBackend(small, large, HYBRID_SMALL_TOKENS, name="hybrid")
    raise ConfigError(f"unknown backend {name!r}; choose one of auto, {', '.join(BACKENDS)}")


__all__ = [
    "BACKENDS",
    "HYBRID_SMALL_TOKENS",
    "Backend",
    "EncodedBatch",
    "auto_backend",
    "cpu_has_bf16",
    "create_backend",
]
