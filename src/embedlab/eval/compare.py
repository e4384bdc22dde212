"""Run one task across several configurations and collect the reports (the ``--compare`` table).

A configuration is a short ``key=value`` list, e.g. ``backend=onnx,max_tokens=128,dimensions=256``.
Keys (:data:`CONFIG_KEYS`): ``backend`` (``auto`` or any name in :data:`embedlab.backends.BACKENDS`), ``device``,
``threads``, ``max_tokens``, ``dimensions``, ``long_input``, ``max_batch_tokens``. An empty string is
the default configuration.

Each distinct runtime (backend, device, threads) is created once and shared by every configuration
that uses it; the others differ only in engine settings, which cost nothing to switch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from embedlab.engine.embedder import Embedder
from embedlab.errors import ConfigError
from embedlab.eval.report import EvalReport
from embedlab.settings import LONG_INPUT_POLICIES, EngineSettings

#: Keys a configuration may set, in the order labels list them.
CONFIG_KEYS: tuple[str, ...] = (
    "backend",
    "device",
    "threads",
    "max_tokens",
    "dimensions",
    "long_input",
    "max_batch_tokens",
)
#: Keys that need a runtime of their own; configurations equal on these share one.
RUNTIME_KEYS: tuple[str, ...] = ("backend", "device", "threads")
_INTEGER_KEYS = ("threads", "max_tokens", "dimensions", "max_batch_tokens")

#: ``task_fn(embedder, config_label=...) -> EvalReport``, e.g. ``functools.partial(evaluate_sts, data=data)``;
#: or a list of reports (one per precision: ``functools.partial(evaluate_sts_by_precision, data=data)``).
TaskFn = Callable[..., EvalReport | list[EvalReport]]


def _known_backends() -> tuple[str, ...]:
    import embedlab.backends as backends

    return ("auto", *backends.BACKENDS)  # read now: other modules may register more backends


def parse_config(text: str) -> dict[str, Any]:
    """Parse ``"backend=onnx,max_tokens=128,dimensions=256"`` into ``{"backend": "onnx", ...}``.

    Integers are converted, the backend and long-input policy checked against the known names.

    Raises:
        ConfigError: an item without ``=``, an unknown or repeated key, or a bad value.
    """
    config: dict[str, Any] = {}
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        key, sep, value = (part.strip() for part in item.partition("="))
        key = key.replace("-", "_")
        if not sep or not key or not value:
            raise ConfigError(f"configuration item {item!r} is not key=value (in {text!r})")
        if key not in CONFIG_KEYS:
            raise ConfigError(f"unknown configuration key {key!r} in {text!r}; known: {', '.join(CONFIG_KEYS)}")
        if key in config:
            raise ConfigError(f"configuration key {key!r} is given twice in {text!r}")
        config[key] = _parse_value(key, value)
    return config


def _parse_value(key: str, value: str) -> Any:
    if key in _INTEGER_KEYS:
        try:
            number = int(value)
        except ValueError as exc:
            raise ConfigError(f"{key} must be a whole number, got {value!r}") from exc
        if number < 1:
            raise ConfigError(f"{key} must be ≥ 1, got {number}")
        return number
    if key == "backend" and value not in _known_backends():
        raise ConfigError(f"unknown backend {value!r}; choose one of {', '.join(_known_backends())}")
    if key == "long_input" and value not in LONG_INPUT_POLICIES:
        raise ConfigError(f"unknown long_input {value!r}; choose one of {', '.join(LONG_INPUT_POLICIES)}")
    return value


def config_label(config: Mapping[str, Any]) -> str:
    """The canonical label of a configuration: ``key=value`` in :data:`CONFIG_KEYS` order, or ``default``."""
    items = [f"{key}={config[key]}" for key in CONFIG_KEYS if key in config]
    return ",".join(items) if items else "default"


def _as_config(item: Mapping[str, Any] | str) -> dict[str, Any]:
    if isinstance(item, str):
        return parse_config(item)
    unknown = [key for key in item if key not in CONFIG_KEYS]
    if unknown:
        raise ConfigError(f"unknown configuration key(s) {unknown}; known: {', '.join(CONFIG_KEYS)}")
    return parse_config(",".join(f"{k}={v}" for k, v in item.items() if v is not None))


def changed_settings(settings: EngineSettings) -> dict[str, Any]:
    """The :data:`CONFIG_KEYS` fields of ``settings`` that differ from the field defaults."""
    fields = EngineSettings.model_fields
    return {key: getattr(settings, key) for key in CONFIG_KEYS if getattr(settings, key) != fields[key].default}


def _settings(base: EngineSettings, model: str | None, config: Mapping[str, Any]) -> EngineSettings:
    values = {**base.model_dump(), **({"model": model} if model is not None else {}), **config}
    try:
        return EngineSettings.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid configuration {config_label(config)}: {problems}") from exc


def compare(
    task_fn: TaskFn,
    model: str | None,
    configs: Sequence[Mapping[str, Any] | str],
    *,
    base: EngineSettings | None = None,
    on_result: Callable[[EvalReport], None] | None = None,
) -> list[EvalReport]:
    """Run ``task_fn`` once per configuration and return the reports in the order of ``configs``.

    Args:
        task_fn: called as ``task_fn(embedder, config_label=label)``; when it returns a list (one report
            per precision), its reports are kept in their order as consecutive rows.
        model: model name or path (None: the default model), loaded once.
        configs: configurations as dicts or ``key=value,...`` strings; the first is the baseline
            that deltas are measured against. Every configuration is validated before any runs.
            Each report's label lists the configuration's keys plus whatever ``base`` changes from
            the defaults (``default`` when nothing is changed).
        base: settings the configurations start from (default: ``EngineSettings()``, i.e. the
            environment).
        on_result: called with each report as soon as it is ready.

    Raises:
        ConfigError: no configurations, or an invalid one.
        plus whatever loading the model or running the task raises.
    """
    from embedlab.engine.loader import create_runtime, load_spec
    from embedlab.engine.tokenize import load_tokenizer

    if not configs:
        raise ConfigError("give at least one configuration to compare")
    base_settings = base or EngineSettings()
    parsed = [_as_config(item) for item in configs]
    settings = [_settings(base_settings, model, config) for config in parsed]
    spec = load_spec(settings[0].model)
    tokenizer = load_tokenizer(spec)

    groups: dict[tuple[Any, ...], list[int]] = {}
    for index, chosen in enumerate(settings):
        groups.setdefault(tuple(getattr(chosen, key) for key in RUNTIME_KEYS), []).append(index)
    reports: dict[int, list[EvalReport]] = {}
    for (backend, device, threads), members in groups.items():
        runtime, calibration = create_runtime(backend, spec, device, threads)
        for index in members:
            embedder = Embedder(spec, runtime, tokenizer, settings[index], calibration)
            label = config_label({**changed_settings(base_settings), **parsed[index]})
            result = task_fn(embedder, config_label=label)
            reports[index] = result if isinstance(result, list) else [result]
            if on_result is not None:
                for report in reports[index]:
                    on_result(report)
        del runtime, embedder  # one runtime alive at a time
    return [report for i in range(len(parsed)) for report in reports[i]]
