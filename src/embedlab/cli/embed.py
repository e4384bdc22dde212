"""``embedlab embed``: embed a file of texts into a file of vectors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from embedlab.cli.help import HelpCommand
from embedlab.cli.options import BackendOpt, ConfigOpt, DeviceOpt, ModelOpt, ThreadsOpt, progress_bar
from embedlab.errors import ConfigError
from embedlab.settings import EngineSettings, load_settings


def embed(
    input: Annotated[
        Path, typer.Option("--input", "-i", help="Texts: .txt (a line each), .jsonl, .csv, .tsv, .parquet")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Vectors: .npy, .parquet (id + vector) or .jsonl")],
    model: ModelOpt = None,
    backend: BackendOpt = None,
    device: DeviceOpt = None,
    threads: ThreadsOpt = None,
    text_field: Annotated[str | None, typer.Option(help="Field holding the text (jsonl/csv/parquet)")] = None,
    id_field: Annotated[str | None, typer.Option(help="Field holding an id (default: 'id' if present)")] = None,
    skip_empty: Annotated[bool, typer.Option(help="Leave out empty texts (counted) instead of failing")] = False,
    long_input: Annotated[
        str | None, typer.Option(help="Texts over the limit: truncate (default), error, chunk")
    ] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Token limit below the model's own")] = None,
    prompt: Annotated[str | None, typer.Option(help="Text prepended to every input")] = None,
    prompt_name: Annotated[str | None, typer.Option(help="One of the model's own prompts, e.g. query")] = None,
    dimensions: Annotated[int | None, typer.Option(help="Keep the first N dimensions (Matryoshka)")] = None,
    normalize: Annotated[bool | None, typer.Option("--normalize/--no-normalize", help="Default: the model's")] = None,
    precision: Annotated[
        str, typer.Option(help="Stored values: float32, float16, int8, uint8, binary, ubinary (packed bits)")
    ] = "float32",
    max_batch_tokens: Annotated[int | None, typer.Option(help="Padded tokens per forward batch")] = None,
    config: ConfigOpt = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar")] = False,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            help="Run on Ray: 'local' starts a local Ray, HOST:PORT joins a cluster; --output is then a directory",
        ),
    ] = None,
    num_workers: Annotated[int, typer.Option(help="--ray: embedding actors (one model copy each)")] = 2,
    cpus_per_worker: Annotated[float, typer.Option(help="--ray: CPUs per actor (its threads too)")] = 1.0,
    gpus_per_worker: Annotated[float, typer.Option(help="--ray: GPUs per actor")] = 0.0,
    rows_per_part: Annotated[int, typer.Option(help="--ray: texts per output parquet part")] = 10_000,
) -> None:
    """Embed every text of INPUT and write the vectors to OUTPUT, with a progress bar and a summary."""
    from embedlab.embed_job import run_embed_job
    from embedlab.engine.loader import load
    from embedlab.engine.vector_precision import check_precision
    from embedlab.io.readers import read_texts
    from embedlab.io.writers import check_output_path

    console = Console(stderr=True)
    check_precision(precision)
    if ray is not None:
        if precision != "float32":
            raise ConfigError("--precision with --ray: Ray jobs write float32 vectors; quantise them afterwards")
        from embedlab.distributed.ray_cli import embed_on_ray

        job = dict(num_workers=num_workers, cpus_per_worker=cpus_per_worker, gpus_per_worker=gpus_per_worker)
        flags: dict[str, Any] = dict(
            model=model, backend=backend, device=device, threads=threads, max_batch_tokens=max_batch_tokens
        )
        flags.update(long_input=long_input, max_tokens=max_tokens, prompt_name=prompt_name, dimensions=dimensions)
        embed_on_ray(
            input,
            output,
            load_settings(EngineSettings, config, **flags),
            ray,
            job,
            rows_per_part,
            console,
            quiet,
            text_field=text_field,
            id_field=id_field,
            skip_empty=skip_empty,
            prompt=prompt,
            normalize=normalize,
        )
        return
    table = read_texts(input, text_field=text_field, id_field=id_field, skip_empty=skip_empty)
    check_output_path(output, overwrite)
    settings = load_settings(
        EngineSettings,
        config,
        model=model,
        backend=backend,
        device=device,
        threads=threads,
        max_batch_tokens=max_batch_tokens,
        long_input=long_input,
        max_tokens=max_tokens,
        prompt_name=prompt_name,
        dimensions=dimensions,
    )
    embedder = load(settings=settings)
    with progress_bar(console, quiet, "embedding") as bar:
        task = bar.add_task("embed", total=None)

        def on_progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = run_embed_job(
            embedder,
            table,
            output,
            overwrite=overwrite,
            on_progress=on_progress,
            on_message=lambda line: console.print(line, highlight=False, soft_wrap=True),
            prompt=prompt,
            normalize=normalize,
            precision=precision,
        )
    console.print(report.summary(), highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the ``embed`` command to ``app``."""
    app.command("embed", cls=HelpCommand)(embed)
