"""Options shared by every command, spelled the same everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

ModelOpt = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Local directory or Hugging Face name (default: all-MiniLM-L6-v2)"),
]
BackendOpt = Annotated[
    str | None,
    typer.Option(
        help="auto (default: measured on this machine), torch, torch-bf16, onnx, onnx-int8, openvino, openvino-f32"
    ),
]
DeviceOpt = Annotated[str | None, typer.Option(help="cpu, cuda or cuda:N (default: cpu)")]
ThreadsOpt = Annotated[int | None, typer.Option(min=1, help="CPU threads (default: physical cores available)")]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="Settings file (.json/.toml, e.g. from `embedlab plan`); flags override it"),
]


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
