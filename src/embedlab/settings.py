"""Settings, read once when constructed (flags > environment ``EMBEDLAB_*`` > defaults), then passed down."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from embedlab.engine.tokenize import LongInputPolicy
from embedlab.errors import ConfigError


class EngineSettings(BaseSettings):
    """How the engine runs a model. Every field is settable as ``EMBEDLAB_<FIELD>`` in the environment.

    Attributes:
        model: model name or path; None means the default model.
        backend: runtime backend name: ``auto`` (the fastest with STS cost ≤ 0.001 on this hardware),
            ``torch``, ``torch-bf16``, ``onnx``, ``onnx-int8``.
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        threads: intra-op CPU threads; None means the physical cores available to the process.
        max_batch_tokens: padded tokens per forward batch (batch size × longest sequence).
        max_batch_size: sequences per forward batch at most.
        long_input: policy for texts over the token limit: truncate, error or chunk.
        chunk_overlap: tokens shared by consecutive windows under the chunk policy (capped at half a window).
        bucket_ratio: length bucketing; a batch's padded tokens stay within this multiple of its real
            tokens (None: fill batches by budget only; larger batches suit GPUs).
        tokenize_block: texts tokenised per step; the next step is tokenised while the model runs this one.
        max_tokens: default token limit per text, below the model's own (None: the model's limit).
        dimensions: default output dimensions (Matryoshka truncation; None: the model's full dim).
        prompt_name: default named prompt (None: the model's own default, if any).
    """

    model_config = SettingsConfigDict(env_prefix="EMBEDLAB_", extra="ignore")

    model: str | None = None
    backend: str = "auto"
    device: str = "cpu"
    threads: int | None = Field(default=None, ge=1)
    max_batch_tokens: int = Field(default=8192, ge=1)
    max_batch_size: int = Field(default=256, ge=1)
    long_input: LongInputPolicy = "truncate"
    chunk_overlap: int = Field(default=32, ge=0)
    bucket_ratio: float | None = Field(default=1.05, ge=1.0)
    tokenize_block: int = Field(default=512, ge=1)
    max_tokens: int | None = Field(default=None, ge=1)
    dimensions: int | None = Field(default=None, ge=1)
    prompt_name: str | None = None


def read_config_file(path: str | Path, settings_class: type[BaseSettings] | None = None) -> dict[str, Any]:
    """Read a settings file (.json or .toml) into a dict of fields of ``settings_class``.

    This is the file ``embedlab plan`` writes and ``embedlab embed`` / ``embedlab serve`` accept as
    ``--config FILE``. Unknown keys are an error naming them, so a typo never passes silently.
    ``settings_class`` (default :class:`EngineSettings`) names the known keys; ``embedlab serve``
    passes its ``ServerSettings``, a subclass that adds the server's fields.

    Raises:
        ConfigError: unreadable file, unsupported format, or unknown keys.
    """
    file = Path(path)
    try:
        if file.suffix.lower() == ".toml":
            import tomllib

            data = tomllib.loads(file.read_text(encoding="utf-8"))
        elif file.suffix.lower() == ".json":
            data = json.loads(file.read_text(encoding="utf-8"))
        else:
            raise ConfigError(f"{file}: settings files are .json or .toml")
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read settings file {file}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: settings must be a JSON object / TOML table")
    settings = data.get("settings", data)
    known = set((settings_class or EngineSettings).model_fields)
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigError(f"{file}: unknown settings {unknown}; known: {sorted(known)}")
    return dict(settings)
