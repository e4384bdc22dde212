"""``embedlab compare``: candidate models side by side on your data: quality, speed, memory, storage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from embedlab.cli.help import HelpCommand
from embedlab.cli.options import DeviceOpt, ThreadsOpt
from embedlab.errors import ConfigError, OutputError


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _ints(value: str | None, flag: str) -> list[int]:
    try:
        return [int(part) for part in _split(value)]
    except ValueError as exc:
        raise ConfigError(f"{flag} takes comma-separated whole numbers, got {value!r}") from exc


def compare(
    models: Annotated[
        str, typer.Option("--models", help="Models to compare, comma-separated: names or local directories")
    ],
    data: Annotated[
        Path | None,
        typer.Option("--data", help="STS file or retrieval (BEIR) directory: its headline score is the quality"),
    ] = None,
    texts: Annotated[
        Path | None,
        typer.Option("--texts", help="Your own texts (txt, jsonl, csv, tsv or parquet): lengths and speed"),
    ] = None,
    text_field: Annotated[str | None, typer.Option(help="Field holding the text in --texts")] = None,
    backends: Annotated[
        str, typer.Option(help="Backends to measure each model with, comma-separated (auto: measured fastest)")
    ] = "auto",
    precisions: Annotated[
        str, typer.Option(help="Output precisions to price (bytes per vector, and score with --data)")
    ] = "float32,float16,int8,uint8,binary,ubinary",
    dimensions: Annotated[
        str | None,
        typer.Option(help="Output sizes to score besides the full one and the model's Matryoshka sizes, e.g. 256,128"),
    ] = None,
    data_limit: Annotated[int | None, typer.Option(min=1, help="Score only the first N pairs / queries")] = None,
    sample: Annotated[int, typer.Option(min=1, help="Texts in the speed sample (drawn at random)")] = 1000,
    rounds: Annotated[int, typer.Option(min=1, help="Timed passes over the speed sample (median)")] = 3,
    queries: Annotated[int, typer.Option(min=1, help="Single-text calls timed for the query latency")] = 50,
    rescore: Annotated[
        int, typer.Option(min=0, help="Retrieval data: rescore the top K int8/binary candidates with the float query")
    ] = 0,
    keep_going: Annotated[
        bool, typer.Option("--keep-going", help="Compare the other models when one cannot be found or run")
    ] = False,
    device: DeviceOpt = None,
    threads: ThreadsOpt = None,
    seed: Annotated[int, typer.Option(help="Seed of the samples")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables")] = False,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Also draw the comparison: FILE.png, or FILE.html with the tables")
    ] = None,
    save: Annotated[Path | None, typer.Option("--save", help="Also write the JSON object to this file")] = None,
) -> None:
    """Compare models on YOUR data: parameters, speed, memory, truncation, quality, bytes per vector, Pareto front."""
    from embedlab.compare.plot import write_plot
    from embedlab.compare.report import compare_sections, report_json
    from embedlab.compare.runner import CompareOptions, compare_models
    from embedlab.inspect.report import print_sections

    if plot is not None and plot.suffix.lower() not in (".png", ".html", ".htm"):
        raise OutputError(f"{plot}: plots are .png or .html")
    options = CompareOptions(
        models=_split(models),
        backends=_split(backends) or ["auto"],
        data=data,
        data_limit=data_limit,
        texts=texts,
        text_field=text_field,
        precisions=_split(precisions),
        dimensions=_ints(dimensions, "--dimensions"),
        sample=sample,
        rounds=rounds,
        queries=queries,
        rescore=rescore,
        keep_going=keep_going,
        device=device or "cpu",
        threads=threads,
        seed=seed,
    )
    err = Console(stderr=True)
    with err.status("comparing") as status:
        report = compare_models(options, log=lambda line: status.update(f"compare: {line}"))
    payload = report_json(report)
    if save is not None:
        try:
            save.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise OutputError(f"cannot write {save}: {exc}") from exc
    if plot is not None:
        write_plot(report, plot)
    if as_json:
        typer.echo(json.dumps(payload))
    else:
        print_sections(compare_sections(report), "embedlab compare")
    if plot is not None:
        err.print(f"plot written to {plot}", highlight=False)
    if not report.results:
        raise ConfigError("no model could be measured (see the failures above)")


def register(app: typer.Typer) -> None:
    """Add the ``compare`` command to ``app``."""
    app.command("compare", cls=HelpCommand)(compare)
