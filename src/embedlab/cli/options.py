"""Options shared by every command, spelled the same everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from embedlab.errors import ConfigError
from embedlab.settings import EngineSettings, read_config_file

ModelOpt = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Local directory or Hugging Face name (default: all-MiniLM-L6-v2)"),
]
BackendOpt = Annotated[
    str | None, typer.Option(help="auto (default), torch, torch-bf16, onnx, onnx-int8 or hybrid; see the README")
]
DeviceOpt = Annotated[str | None, typer.Option(help="cpu, cuda or cuda:N (default: cpu)")]
ThreadsOpt = Annotated[int | None, typer.Option(min=1, help="CPU threads (default: physical cores available)")]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="Settings file (.json/.toml, e.g. from `embedlab plan`); flags override it"),
]


def settings_from(config: Path | None, **flags: Any) -> EngineSettings:
    """Engine settings from defaults < environment (EMBEDLAB_*) < ``config`` file < flags given (not None)."""
    values: dict[str, Any] = read_config_file(config) if config is not None else {}
    values.update({key: value for key, value in flags.items() if value is not None})
    try:
        return EngineSettings(**values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid settings: {problems}") from exc
