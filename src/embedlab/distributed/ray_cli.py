"""The ``embedlab embed --ray`` branch: progress display and summary around :func:`run_ray_embed`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from embedlab.distributed.ray_embed import RayEmbedReport, RayJobSettings, run_ray_embed
from embedlab.settings import EngineSettings


def embed_on_ray(
    input_path: Path,
    output_dir: Path,
    settings: EngineSettings,
    address: str,
    job_options: dict[str, Any],
    rows_per_part: int,
    console: Console,
    quiet: bool,
    **read_and_embed: Any,
) -> RayEmbedReport:
    """Run the job with a live line (parts, texts, tokens/s) and print the summary to ``console``.

    Args:
        address: ``local`` (start a local Ray on 127.0.0.1) or a cluster address.
        job_options: ``num_workers``, ``cpus_per_worker``, ``gpus_per_worker``.
        **read_and_embed: ``text_field``, ``id_field``, ``skip_empty``, ``prompt``, ``normalize``.
    """
    job = RayJobSettings(address=None if address == "local" else address, rows_per_part=rows_per_part, **job_options)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
        transient=True,
    ) as bar:
        task = bar.add_task("starting Ray and loading the model on each worker", total=None)

        def on_progress(report: RayEmbedReport) -> None:
            bar.update(
                task,
                description=(
                    f"{report.parts_written} parts written ({report.texts} texts), {report.parts_skipped} already "
                    f"done, {report.tokens_per_second:,.0f} tokens/s"
                ),
            )

        report = run_ray_embed(input_path, output_dir, settings, job, on_progress=on_progress, **read_and_embed)
    console.print(report.summary(), highlight=False, soft_wrap=True)
    return report
