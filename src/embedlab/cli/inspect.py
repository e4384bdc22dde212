"""``embedlab inspect``: parameter anatomy, FLOPs, memory and a traced forward pass of a model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from embedlab.cli.help import HelpCommand
from embedlab.cli.options import ModelOpt, ThreadsOpt
from embedlab.errors import OutputError


def inspect(
    model: ModelOpt = None,
    batch: Annotated[int, typer.Option("--batch", "-b", help="Batch size B of the traced pass")] = 1,
    seq: Annotated[
        int | None,
        typer.Option("--seq", "-L", help="Sequence length L of the traced pass (default: the model's max tokens)"),
    ] = None,
    head: Annotated[
        str | None,
        typer.Option(help="Also trace a task head: classification:C or token-classification:C (random head weights)"),
    ] = None,
    threads: ThreadsOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole report as JSON instead of tables")] = False,
    report: Annotated[
        Path | None, typer.Option("--report", help="Also write the report to FILE.html or FILE.md")
    ] = None,
    no_flop_count: Annotated[
        bool, typer.Option("--no-flop-count", help="Skip the second pass that counts FLOPs with torch")
    ] = False,
) -> None:
    """Show where a model's parameters are, its FLOPs and memory, and the shapes of a real forward pass."""
    from embedlab.inspect.inspector import inspect_model
    from embedlab.inspect.report import inspect_sections, print_sections, write_report

    if report is not None and report.suffix.lower() not in (".html", ".htm", ".md"):
        raise OutputError(f"{report}: reports are .html or .md")
    result = inspect_model(model, batch=batch, seq_len=seq, head=head, threads=threads, count_flops=not no_flop_count)
    sections = inspect_sections(result)
    title = f"embedlab inspect: {result.spec.name}"
    if report is not None:
        write_report(sections, report, title)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        print_sections(sections, title)
        if report is not None:
            typer.echo(f"report written to {report}")


def register(app: typer.Typer) -> None:
    """Add the ``inspect`` command to ``app``."""
    app.command("inspect", cls=HelpCommand)(inspect)
