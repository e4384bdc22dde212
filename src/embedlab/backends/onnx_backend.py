"""ONNX Runtime backend: runs the exported transformer graph (token vectors, or a cross-encoder's logits) with
ORT graph optimisations."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from embedlab.arrays import FloatArray
from embedlab.backends.base import EncodedBatch
from embedlab.cpu import available_cores
from embedlab.errors import BackendUnavailableError, InferenceError, ModelLoadError
from embedlab.models.spec import ModelFiles


def _providers(device: str) -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in available:
            raise BackendUnavailableError(
                f"device {device!r} requested but ONNX Runtime has no CUDA provider "
                f"(available: {', '.join(available)}); pip install onnxruntime-gpu"
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


_arena_lock = threading.Lock()
_arena_registered: bool | None = None  # None: not tried yet


def _exact_size_cpu_arena(ort: Any) -> bool:
    """Register, once per process, a shared CPU arena that grows by exactly what is requested; True if usable.

    ORT's default arena grows in powers of two; with several batches of varying shapes running at once
    (the server's workers) the overshoot shows in peak RSS (one side-by-side run of two int8 servers of
    the default model under 64 clients and long texts: 253 vs 236 MB, same speed; noisy, a small effect).
    """
    global _arena_registered
    with _arena_lock:
        if _arena_registered is None:
            try:
                info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
                ort.create_and_register_allocator(info, ort.OrtArenaCfg(0, 1, -1, -1))  # 1: kSameAsRequested
                _arena_registered = True
            except Exception:  # an ORT build without env allocators: keep the per-session default arena
                _arena_registered = False
        return _arena_registered


class OnnxBackend:
    """Runs a model's exported ONNX graph with ONNX Runtime.

    Args:
        spec: the model; its graph (of the spec's ``output``) is exported once and cached (see :mod:`onnx_export`).
        device: ``cpu``, ``cuda`` or ``cuda:N`` (CUDA needs the onnxruntime-gpu package).
        threads: intra-op threads on CPU; default: the physical cores available to the process.
        graph: an explicit graph file to run instead of the cached export (e.g. a quantised one).
        name: the registry name to report (``onnx``, ``onnx-int8``...).
    """

    def __init__(
        self,
        spec: ModelFiles,
        device: str = "cpu",
        threads: int | None = None,
        graph: Path | None = None,
        name: str = "onnx",
        cache_dir: Path | None = None,
    ):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendUnavailableError("the onnx backend needs ONNX Runtime: pip install onnxruntime") from exc
        if graph is None:
            from embedlab.backends.onnx_export import cached_or_export

            graph = cached_or_export(spec, cache_dir)
        self.name = name
        self.device = device
        self.graph = graph
        self.output = spec.output
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or available_cores()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        # shapes change with every batch: a cached memory pattern per shape only grows memory (measured on the
        # int8 default model over 300 shapes: 191 -> 157 MB RSS), at no measurable cost in speed
        options.enable_mem_pattern = False
        if _exact_size_cpu_arena(ort):
            options.add_session_config_entry("session.use_env_allocators", "1")
        provider_options: list[dict[str, Any]] = []
        providers = _providers(device)
        for provider in providers:
            if provider == "CUDAExecutionProvider" and ":" in device:
                provider_options.append({"device_id": int(device.split(":", 1)[1])})
            else:
                provider_options.append({})
        try:
            self.session = ort.InferenceSession(
                str(graph), sess_options=options, providers=providers, provider_options=provider_options
            )
        except Exception as exc:
            raise ModelLoadError(f"ONNX Runtime cannot load {graph}: {exc}") from exc
        self._inputs = {i.name for i in self.session.get_inputs()}

    def forward(self, batch: EncodedBatch) -> FloatArray:
        """Token vectors (batch, seq_len, hidden), or logits (batch, num_labels), float32 for a padded batch."""
        feed: dict[str, np.ndarray] = {
            "input_ids": batch.input_ids,
            "attention_mask": batch.attention_mask,
        }
        if "token_type_ids" in self._inputs:
            types = batch.token_type_ids
            feed["token_type_ids"] = types if types is not None else np.zeros_like(batch.input_ids)
        try:
            (result,) = self.session.run([self.output], feed)
        except Exception as exc:
            raise InferenceError(f"ONNX Runtime failed on a batch of shape {batch.shape}: {exc}") from exc
        return np.asarray(result, dtype=np.float32)
