"""PyTorch backend: transformers ``AutoModel`` (or ``AutoModelForSequenceClassification`` for a cross-encoder)
in inference mode, fp32 or bf16, on CPU or CUDA."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from embedlab.arrays import FloatArray
from embedlab.backends.base import EncodedBatch
from embedlab.cpu import available_cores
from embedlab.errors import BackendUnavailableError, InferenceError, ModelLoadError
from embedlab.models.spec import ModelFiles

_DTYPES = ("float32", "bfloat16", "float16")


class TorchBackend:
    """Runs the model's transformer with PyTorch (with its classification head for a cross-encoder).

    Args:
        spec: the model to load; its ``output`` says which head.
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        dtype: ``float32`` (exact), ``bfloat16`` or ``float16`` (the latter GPU only).
        threads: intra-op threads on CPU; default: the physical cores available to the process.
    """

    def __init__(self, spec: ModelFiles, device: str = "cpu", dtype: str = "float32", threads: int | None = None):
        try:
            import torch
            from transformers import AutoModel, AutoModelForSequenceClassification
            from transformers.utils import logging as hf_logging
        except ImportError as exc:  # pragma: no cover - torch is a core dependency
            raise BackendUnavailableError("the torch backend needs PyTorch: pip install torch") from exc
        if dtype not in _DTYPES:
            raise BackendUnavailableError(f"torch dtype {dtype!r} not supported; choose one of {_DTYPES}")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendUnavailableError(f"device {device!r} requested but PyTorch sees no CUDA GPU")
        if dtype == "float16" and not device.startswith("cuda"):
            raise BackendUnavailableError("float16 runs only on CUDA; on CPU use bfloat16 or float32")
        self.threads = (threads or available_cores()) if device == "cpu" else None
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        hf_logging.disable_progress_bar()
        self._torch = torch
        self.name = "torch" if dtype == "float32" else f"torch-{'bf16' if dtype == 'bfloat16' else 'fp16'}"
        self.device = device
        self.dtype = dtype
        self.output = spec.output
        auto = AutoModelForSequenceClassification if spec.output == "logits" else AutoModel
        try:
            model = auto.from_pretrained(str(spec.path), dtype=getattr(torch, dtype))
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"cannot load the transformer from {spec.path}: {exc}") from exc
        self.model: Any = model.eval().to(device)
        self._accepts_token_types = "token_type_ids" in inspect.signature(self.model.forward).parameters

    def forward(self, batch: EncodedBatch) -> FloatArray:
        """Token vectors (batch, seq_len, hidden), or logits (batch, num_labels), float32 for a padded batch.

        PyTorch's intra-op thread count is one setting for the whole process: set back to this backend's
        when something else in the process (another model, another library) changed it.
        """
        torch = self._torch
        if self.threads is not None and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        feed = {
            "input_ids": torch.from_numpy(batch.input_ids).to(self.device),
            "attention_mask": torch.from_numpy(batch.attention_mask).to(self.device),
        }
        if batch.token_type_ids is not None and self._accepts_token_types:
            feed["token_type_ids"] = torch.from_numpy(batch.token_type_ids).to(self.device)
        try:
            with torch.inference_mode():
                out = self.model(**feed)
                result = out.logits if self.output == "logits" else out.last_hidden_state
        except RuntimeError as exc:
            raise InferenceError(f"torch forward failed on a batch of shape {batch.shape}: {exc}") from exc
        return np.asarray(result.float().cpu().numpy(), dtype=np.float32)
