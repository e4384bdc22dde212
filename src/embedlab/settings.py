"""Settings, read once when constructed (flags > environment ``EMBEDLAB_*`` > defaults), then passed down."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from embedlab.engine.tokenize import LongInputPolicy


class EngineSettings(BaseSettings):
    """How the engine runs a model. Every field is settable as ``EMBEDLAB_<FIELD>`` in the environment.

    Attributes:
        model: model name or path; None means the default model.
        backend: runtime backend name (``torch``, ``torch-bf16``, ``onnx``).
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        threads: intra-op CPU threads; None means the physical cores available to the process.
        max_batch_tokens: padded tokens per forward batch (batch size × longest sequence).
        max_batch_size: sequences per forward batch at most.
        long_input: policy for texts over the token limit: truncate, error or chunk.
        chunk_overlap: tokens shared by consecutive windows under the chunk policy.
    """

    model_config = SettingsConfigDict(env_prefix="EMBEDLAB_", extra="ignore")

    model: str | None = None
    backend: str = "torch"
    device: str = "cpu"
    threads: int | None = Field(default=None, ge=1)
    max_batch_tokens: int = Field(default=8192, ge=1)
    max_batch_size: int = Field(default=256, ge=1)
    long_input: LongInputPolicy = "truncate"
    chunk_overlap: int = Field(default=32, ge=0)
