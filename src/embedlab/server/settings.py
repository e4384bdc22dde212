"""Settings of ``embedlab serve``: every engine setting plus the server's own limits.

Read once by :func:`embedlab.settings.load_settings` (flags > ``--config`` file > environment
``EMBEDLAB_<FIELD>`` > defaults), then passed down. The batcher's limits take their defaults from
:class:`~embedlab.settings.BatcherSettings`, where they live.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from embedlab.errors import ConfigError
from embedlab.settings import BatcherSettings, EngineSettings, LongInputPolicy, describe_validation_error

MIB = 1024 * 1024
_LIMITS = BatcherSettings()  # the batcher's defaults, which the server's fields take
#: what names the served model(s) at the top level; with a ``models`` list each entry names its own
_NAMING_FIELDS = ("model", "served_model_name", "model_aliases")


class ModelEntry(BaseModel):
    """One model of a server that serves several (an item of :attr:`ServerSettings.models`).

    ``model`` names it; every other field is optional and, when given, replaces the server-wide setting of
    the same name for this model only (None: the server-wide value). The values are checked as the
    server-wide fields are (:meth:`ServerSettings.per_model`). Everything not listed here is shared.
    """

    model_config = ConfigDict(extra="forbid")

    model: str
    served_model_name: str | None = None
    model_aliases: list[str] | None = None
    backend: str | None = None
    device: str | None = None
    threads: int | None = None
    workers: int | None = None
    max_tokens: int | None = None
    dimensions: int | None = None
    prompt_name: str | None = None
    long_input: LongInputPolicy | None = None
    max_batch_tokens: int | None = None
    max_batch_size: int | None = None
    cache_entries: int | None = None
    cache_path: Path | None = None
    int8_calibration_texts: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        # ``models = ["A", "B"]`` is short for ``[{model = "A"}, {model = "B"}]``
        return {"model": value} if isinstance(value, str) else value


class ServerSettings(EngineSettings):
    """How ``embedlab serve`` runs. Every field is settable as ``EMBEDLAB_<FIELD>`` in the environment,
    as a key of the ``--config`` file, and (most) by a flag.

    Engine fields (``model``, ``device``, ``max_batch_tokens``, ``max_batch_size``,
    ``long_input``, ``chunk_overlap``, ``max_tokens`` (tokens per input), ``dimensions``, ``prompt_name``)
    mean what they mean in :class:`EngineSettings`. Server fields:

    Attributes:
        threads, workers: as :class:`EngineSettings` (:meth:`~EngineSettings.worker_layout`): inference
            workers running batches side by side on the one loaded model, each with ``threads``
            intra-op threads (docs/serve.md, *Workers*).
        backend: as the library's (default ``auto``: the backend this machine's calibration chose, the
            same decision as ``embedlab.load()``, measured with the server's threads per worker).
        max_batch_tokens: padded tokens per forward batch (default: :class:`BatcherSettings`' 1024,
            where the reason is given; the library's batch path uses 8192). Raise it on GPUs.
        host: interface to bind; 127.0.0.1 unless told otherwise.
        port: TCP port.
        api_key: when set, every route except ``/health`` and the static dashboard page needs
            ``Authorization: Bearer <key>``.
        served_model_name: the name reported in responses and ``/v1/models`` (default: the model's).
        model_aliases: more names a request's ``model`` may use (e.g. ``text-embedding-3-small``).
        max_payload_bytes: request body size limit, bytes (413 beyond).
        max_client_batch: inputs per request at most (413 beyond); the texts of a request within the
            limit are batched with other requests' by the token budget.
        max_concurrent_requests: requests admitted at once (429 with Retry-After beyond).
        max_queue_segments: segments waiting for inference at most (429 beyond).
        request_timeout_s: a request not answered within this fails with 503.
        inference_timeout_s: a forward batch running longer means a stuck worker (503; worker replaced).
        health_max_age_s: ``/health`` probes the worker when no batch succeeded in this many seconds.
        cache_entries: vectors kept in the in-memory LRU (about 1.7 KB each for 384 dims); 0 disables.
        cache_path: a sqlite file for a persistent cache that survives restarts (None: memory only).
        cache_disk_entries: rows kept in the sqlite cache at most (oldest deleted first).
        tokenizer_threads: threads of the tokenizer step.
        int8_calibration_texts: a file of texts (``.txt``: one per line) embedded once at start; the
            ``int8`` / ``uint8`` precisions then use per-dimension ranges measured on them
            (:mod:`embedlab.server.int8_ranges`) instead of the default [-1, 1].
        reject_unknown_fields: answer 400 to request fields the API does not define (else ignore them).
        log_level: uvicorn's log level.
        models: several models served by one process (:class:`ModelEntry` each: its name and what it sets
            differently); empty (the default): the one model of ``model``. With a list, ``model``,
            ``served_model_name`` and ``model_aliases`` belong in its entries, not at the top level.
    """

    model_config = SettingsConfigDict(env_prefix="EMBEDLAB_", extra="ignore")

    max_batch_tokens: int = Field(default=_LIMITS.max_batch_tokens, ge=1)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    api_key: SecretStr | None = None
    served_model_name: str | None = None
    model_aliases: list[str] = Field(default_factory=list)
    max_payload_bytes: int = Field(default=8 * MIB, ge=1024)
    max_client_batch: int = Field(default=2048, ge=1)
    max_concurrent_requests: int = Field(default=_LIMITS.max_concurrent_requests, ge=1)
    max_queue_segments: int = Field(default=_LIMITS.max_queue_segments, ge=1)
    request_timeout_s: float = Field(default=_LIMITS.request_timeout_s, gt=0)
    inference_timeout_s: float = Field(default=_LIMITS.inference_timeout_s, gt=0)
    health_max_age_s: float = Field(default=_LIMITS.health_max_age_s, gt=0)
    cache_entries: int = Field(default=20000, ge=0)
    cache_path: Path | None = None
    cache_disk_entries: int = Field(default=1_000_000, ge=1)
    tokenizer_threads: int = Field(default=_LIMITS.tokenizer_threads, ge=1)
    int8_calibration_texts: Path | None = None
    reject_unknown_fields: bool = True
    log_level: str = "info"
    models: list[ModelEntry] = Field(default_factory=list)

    @field_validator("api_key")
    @classmethod
    def _check_api_key(cls, value: SecretStr | None) -> SecretStr | None:
        # an empty EMBEDLAB_API_KEY (an unset variable expanded by a shell or compose file) is refused
        # here, named; later the auth middleware would fail the server's startup with a bare ValueError
        if value is not None and not value.get_secret_value():
            raise ValueError("the API key is empty; give a key, or leave api_key unset to serve without one")
        return value

    @model_validator(mode="after")
    def _check_models(self) -> ServerSettings:
        if not self.models:
            return self
        given = [name for name in _NAMING_FIELDS if getattr(self, name)]
        if given:
            raise ValueError(
                f"{', '.join(given)} and a list of models are both given; with several models each entry of "
                "models names its own model (served_model_name, model_aliases)"
            )
        self.per_model()  # every entry's values checked now, not when its model loads
        check_unique_names([(e.served_model_name or e.model, e.model_aliases or []) for e in self.models])
        return self

    def per_model(self) -> list[ServerSettings]:
        """The settings of each served model: ``[self]`` for one model, else per entry of ``models`` the
        server-wide settings with the entry's fields in place of theirs (and ``models`` empty).

        Raises:
            ValueError: an entry's value is invalid (the message names the entry and the field).
        """
        if not self.models:
            return [self]
        shared = {name: getattr(self, name) for name in type(self).model_fields}
        shared["models"] = []  # given, so that validating does not read EMBEDLAB_MODELS from the environment again
        out = []
        for index, entry in enumerate(self.models):
            values = {**shared, **entry.model_dump(exclude_none=True)}
            try:
                out.append(type(self).model_validate(values))
            except ValidationError as exc:
                raise ValueError(f"models[{index}] ({entry.model}): {describe_validation_error(exc)}") from None
        return out

    def with_models(self, names: Sequence[str]) -> ServerSettings:
        """These settings serving ``names`` instead (``embedlab serve --model A --model B``): one name is
        the single-model ``model`` setting; several become a ``models`` list of those names.

        Raises:
            ConfigError: the result is invalid (a name clash, a naming field with several models).
        """
        values = {name: getattr(self, name) for name in type(self).model_fields}
        if len(names) == 1:
            values.update(model=names[0], models=[])
        else:
            values.update(model=None, models=[{"model": name} for name in names])
        try:
            return type(self).model_validate(values)
        except ValidationError as exc:
            raise ConfigError(f"invalid settings: {describe_validation_error(exc)}") from exc

    def engine_settings(self, backend: str | None = None) -> EngineSettings:
        """The :class:`EngineSettings` part, worker layout resolved (``backend`` instead of the setting's if given)."""
        values = {name: getattr(self, name) for name in EngineSettings.model_fields}
        values["backend"] = backend or self.backend
        values["workers"], values["threads"] = self.worker_layout()
        return EngineSettings.model_validate(values)

    def batcher_settings(self) -> BatcherSettings:
        """The limits of the dynamic batcher."""
        return BatcherSettings(
            max_batch_tokens=self.max_batch_tokens,
            max_batch_size=self.max_batch_size,
            bucket_ratio=self.bucket_ratio,
            max_queue_segments=self.max_queue_segments,
            max_concurrent_requests=self.max_concurrent_requests,
            inference_timeout_s=self.inference_timeout_s,
            request_timeout_s=self.request_timeout_s,
            health_max_age_s=self.health_max_age_s,
            tokenizer_threads=self.tokenizer_threads,
            workers=self.worker_layout()[0],
        )


def check_unique_names(models: Sequence[tuple[str, Sequence[str]]]) -> None:
    """Refuse two models that a request could not tell apart by name.

    Args:
        models: per model, its served name and its aliases (the names a user gave).

    Raises:
        ValueError: a name given to two models (the message names it and both models).
    """
    owner: dict[str, str] = {}
    for served, aliases in models:
        for name in dict.fromkeys([served, *aliases]):
            if name in owner:
                raise ValueError(
                    f"two models answer to the name {name!r} ({owner[name]!r} and {served!r}); give each model "
                    "its own served_model_name and aliases"
                )
            owner[name] = served
