"""Settings, read once when constructed, then passed down; the one loader and the one home of every default.

Precedence everywhere (library, CLI, server): defaults < environment ``EMBEDLAB_*`` < settings file
(``--config``) < flags / keyword arguments given (not None). :func:`load_settings` is the only place
that applies it. Nothing here imports from the engine: the engine, the server and the tools import this.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from embedlab.cpu import available_cores
from embedlab.errors import ConfigError

LongInputPolicy = Literal["truncate", "error", "chunk"]
LONG_INPUT_POLICIES: tuple[str, ...] = ("truncate", "error", "chunk")

SettingsT = TypeVar("SettingsT", bound=BaseSettings)

# defaults that the library's batch path and the server's batcher share
MAX_BATCH_SIZE = 256
BUCKET_RATIO = 1.05


class EngineSettings(BaseSettings):
    """How the engine runs a model. Every field is settable as ``EMBEDLAB_<FIELD>`` in the environment.

    Attributes:
        model: model name or path; None means the default model.
        backend: runtime backend name: ``auto`` (the fastest with STS cost ≤ 0.001 on this hardware),
            ``torch``, ``torch-bf16``, ``onnx``, ``onnx-int8``, ``openvino``, ``openvino-f32``.
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        threads: intra-op CPU threads of each worker (see :meth:`worker_layout`).
        workers: batches run side by side on the one loaded model (the server's inference workers, and
            the library's ``embed``). None: on CPU, 2 when the process has at least 2 cores and no
            ``threads`` is set (each with half the cores), else 1; on CUDA, 1. Why (docs/serve.md,
            *Workers*): a batch spread over several threads waits at every operator for the slowest;
            two single-threaded batches have no such barrier.
        max_batch_tokens: padded tokens per forward batch (batch size × longest sequence) of the library's
            batch path (``embed``); the server has its own default (:class:`BatcherSettings`).
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
    workers: int | None = Field(default=None, ge=1)
    max_batch_tokens: int = Field(default=8192, ge=1)
    max_batch_size: int = Field(default=MAX_BATCH_SIZE, ge=1)
    long_input: LongInputPolicy = "truncate"
    chunk_overlap: int = Field(default=32, ge=0)
    bucket_ratio: float | None = Field(default=BUCKET_RATIO, ge=1.0)
    tokenize_block: int = Field(default=2048, ge=1)
    max_tokens: int | None = Field(default=None, ge=1)
    dimensions: int | None = Field(default=None, ge=1)
    prompt_name: str | None = None

    def worker_layout(self, cores: int | None = None) -> tuple[int, int | None]:
        """(workers, intra-op threads per worker; None: the backend's default).

        Explicit ``workers`` / ``threads`` win; ``threads`` alone means one worker of that many threads
        (a CPU limit the user chose is kept). Otherwise the ``cores`` (default: those available to this
        process) are shared out between 2 workers (1 worker with 1 core, or on CUDA, where the threads
        setting does not apply).
        """
        on_cpu = self.device == "cpu"
        cores = available_cores() if cores is None else max(1, cores)
        workers = self.workers
        if workers is None:
            workers = 2 if on_cpu and self.threads is None and cores >= 2 else 1
        threads = self.threads
        if threads is None and on_cpu:
            threads = max(1, cores // workers)
        return workers, threads


@dataclass(frozen=True)
class BatcherSettings:
    """Limits of the server's dynamic batcher; the defaults here are the server's defaults.

    Attributes:
        max_batch_tokens: padded tokens per forward batch (batch size × longest sequence). 1024 (the
            library's batch path uses 8192): on CPU bigger batches are no faster, and attention memory
            grows with batch tokens × sequence length (32 texts of 256 tokens at 8192 peak at about
            720 MB with all-MiniLM-L6-v2 on ONNX, at 1024 about 270 MB). Raise it on GPUs.
        max_batch_size: sequences per forward batch at most.
        bucket_ratio: length bucketing: a batch only takes segments at least ``longest / bucket_ratio``
            long, so padding stays within that multiple of the real tokens (None: budget only).
        max_queue_segments: segments waiting for inference at most; a request that would go over is
            refused with :class:`~embedlab.errors.OverloadedError`.
        max_concurrent_requests: requests admitted at once (tokenising, queued or running); more are
            refused with :class:`~embedlab.errors.OverloadedError`.
        inference_timeout_s: one forward batch running longer than this means the worker is stuck.
        request_timeout_s: a request not done after this many seconds fails with
            :class:`~embedlab.errors.WorkerUnavailableError`.
        health_max_age_s: a successful batch younger than this proves health without a new probe.
        tokenizer_threads: threads of the tokenizer step.
        assembly_window: oldest queued segments the batcher considers when it assembles a batch.
        workers: inference worker threads running batches side by side on the one model. Attention
            memory grows with batch tokens × sequence length, so with several workers a batch of
            sequences over ``long_sequence_tokens`` holds at most ``max_batch_tokens ×
            long_sequence_tokens`` attention cells (batch size × longest²): two workers' long batches
            then hold about the attention memory of one full-budget batch.
        long_sequence_tokens: see ``workers``.

    Raises:
        ConfigError: a limit below 1, a bucket ratio below 1.0, or a timeout that is not positive.
    """

    max_batch_tokens: int = 1024
    max_batch_size: int = MAX_BATCH_SIZE
    bucket_ratio: float | None = BUCKET_RATIO
    max_queue_segments: int = 16384
    max_concurrent_requests: int = 512
    inference_timeout_s: float = 60.0
    request_timeout_s: float = 120.0
    health_max_age_s: float = 10.0
    tokenizer_threads: int = 1
    assembly_window: int = 4096
    workers: int = 1
    long_sequence_tokens: int = 128

    def __post_init__(self) -> None:
        for name in ("max_batch_tokens", "max_batch_size", "max_queue_segments", "max_concurrent_requests"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.bucket_ratio is not None and self.bucket_ratio < 1.0:
            raise ConfigError(f"bucket_ratio must be ≥ 1.0, got {self.bucket_ratio}")
        if min(self.tokenizer_threads, self.assembly_window, self.workers, self.long_sequence_tokens) < 1:
            raise ConfigError("tokenizer_threads, assembly_window, workers and long_sequence_tokens must be at least 1")
        for name in ("inference_timeout_s", "request_timeout_s", "health_max_age_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def max_attention_cells(self) -> int | None:
        """The attention budget of one batch (batch size × longest²) with several workers; None with one."""
        return self.max_batch_tokens * self.long_sequence_tokens if self.workers > 1 else None


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


def load_settings(
    settings_class: type[SettingsT],
    config: str | Path | None = None,
    *,
    base: BaseSettings | None = None,
    **flags: Any,
) -> SettingsT:
    """Settings of ``settings_class`` from defaults < environment (EMBEDLAB_*) < ``config`` file < ``flags``.

    Args:
        settings_class: :class:`EngineSettings` or a subclass (the server's ``ServerSettings``).
        config: a settings file (.json / .toml), see :func:`read_config_file`.
        base: settings already read, used instead of defaults and environment (``embedlab.load(settings=)``).
        **flags: field values; those that are None are not given and change nothing.

    Raises:
        ConfigError: an unreadable config file, unknown keys, or invalid values (every bad field named).
    """
    values: dict[str, Any] = base.model_dump() if base is not None else {}
    if config is not None:
        values.update(read_config_file(config, settings_class))
    values.update({key: value for key, value in flags.items() if value is not None})
    try:
        if base is not None:
            return settings_class.model_validate(values)
        return settings_class(**values)
    except ValidationError as exc:
        raise ConfigError(f"invalid settings: {describe_validation_error(exc)}") from exc


def describe_validation_error(exc: ValidationError) -> str:
    """Every problem of ``exc`` on one line: ``field: message``, or the message alone for a check of the whole."""
    problems = []
    for error in exc.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        where = ".".join(map(str, error["loc"]))
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)
