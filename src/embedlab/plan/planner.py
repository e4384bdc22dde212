"""``make_plan``: from a model and the user's data file to measured advice and a settings file.

Order of work (each step uses the previous one's answer):

1. token lengths of every text → distribution, truncation shares, recommended max tokens / chunking;
2. backends: each available backend embeds a random sample (same settings) → speed and quality
   (agreement with torch float32; with ``--eval`` the task score) → the fastest within tolerance;
3. batch sizes: the chosen backend, in a fresh process, at each batch size → throughput and worst-case
   peak memory → the fastest batch size within the memory budget (and latency target);
4. dimensions and precisions (``--eval`` only): the task score at smaller output dimensions, and at each
   output precision, one embedding pass per dimension → the smallest dimension within tolerance;
5. storage: every (model, dimension, precision) with its total for the file, the models of a ``compare``
   result included → the best-scoring one within ``--storage-budget`` (:mod:`embedlab.plan.storage`);
6. cost of the whole file (time, storage) and the settings file.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from embedlab.arrays import IntArray
from embedlab.engine.vector_precision import PRECISIONS, bytes_per_vector, check_precision
from embedlab.errors import ConfigError
from embedlab.eval.task import EvalTask, QualityPoint, load_eval_task
from embedlab.models.spec import ModelSpec
from embedlab.plan.backend_choice import (
    DEFAULT_MAX_QUALITY_LOSS,
    DEFAULT_MIN_AGREEMENT,
    BackendChoice,
    BackendMeasurement,
    choose_backend,
    measure_backends,
)
from embedlab.plan.batch import (
    DEFAULT_BATCH_SIZES,
    DEFAULT_MARGIN,
    BatchChoice,
    BatchMeasurement,
    available_memory,
    choose_batch,
    measure_batch_sizes,
)
from embedlab.plan.cost import JobCost, job_cost
from embedlab.plan.dimensions import (
    DimensionChoice,
    choose_dimensions,
    dimension_grid,
    dimension_qualities,
    measure_quality_grid,
)
from embedlab.plan.lengths import LengthStats, MaxTokensAdvice, histogram, length_stats, recommend_max_tokens
from embedlab.plan.storage import StorageChoice, StorageOption, choose_storage, options_from_compare
from embedlab.settings import EngineSettings

_COUNT_BLOCK = 10_000


@dataclass
class PlanOptions:
    """What ``plan`` measures and the tolerances it applies (each is a CLI flag).

    Attributes:
        data: the user's texts (.txt, .jsonl, .csv, .tsv, .parquet); ``text_field`` / ``skip_empty`` as in ``embed``.
        memory_budget: bytes the embedding process may use at its peak (None: the memory available now).
        memory_margin: safety margin on measured peaks (fraction).
        target_latency_ms: a worst-case batch must finish within this, if given.
        eval_path, eval_limit: an STS file or BEIR directory to judge quality with; its first N pairs / queries.
        batch_sizes: batch sizes to measure.
        sample_size: texts sampled (at random, seeded) for the speed measurements.
        coverage, chunk_threshold: the max-tokens rule (see :mod:`embedlab.plan.lengths`).
        backends: backends to compare (None: all of ``embedlab.backends.BACKENDS``).
        max_quality_loss: accepted relative loss of the task score (with ``--eval``).
        min_agreement: accepted mean cosine to torch float32 (without ``--eval``).
        storage_budget: bytes all the file's vectors may take (None: no limit; the best score is recommended).
        precisions: output precisions to price (and score, with ``--eval``).
        compare_path: a ``compare --json`` result whose models' options compete for the storage choice.
        seed: of the sample.
    """

    data: Path
    text_field: str | None = None
    skip_empty: bool = False
    memory_budget: int | None = None
    memory_margin: float = DEFAULT_MARGIN
    target_latency_ms: float | None = None
    eval_path: Path | None = None
    eval_limit: int | None = None
    batch_sizes: list[int] = field(default_factory=lambda: list(DEFAULT_BATCH_SIZES))
    sample_size: int = 256
    coverage: float = 1.0
    chunk_threshold: float = 0.01
    backends: list[str] | None = None
    max_quality_loss: float = DEFAULT_MAX_QUALITY_LOSS
    min_agreement: float = DEFAULT_MIN_AGREEMENT
    storage_budget: int | None = None
    precisions: list[str] = field(default_factory=lambda: list(PRECISIONS))
    compare_path: Path | None = None
    seed: int = 0


@dataclass
class PlanReport:
    """Everything ``plan`` measured and recommends.

    Attributes:
        spec: the model; ``data``: the file; ``texts``, ``skipped``: texts read / empty rows skipped.
        lengths: every text's full token length (not in the JSON; its histogram is).
        stats, advice: the length distribution and the max-tokens advice.
        backends, backend_choice: per-backend measurements and the pick.
        batches, batch_choice: per-batch-size measurements and the pick.
        dimension_choice: the output dimension (measured with ``--eval``).
        storage: the (model, dimension, precision) to store, within the storage budget.
        cost: the whole job's time and storage.
        settings: the recommended :class:`EngineSettings` fields (what the settings file holds).
        sample_size: texts in the speed sample.
        notes: caveats found on the way.
    """

    spec: ModelSpec
    data: Path
    texts: int
    skipped: int
    lengths: IntArray
    stats: LengthStats
    advice: MaxTokensAdvice
    backends: list[BackendMeasurement]
    backend_choice: BackendChoice
    batches: list[BatchMeasurement]
    batch_choice: BatchChoice
    dimension_choice: DimensionChoice
    storage: StorageChoice
    cost: JobCost
    settings: dict[str, Any]
    sample_size: int
    eval_source: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The whole plan as JSON-ready data (what ``--json`` prints and ``plan.json`` holds)."""
        counts, edges = histogram(self.lengths)
        return {
            "model": self.spec.name,
            "data": str(self.data),
            "texts": self.texts,
            "skipped_empty": self.skipped,
            "lengths": {**self.stats.to_dict(), "histogram": {"counts": counts, "edges": edges}},
            "max_tokens": self.advice.to_dict(),
            "backends": [m.to_dict() for m in self.backends],
            "backend_choice": self.backend_choice.to_dict(),
            "batch_sizes": [m.to_dict() for m in self.batches],
            "batch_choice": self.batch_choice.to_dict(),
            "dimensions": self.dimension_choice.to_dict(),
            "storage": self.storage.to_dict(),
            "cost": self.cost.to_dict(),
            "settings": self.settings,
            "sample_size": self.sample_size,
            "eval": self.eval_source,
            "notes": self.notes,
        }


def count_lengths(embedder: Any, texts: list[str], block: int = _COUNT_BLOCK) -> IntArray:
    """Full token length of each text, prompt included, in blocks so a big file never sits tokenised in memory."""
    out = np.empty(len(texts), dtype=np.int64)
    truncate = embedder.resolve(long_input="truncate")
    for start in range(0, len(texts), block):
        prepared = embedder.prepare(texts[start : start + block], truncate)
        out[start : start + len(prepared.input_tokens)] = prepared.input_tokens
    return out


def count_embedded(
    embedder: Any, texts: list[str], max_tokens: int, long_input: str, block: int = _COUNT_BLOCK
) -> tuple[int, int]:
    """(sequences, tokens) the engine will run for ``texts`` under ``max_tokens`` / ``long_input``, counted
    with the engine's own tokenising (chunk windows and their overlaps exactly as it cuts them)."""
    segments = tokens = 0
    options = embedder.resolve(max_tokens=max_tokens, long_input=long_input)
    for start in range(0, len(texts), block):
        prepared = embedder.prepare(texts[start : start + block], options)
        segments += len(prepared.segments)
        tokens += sum(len(segment.ids) for segment in prepared.segments)
    return segments, tokens


def _check_options(options: PlanOptions) -> None:
    from embedlab.backends import BACKENDS

    if options.sample_size < 1:
        raise ConfigError(f"sample size must be at least 1, got {options.sample_size}")
    if not options.batch_sizes or min(options.batch_sizes) < 1:
        raise ConfigError(f"batch sizes must be at least 1, got {options.batch_sizes}")
    if options.target_latency_ms is not None and options.target_latency_ms <= 0:
        raise ConfigError(f"target latency must be positive, got {options.target_latency_ms} ms")
    if not 0 <= options.max_quality_loss < 1:
        raise ConfigError(f"max quality loss must be in [0, 1), got {options.max_quality_loss}")
    if not 0 < options.coverage <= 1:
        raise ConfigError(f"coverage must be in (0, 1], got {options.coverage}")
    if not 0 <= options.chunk_threshold <= 1:
        raise ConfigError(f"chunk threshold must be in [0, 1], got {options.chunk_threshold}")
    if options.memory_margin < 0:
        raise ConfigError(f"memory margin must be ≥ 0, got {options.memory_margin}")
    if not options.precisions:
        raise ConfigError("give at least one precision to price")
    for precision in options.precisions:
        check_precision(precision)
    unknown = [b for b in options.backends or [] if b not in BACKENDS]
    if unknown:
        raise ConfigError(f"unknown backend(s) {', '.join(unknown)}; choose from {', '.join(BACKENDS)}")


def _read_compare(options: PlanOptions, eval_task: EvalTask | None) -> list[StorageOption]:
    """The options of ``--compare``'s models (none without it), checked against ``--eval`` before any work.

    Raises:
        ConfigError: the compare file scored its models on other data than ``--eval``.
        DataFileError: the compare file cannot be read.
    """
    if options.compare_path is None:
        return []
    compared, data, limit = options_from_compare(options.compare_path)
    if eval_task is None or data is None:
        return compared
    if Path(data).resolve() != eval_task.path.resolve() or limit != options.eval_limit:
        theirs = f"{data}" + (f" (first {limit})" if limit is not None else "")
        ours = f"{eval_task.path}" + (f" (first {options.eval_limit})" if options.eval_limit is not None else "")
        raise ConfigError(
            f"{options.compare_path} scored models on {theirs}, --eval is {ours}: scores of different data cannot "
            "be ranked together (run compare with --data and --data-limit the same as --eval and --eval-limit)"
        )
    return compared


def _storage_options(
    spec: ModelSpec,
    grid: list[int],
    precisions: list[str],
    points: list[QualityPoint],
    compared: list[StorageOption],
) -> list[StorageOption]:
    """The planned model's (dimension × precision) options, scored where measured, then the compared models'.

    Without scores of the planned model (no ``--eval``), the compared models' scores are dropped too, so
    that every option is judged alike (by bytes, see :func:`~embedlab.plan.storage.choose_storage`).
    """
    scores = {(p.dimensions, p.precision): p for p in points}
    out = []
    for dims in grid:
        for precision in precisions:
            point = scores.get((dims, precision))
            out.append(
                StorageOption(
                    model=spec.name,
                    dimensions=dims,
                    precision=precision,
                    bytes_per_vector=bytes_per_vector(dims, check_precision(precision)),
                    score=None if point is None else point.score,
                    metric=None if point is None else point.metric,
                    source="plan",
                )
            )
    others = [o for o in compared if o.model != spec.name]
    if not points:
        others = [replace(o, score=None, metric=None) for o in others]
    return out + others


def make_plan(settings: EngineSettings, options: PlanOptions, log: Callable[[str], None] | None = None) -> PlanReport:
    """Measure and recommend (see the module docstring).

    Args:
        settings: the starting engine settings (model, device, threads, prompt...); plan changes
            backend, batch sizes, max tokens, long-input policy and dimensions.
        options: the plan's options.
        log: called with a short line as each step starts.

    Raises:
        DataFileError: the data file is missing, unreadable or holds no texts.
        ConfigError: bad options, or a memory budget that not even batch size 1 fits.
        ModelNotFoundError, ModelLoadError, BackendError: the model or backend cannot run.
    """
    from embedlab.backends import BACKENDS
    from embedlab.engine.loader import load
    from embedlab.io.readers import read_texts

    say = log or (lambda _message: None)
    _check_options(options)
    table = read_texts(options.data, text_field=options.text_field, skip_empty=options.skip_empty)
    eval_task = load_eval_task(options.eval_path, options.eval_limit) if options.eval_path is not None else None
    compared = _read_compare(options, eval_task)

    say("counting tokens")
    embedder = load(settings=settings)
    spec = embedder.spec
    lengths = count_lengths(embedder, table.texts)
    n_special = embedder.tokenizer.num_special_tokens_to_add(False)
    stats = length_stats(lengths, spec.max_tokens)
    advice = recommend_max_tokens(
        lengths,
        spec.max_tokens,
        n_special=n_special,
        coverage=options.coverage,
        chunk_threshold=options.chunk_threshold,
        chunk_overlap=settings.chunk_overlap,
    )
    segments, embedded = count_embedded(embedder, table.texts, advice.max_tokens, advice.long_input)
    advice = replace(advice, segments=segments, tokens_embedded=embedded)
    del embedder
    rng = random.Random(options.seed)
    indices = sorted(rng.sample(range(len(table.texts)), min(options.sample_size, len(table.texts))))
    sample = [table.texts[i] for i in indices]
    notes: list[str] = []

    backends = measure_backends(
        settings,
        sample,
        options.backends or list(BACKENDS),
        batch_size=None,
        max_tokens=advice.max_tokens,
        long_input=advice.long_input,
        eval_task=eval_task,
        log=say,
    )
    backend_choice = choose_backend(backends, options.max_quality_loss, options.min_agreement)
    chosen_backend = backend_choice.recommended

    say(f"batch sizes {options.batch_sizes} on {chosen_backend}, in a fresh process")
    sweep_settings = settings.model_copy(update={"backend": chosen_backend})
    batches = measure_batch_sizes(sweep_settings, sample, options.batch_sizes, advice.max_tokens, advice.long_input)
    budget: int | None
    if options.memory_budget is not None:
        budget, source = options.memory_budget, "--memory-budget"
    else:
        budget, source = available_memory(), "memory available now"
    latency = options.target_latency_ms / 1000 if options.target_latency_ms is not None else None
    batch_choice = choose_batch(batches, budget, source, options.memory_margin, latency)
    if batch_choice.recommended is None:
        raise ConfigError("; ".join(batch_choice.reasons) + "; raise --memory-budget or use a smaller model")
    chosen_batch = batch_choice.recommended

    points: list[QualityPoint] = []
    grid = dimension_grid(spec.dim) if eval_task is not None else [spec.dim]
    if eval_task is not None:
        say(f"dimensions {grid} × precisions: evaluating on {eval_task.path}")
        dims_embedder = load(settings=sweep_settings)
        embed_options = {"max_tokens": advice.max_tokens, "long_input": advice.long_input}
        points = measure_quality_grid(dims_embedder, eval_task, grid, options.precisions, embed_options, log=say)
        del dims_embedder
    measured_dims = dimension_qualities(points) if len(grid) > 1 else []
    dimension_choice = choose_dimensions(spec.dim, measured_dims, options.max_quality_loss)
    storage = choose_storage(
        _storage_options(spec, grid, options.precisions, points, compared), len(table.texts), options.storage_budget
    )

    dims = dimension_choice.recommended
    chosen = storage.recommended
    if options.storage_budget is not None and chosen is not None:
        if chosen.model == spec.name:  # the budget is a hard limit: its choice of dimensions wins
            dims = chosen.dimensions
            notes.append(
                f"the storage budget chose {chosen.dimensions} dimensions in {chosen.precision}: embed with "
                f"--precision {chosen.precision} (the settings file holds the dimensions; precision is per call)"
            )
        else:
            notes.append(
                f"the storage budget chose another model, {chosen.model} ({chosen.dimensions} dimensions, "
                f"{chosen.precision}); these settings are for {spec.name}: plan {chosen.model} (--model) for its own"
            )
    rate = next(m.tokens_per_second for m in batches if m.batch_size == chosen_batch)
    cost = job_cost(len(table.texts), advice.tokens_embedded, rate, dims)
    if settings.device.startswith("cuda"):
        notes.append(
            "memory was measured as host resident memory; GPU memory is not measured, so the budget "
            "applies to host memory only"
        )
    if len(sample) < max(options.batch_sizes):
        notes.append(
            f"the sample holds {len(sample)} texts; batch sizes above that were measured on the sample repeated"
        )
    recommended_settings: dict[str, Any] = {
        "model": spec.name,
        "backend": chosen_backend,
        "device": settings.device,
        "max_batch_size": chosen_batch,
        "max_batch_tokens": chosen_batch * advice.max_tokens,
        "max_tokens": advice.max_tokens,
        "long_input": advice.long_input,
    }
    if advice.long_input == "chunk":
        recommended_settings["chunk_overlap"] = settings.chunk_overlap
    if dims != spec.dim:
        recommended_settings["dimensions"] = dims
    if settings.threads is not None:
        recommended_settings["threads"] = settings.threads
    if settings.prompt_name is not None:
        recommended_settings["prompt_name"] = settings.prompt_name
    EngineSettings(**recommended_settings)  # the file must load back
    return PlanReport(
        spec=spec,
        data=options.data,
        texts=len(table.texts),
        skipped=table.skipped,
        lengths=lengths,
        stats=stats,
        advice=advice,
        backends=backends,
        backend_choice=backend_choice,
        batches=batches,
        batch_choice=batch_choice,
        dimension_choice=dimension_choice,
        storage=storage,
        cost=cost,
        settings=recommended_settings,
        sample_size=len(sample),
        eval_source=str(eval_task.path) if eval_task is not None else None,
        notes=notes,
    )
