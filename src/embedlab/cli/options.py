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


def progress_bar(console: Any, quiet: bool, label: str = "{task.description}") -> Any:
    """The CLI's one progress bar (label, bar, done/total, time left) on ``console``; hidden when ``quiet``.

    Args:
        console: a ``rich.console.Console`` (stderr, so piped output stays clean).
        quiet: draw nothing.
        label: the text column's format; ``{task.description}`` shows each task's description.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=quiet,
        transient=True,
    )
