"""Embed a corpus on Ray Data: read input files into parts, embed each part on an actor pool, write parquet parts.

Pipeline (streaming; Ray Data applies backpressure, so memory stays bounded by a few parts in flight and
by the largest single input file being read)::

    input files ──flat_map (tasks)──► parts {part, ids, texts}      (completed parts are skipped here)
                ──map_batches (actor pool, batch = 1 part)──► each actor embeds and writes its part
                ──► driver: one small stats row per part (progress, per-worker throughput)

Each actor loads the model once (:func:`embedlab.load` with the job's :class:`EngineSettings`) and calls
:meth:`Embedder.embed_resolved`, exactly the local path's engine, so vectors match it. Vectors never
travel back to the driver: actors write parts straight into the output directory (on a multi-node
cluster that directory must be shared storage every node can write, e.g. NFS).

Resumption and safety live in :mod:`embedlab.distributed.shards` (manifest, atomic parts, lock).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from embedlab.distributed.cluster import ensure_ray, import_ray
from embedlab.distributed.ray_stages import PartEmbedder, raise_worker_error, read_file_parts
from embedlab.distributed.shards import (
    SUCCESS_NAME,
    JobManifest,
    has_id_field,
    list_input_files,
    output_lock,
    prepare_output_dir,
    write_json_atomic,
)
from embedlab.errors import ClusterError, ConfigError, EmbedlabError
from embedlab.settings import EngineSettings


@dataclass(frozen=True)
class RayJobSettings:
    """How a job runs on Ray.

    Attributes:
        address: a cluster to join (``HOST:PORT``, ``ray://HOST:10001`` or ``auto``); None starts a local Ray.
        num_workers: embedding actors (each holds one copy of the model).
        cpus_per_worker: CPUs Ray reserves per actor; also the actor's intra-op threads unless
            ``EngineSettings.threads`` is set.
        gpus_per_worker: GPUs per actor (fractions share a GPU); > 0 moves a ``cpu`` device to ``cuda``.
        rows_per_part: texts per output part: the unit of work, of resumption and of atomic writing.
        local_cpus: CPUs of the local Ray started without ``address`` (default: all of this machine's).
    """

    address: str | None = None
    num_workers: int = 2
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    rows_per_part: int = 10_000
    local_cpus: int | None = None

    def check(self) -> None:
        """Raise :class:`ConfigError` for values out of range."""
        if self.num_workers < 1:
            raise ConfigError(f"--num-workers must be at least 1, got {self.num_workers}")
        if self.cpus_per_worker <= 0:
            raise ConfigError(f"--cpus-per-worker must be > 0, got {self.cpus_per_worker}")
        if self.gpus_per_worker < 0:
            raise ConfigError(f"--gpus-per-worker must be ≥ 0, got {self.gpus_per_worker}")
        if self.rows_per_part < 1:
            raise ConfigError(f"--rows-per-part must be at least 1, got {self.rows_per_part}")


@dataclass
class WorkerStats:
    """What one actor did: parts, texts and tokens written, seconds spent embedding (model load excluded)."""

    parts: int = 0
    texts: int = 0
    tokens: int = 0
    seconds: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        """Tokens embedded per second of this worker's embedding time."""
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


@dataclass
class RayEmbedReport:
    """What a Ray embedding job did.

    Attributes:
        output: the output directory.
        texts: texts embedded by this run (skipped parts excluded).
        tokens: tokens embedded by this run (special tokens included).
        truncated: texts that lost tokens to truncation.
        parts_written: parts written by this run.
        parts_skipped: parts already complete from an earlier run, left as they were.
        rows_skipped: texts in those skipped parts.
        seconds: wall time from Ray connected to the last part written (model loads included).
        workers: per actor (``host/pid``): its :class:`WorkerStats`.
        resumed: whether the output directory held an earlier run of the same job.
    """

    output: Path
    texts: int = 0
    tokens: int = 0
    truncated: int = 0
    parts_written: int = 0
    parts_skipped: int = 0
    rows_skipped: int = 0
    seconds: float = 0.0
    workers: dict[str, WorkerStats] = field(default_factory=dict)
    resumed: bool = False

    @property
    def tokens_per_second(self) -> float:
        """Tokens embedded per second of wall time (the whole job's throughput)."""
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """Lines for people: totals, throughput, then one line per worker."""
        skipped = f", {self.parts_skipped} parts ({self.rows_skipped} texts) already done" if self.parts_skipped else ""
        lines = [
            f"embedded {self.texts} texts ({self.tokens} tokens, {self.truncated} truncated) into "
            f"{self.parts_written} parts{skipped} in {self.seconds:.2f} s: {self.tokens_per_second:,.0f} tokens/s "
            f"on {len(self.workers)} workers -> {self.output}"
        ]
        for name, stats in sorted(self.workers.items()):
            lines.append(
                f"  worker {name}: {stats.parts} parts, {stats.texts} texts, "
                f"{stats.tokens_per_second:,.0f} tokens/s over {stats.seconds:.2f} s embedding"
            )
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (written as ``_SUCCESS.json`` when the job completes)."""
        return {
            "texts": self.texts,
            "tokens": self.tokens,
            "truncated": self.truncated,
            "parts_written": self.parts_written,
            "parts_skipped": self.parts_skipped,
            "rows_skipped": self.rows_skipped,
            "seconds": self.seconds,
            "tokens_per_second": self.tokens_per_second,
            "workers": {
                name: {**vars(stats), "tokens_per_second": stats.tokens_per_second}
                for name, stats in self.workers.items()
            },
        }


# -- the driver ---------------------------------------------------------------------------------------


def _actor_settings(settings: EngineSettings, job: RayJobSettings) -> EngineSettings:
    update: dict[str, Any] = {}
    if settings.threads is None:
        update["threads"] = max(1, int(job.cpus_per_worker))
    if job.gpus_per_worker > 0 and settings.device == "cpu":
        update["device"] = "cuda"
    return settings.model_copy(update=update)


def build_manifest(
    settings: EngineSettings, inputs: list[Path], rows_per_part: int, embed_options: dict[str, Any]
) -> JobManifest:
    """The manifest of a job: the model's identity from its files, and every option that changes vectors."""
    from embedlab.engine.loader import load_spec
    from embedlab.models.resolve import model_fingerprint

    spec = load_spec(settings.model)
    options = {
        "max_tokens": settings.max_tokens,
        "long_input": settings.long_input,
        "chunk_overlap": settings.chunk_overlap if settings.long_input == "chunk" else None,
        "prompt": embed_options.get("prompt"),
        "prompt_name": settings.prompt_name if embed_options.get("prompt") is None else None,
        "normalize": embed_options.get("normalize"),
        "dimensions": settings.dimensions,
    }
    return JobManifest(
        model=spec.name,
        fingerprint=model_fingerprint(Path(spec.path)),
        backend=settings.backend,
        dim=int(settings.dimensions or spec.dim),
        options=options,
        inputs=[p.name for p in inputs],
        rows_per_part=rows_per_part,
    )


def run_ray_embed(
    input_path: str | Path,
    output_dir: str | Path,
    settings: EngineSettings,
    job: RayJobSettings | None = None,
    *,
    text_field: str | None = None,
    id_field: str | None = None,
    skip_empty: bool = False,
    prompt: str | None = None,
    normalize: bool | None = None,
    on_progress: Callable[[RayEmbedReport], None] | None = None,
) -> RayEmbedReport:
    """Embed every text of ``input_path`` (a file or a directory of files) into parquet parts in ``output_dir``.

    Ids are those of :func:`embedlab.io.readers.read_texts`; for a directory, row-number ids (``.txt``, or
    no id field) become ``FILE_NAME:ROW`` so they stay unique across files.

    Args:
        input_path: a .txt/.jsonl/.csv/.tsv/.parquet file, or a directory of them (sorted by name).
        output_dir: the output directory (created; resumed if it holds an earlier run of the same job).
        settings: engine settings, as for the local path.
        job: Ray settings (address, workers, CPUs/GPUs per worker, rows per part).
        prompt, normalize: as :meth:`Embedder.embed_with_report`.
        on_progress: called with the report so far after each part.

    Raises:
        DataFileError: missing, unreadable or malformed input; duplicate ids in a file.
        OutputError: the output directory holds another model's (or another job's) parts, or is busy.
        ClusterError: Ray could not be started or reached, or a worker died.
        ConfigError, InputError, ModelError: as the local path (raised from the worker that hit them).
    """
    job = job or RayJobSettings()
    job.check()
    inputs = list_input_files(input_path)
    output = Path(output_dir)
    embed_options = {k: v for k, v in {"prompt": prompt, "normalize": normalize}.items() if v is not None}
    manifest = build_manifest(settings, inputs, job.rows_per_part, embed_options)
    prefix = Path(input_path).is_dir()
    sources = [
        {"file_index": i, "path": str(p.resolve()), "prefix_ids": prefix and not has_id_field(p, id_field)}
        for i, p in enumerate(inputs)
    ]
    prepare_output_dir(output, manifest, create=False)  # another model's parts: fail before starting Ray
    ray = import_ray()
    gpus = int(job.gpus_per_worker * job.num_workers + 0.999) or None
    started_here = ensure_ray(job.address, num_cpus=job.local_cpus, num_gpus=gpus)
    try:
        with output_lock(output):
            report = RayEmbedReport(output=output, resumed=prepare_output_dir(output, manifest))
            _run_pipeline(
                ray,
                sources,
                output,
                settings,
                job,
                embed_options,
                report,
                text_field,
                id_field,
                skip_empty,
                on_progress,
            )
            write_json_atomic(output / SUCCESS_NAME, {"manifest": manifest.to_json(), "last_run": report.to_json()})
    finally:
        if started_here:
            ray.shutdown()
    return report


def _run_pipeline(
    ray: Any,
    sources: list[dict[str, Any]],
    output: Path,
    settings: EngineSettings,
    job: RayJobSettings,
    embed_options: dict[str, Any],
    report: RayEmbedReport,
    text_field: str | None,
    id_field: str | None,
    skip_empty: bool,
    on_progress: Callable[[RayEmbedReport], None] | None,
) -> None:
    from ray.data import ActorPoolStrategy, DataContext

    context = DataContext.get_current()
    context.enable_progress_bars = False
    context.execution_options.preserve_order = False
    started = time.perf_counter()
    read = partial(
        read_file_parts,
        output=str(output),
        rows_per_part=job.rows_per_part,
        text_field=text_field,
        id_field=id_field,
        skip_empty=skip_empty,
    )
    dataset = (
        ray.data.from_items(sources, override_num_blocks=len(sources))
        .flat_map(read, num_cpus=0)  # I/O; 0 CPUs so reads never wait behind actors holding every CPU
        .map_batches(
            PartEmbedder,
            fn_constructor_kwargs={
                "settings": _actor_settings(settings, job),
                "output": str(output),
                "embed_options": embed_options,
            },
            batch_size=1,
            compute=ActorPoolStrategy(size=job.num_workers),
            num_cpus=job.cpus_per_worker,
            num_gpus=job.gpus_per_worker or None,
        )
    )
    try:
        for row in dataset.iter_rows():
            if row["error"]:
                raise_worker_error(str(row["error"]))
            if int(row["done_rows"]):
                report.parts_skipped += 1
                report.rows_skipped += int(row["done_rows"])
            else:
                report.parts_written += 1
                report.texts += int(row["texts"])
                report.tokens += int(row["tokens"])
                report.truncated += int(row["truncated"])
                stats = report.workers.setdefault(str(row["worker"]), WorkerStats())
                stats.parts += 1
                stats.texts += int(row["texts"])
                stats.tokens += int(row["tokens"])
                stats.seconds += float(row["seconds"])
            report.seconds = time.perf_counter() - started
            if on_progress is not None:
                on_progress(report)
    except EmbedlabError:
        raise
    except Exception as exc:  # RayTaskError, ActorDiedError, ObjectLostError...
        raise ClusterError(f"the Ray job failed: {type(exc).__name__}: {exc}") from exc
    report.seconds = time.perf_counter() - started
