"""A backend that runs each batch on one of two runtimes, chosen by the batch's size.

Small batches (a single query) are bound by per-operator overhead, large ones by matmul speed, and no
one runtime is best at both on CPU: ONNX Runtime's fp32 graph answers a 12-token query in about a third
of PyTorch's time, while bfloat16 PyTorch (AVX512-BF16) moves about 1.5x more tokens per second in
batches. Both agree with the fp32 reference at cosine >= 0.9999, so routing by size changes speed only.
"""

from __future__ import annotations

from embedlab.arrays import FloatArray
from embedlab.backends.base import Backend, EncodedBatch
from embedlab.errors import ConfigError


class SplitBackend:
    """Sends batches of at most ``max_small_tokens`` padded tokens to ``small``, the rest to ``large``.

    Args:
        small: the runtime for small batches (latency).
        large: the runtime for large batches (throughput); must be on the same device.
        max_small_tokens: the size limit, in padded tokens (batch × seq_len), of a "small" batch.
        name: the registry name to report.
    """

    def __init__(self, small: Backend, large: Backend, max_small_tokens: int, name: str):
        if small.device != large.device:
            raise ConfigError(f"both runtimes must share a device, got {small.device} and {large.device}")
        if max_small_tokens < 1:
            raise ConfigError(f"max_small_tokens must be at least 1, got {max_small_tokens}")
        self.name = name
        self.device = small.device
        self.small = small
        self.large = large
        self.max_small_tokens = max_small_tokens

    def runner(self, batch: EncodedBatch) -> Backend:
        """The runtime that ``batch`` goes to."""
        return self.small if batch.input_ids.size <= self.max_small_tokens else self.large

    def forward(self, batch: EncodedBatch) -> FloatArray:
        """Token vectors (batch, seq_len, hidden) float32, from the runtime chosen for this batch's size."""
        return self.runner(batch).forward(batch)
