"""``embedlab plan``: measure the user's data and hardware, recommend settings, write a settings file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from embedlab.cli.help import HelpCommand
from embedlab.cli.options import BackendOpt, ConfigOpt, DeviceOpt, ModelOpt, ThreadsOpt
from embedlab.settings import EngineSettings, load_settings


def plan(
    data: Annotated[Path, typer.Option("--data", "-d", help="Texts: .txt (a line each), .jsonl, .csv, .tsv, .parquet")],
    model: ModelOpt = None,
    backend: BackendOpt = None,
    device: DeviceOpt = None,
    threads: ThreadsOpt = None,
    config: ConfigOpt = None,
    text_field: Annotated[str | None, typer.Option(help="Field holding the text (jsonl/csv/parquet)")] = None,
    skip_empty: Annotated[bool, typer.Option(help="Leave out empty texts instead of failing")] = False,
    prompt_name: Annotated[str | None, typer.Option(help="Named prompt to count in the lengths, e.g. query")] = None,
    memory_budget: Annotated[
        str | None, typer.Option(help="Peak memory the embedding process may use, e.g. 2GiB (default: available now)")
    ] = None,
    memory_margin: Annotated[float, typer.Option(help="Safety margin on measured peaks (fraction)")] = 0.10,
    target_latency: Annotated[
        float | None, typer.Option(help="Worst-case batch latency target in milliseconds")
    ] = None,
    eval: Annotated[
        Path | None, typer.Option("--eval", help="Judge quality on an STS file or a BEIR directory")
    ] = None,
    eval_limit: Annotated[int | None, typer.Option(help="Use only the first N pairs / queries of --eval")] = None,
    batch_sizes: Annotated[str, typer.Option(help="Batch sizes to measure, comma-separated")] = "1,4,16,64,256",
    sample: Annotated[int, typer.Option(help="Texts sampled for the speed measurements")] = 256,
    coverage: Annotated[float, typer.Option(help="Share of texts the recommended max tokens keeps whole (0-1]")] = 1.0,
    chunk_threshold: Annotated[
        float, typer.Option(help="Chunk instead of truncating above this share of texts over the model limit")
    ] = 0.01,
    backends: Annotated[str | None, typer.Option(help="Backends to compare, comma-separated (default: all)")] = None,
    max_quality_loss: Annotated[
        float, typer.Option(help="Accepted relative loss of the --eval score for a faster backend / fewer dimensions")
    ] = 0.01,
    storage_budget: Annotated[
        str | None,
        typer.Option(help="Bytes all the vectors may take, e.g. 500MB: recommends (model, dimensions, precision)"),
    ] = None,
    precisions: Annotated[
        str, typer.Option(help="Output precisions to price (and score with --eval), comma-separated")
    ] = "float32,float16,int8,uint8,binary,ubinary",
    compare: Annotated[
        Path | None,
        typer.Option("--compare", help="A `compare --save` result: its models compete for the storage choice"),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sample")] = 0,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for report.html, plan.json, settings.json and plots")
    ] = Path("embedlab-plan"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON instead of tables")] = False,
) -> None:
    """Measure token lengths, backends, batch sizes (and quality) on YOUR data; recommend settings."""
    from embedlab.inspect.report import print_sections
    from embedlab.plan.batch import parse_batch_sizes, parse_size
    from embedlab.plan.planner import PlanOptions, make_plan
    from embedlab.plan.report import plan_json, plan_sections, write_plan_outputs

    err = Console(stderr=True)
    options = PlanOptions(
        data=data,
        text_field=text_field,
        skip_empty=skip_empty,
        memory_budget=parse_size(memory_budget) if memory_budget is not None else None,
        memory_margin=memory_margin,
        target_latency_ms=target_latency,
        eval_path=eval,
        eval_limit=eval_limit,
        batch_sizes=parse_batch_sizes(batch_sizes),
        sample_size=sample,
        coverage=coverage,
        chunk_threshold=chunk_threshold,
        backends=[b.strip() for b in backends.split(",") if b.strip()] if backends else None,
        max_quality_loss=max_quality_loss,
        storage_budget=parse_size(storage_budget, "storage budget") if storage_budget is not None else None,
        precisions=[p.strip() for p in precisions.split(",") if p.strip()],
        compare_path=compare,
        seed=seed,
    )
    settings = load_settings(
        EngineSettings, config, model=model, backend=backend, device=device, threads=threads, prompt_name=prompt_name
    )
    with err.status("planning") as status:
        report = make_plan(settings, options, log=lambda line: status.update(f"planning: {line}"))
    outputs = write_plan_outputs(report, out)
    if as_json:
        typer.echo(plan_json(report))
    else:
        print_sections(plan_sections(report), f"embedlab plan: {report.spec.name} on {data}")
    err.print(
        f"wrote {outputs.report_html}, {outputs.plan_json} and {outputs.settings_json} "
        f"(use: embedlab embed --config {outputs.settings_json} ...)",
        highlight=False,
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    """Add the ``plan`` command to ``app``."""
    app.command("plan", cls=HelpCommand)(plan)
