"""The benchmark grid: which points to measure, the texts of each, and running them all.

A plan crosses backends × threads × batch sizes × sequence lengths for the chosen model (generated
texts of an exact token length), adds the texts of a data file when one is given (each batch size in
file order, plus the engine's own token-budget batching), and measures synthetic model shapes at one
base point. Every point is warmed up first, then measured in ``repeat`` rounds; each round visits
every point once, starting one point further along, so a burst of machine noise lands on one run of
many points rather than every run of one point, and the medians shrug it off.
"""

from __future__ import annotations

import datetime as dt
import math
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from embedlab.backends import BACKENDS
from embedlab.bench.cache_effect import measure_cache_effect
from embedlab.bench.machine import machine_info
from embedlab.bench.runner import PointConfig, PointResult, RunSample, measure_run, set_backend_threads
from embedlab.bench.synthetic import FlopModel, SyntheticShape, build_synthetic_bert, measure_matmul_peak, model_flops
from embedlab.cpu import available_cores
from embedlab.engine.embedder import Embedder
from embedlab.errors import ConfigError
from embedlab.models.spec import ModelSpec
from embedlab.sample_texts import generate_corpus, texts_of_length

SCHEMA = "embedlab-bench/1"
DEFAULT_BATCHES: tuple[int, ...] = (1, 8, 32, 128)
DEFAULT_SEQS: tuple[int, ...] = (16, 64, 128, 256)
Progress = Callable[[str, int, int], None]


class BenchSettings(BaseSettings):
    """How much work each point does. Every field is settable as ``EMBEDLAB_BENCH_<FIELD>``.

    Attributes:
        repeat: timed runs per point (the median is reported, with min and max).
        warmup: untimed runs per point before the timed ones (loads kernels, fills caches).
        tokens_per_run: padded tokens a generated-text point embeds per run, rounded up to whole
            batches (at least one batch): enough batches for stable latency percentiles.
        max_texts: texts read from ``--data`` at most (the first ones in the file).
        cache_texts: texts embedded twice for the cache-effect measurement.
        request_texts: texts per request in the cache-effect measurement.
    """

    model_config = SettingsConfigDict(env_prefix="EMBEDLAB_BENCH_", extra="ignore")

    repeat: int = Field(default=3, ge=1)
    warmup: int = Field(default=1, ge=0)
    tokens_per_run: int = Field(default=8192, ge=1)
    max_texts: int = Field(default=1000, ge=1)
    cache_texts: int = Field(default=500, ge=1)
    request_texts: int = Field(default=32, ge=1)


@dataclass
class BenchPlan:
    """What ``embedlab bench`` measures.

    Attributes:
        model: model name or path (None: the default model).
        batches: texts per forward batch.
        seqs: exact token lengths of generated texts; None: the defaults, or none when ``data`` is given.
        backends: backend names from :data:`embedlab.backends.BACKENDS`.
        threads: intra-op thread counts; None: the physical cores available.
        data: a file of real texts (its length mix is measured and padding waste reported).
        text_field: field holding the text in ``data`` (jsonl / csv / parquet).
        synthetic: random-weight model shapes, each measured at the base point.
        cache: measure the cache effect (when the engine has a cache).
        device: ``cpu`` or ``cuda[:N]``.
        settings: work per point.
    """

    model: str | None = None
    batches: tuple[int, ...] = DEFAULT_BATCHES
    seqs: tuple[int, ...] | None = None
    backends: tuple[str, ...] = ("torch",)
    threads: tuple[int, ...] | None = None
    data: Path | None = None
    text_field: str | None = None
    synthetic: tuple[SyntheticShape, ...] = ()
    cache: bool = True
    device: str = "cpu"
    settings: BenchSettings = field(default_factory=BenchSettings)

    @property
    def seq_lengths(self) -> tuple[int, ...]:
        """The sequence lengths to sweep: as given, else the defaults unless a data file replaces them."""
        if self.seqs is not None:
            return self.seqs
        return () if self.data is not None else DEFAULT_SEQS

    @property
    def thread_counts(self) -> tuple[int, ...]:
        """The thread counts to sweep (default: the physical cores available)."""
        return self.threads or (available_cores(),)


def parse_int_list(text: str, what: str) -> tuple[int, ...]:
    """``"1,8,32"`` → (1, 8, 32), each a positive integer, duplicates dropped, order kept.

    Raises:
        ConfigError: empty, not integers, or a value ≤ 0 (the message names ``what``).
    """
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise ConfigError(f"{what}: give at least one value, e.g. 1,8,32")
    try:
        values = [int(p) for p in parts]
    except ValueError as exc:
        raise ConfigError(f"{what}: values must be whole numbers separated by commas, got {text!r}") from exc
    bad = [v for v in values if v < 1]
    if bad:
        raise ConfigError(f"{what}: values must be at least 1, got {bad[0]}")
    return tuple(dict.fromkeys(values))


def parse_name_list(text: str) -> tuple[str, ...]:
    """``"torch, onnx"`` → ("torch", "onnx"), each a known backend.

    Raises:
        ConfigError: empty, or an unknown backend (the message lists the known ones).
    """
    names = tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
    if not names:
        raise ConfigError(f"--backend: give at least one of {', '.join(BACKENDS)}")
    unknown = [n for n in names if n not in BACKENDS]
    if unknown:
        raise ConfigError(f"unknown backend {unknown[0]!r}; choose from {', '.join(BACKENDS)}")
    return names


def check_plan(plan: BenchPlan, spec: ModelSpec) -> None:
    """Refuse a plan that cannot run, before loading anything heavy.

    Raises:
        ConfigError: a batch size or thread count below 1, a sequence length outside 1..the model's
            limit, an unknown backend, or nothing to measure.
    """
    if not plan.batches:
        raise ConfigError("--batch: give at least one batch size")
    for batch in plan.batches:
        if batch < 1:
            raise ConfigError(f"batch size must be at least 1, got {batch}")
    for seq in plan.seq_lengths:
        if seq < 1:
            raise ConfigError(f"sequence length must be at least 1 token, got {seq}")
        if seq > spec.max_tokens:
            raise ConfigError(
                f"sequence length {seq} is above the limit of {spec.name}: {spec.max_tokens} tokens "
                "(special tokens included); longer texts would be truncated"
            )
    for threads in plan.thread_counts:
        if threads < 1:
            raise ConfigError(f"threads must be at least 1, got {threads}")
    if not plan.backends:
        raise ConfigError("give at least one backend")
    for backend in plan.backends:
        if backend not in BACKENDS:
            raise ConfigError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if not plan.seq_lengths and plan.data is None:
        raise ConfigError("nothing to measure: give --seq lengths or a --data file")


def base_point(plan: BenchPlan) -> tuple[int, int | None]:
    """The (batch, seq) where synthetic shapes are measured: batch 32 (else the nearest below, else the
    smallest given) and sequence length 128 (else the longest given ≤ 128, else the shortest; None with
    data only)."""
    batches = sorted(plan.batches)
    batch = max((b for b in batches if b <= 32), default=batches[0])
    seqs = sorted(plan.seq_lengths)
    seq = max((s for s in seqs if s <= 128), default=seqs[0]) if seqs else None
    return batch, seq


def plan_points(plan: BenchPlan, spec: ModelSpec, synthetic_labels: Sequence[str] = ()) -> list[PointConfig]:
    """Every point of the plan, in the order they are visited.

    The model's points: backends × threads × batches × sequence lengths, then per backend × threads
    the data file at each batch size and with the engine's token-budget batching (``batch=None``).
    Synthetic shapes: the first backend, the most threads, at :func:`base_point`.
    """
    data = str(plan.data) if plan.data is not None else None
    points: list[PointConfig] = []
    for backend in plan.backends:
        for threads in plan.thread_counts:
            for batch in plan.batches:
                for seq in plan.seq_lengths:
                    points.append(PointConfig(spec.name, backend, batch, seq, None, threads))
            if data is not None:
                for data_batch in (*plan.batches, None):
                    points.append(PointConfig(spec.name, backend, data_batch, None, data, threads))
    base_batch, base_seq = base_point(plan)
    for label in synthetic_labels:
        points.append(
            PointConfig(
                label, plan.backends[0], base_batch, base_seq, None if base_seq else data, max(plan.thread_counts)
            )
        )
    return points


def texts_per_point(batch: int, seq: int, tokens_per_run: int) -> int:
    """Generated texts a point embeds per run: whole batches, at least one, about ``tokens_per_run`` tokens."""
    return batch * max(1, math.ceil(tokens_per_run / (batch * seq)))


class _Models:
    """Loaded embedders by (model label, backend, threads), created on first use."""

    def __init__(self, paths: dict[str, str], device: str):
        self.paths = paths
        self.device = device
        self._loaded: dict[tuple[str, str, int], Embedder] = {}

    def get(self, config: PointConfig) -> Embedder:
        from embedlab.engine.loader import load

        key = (config.model, config.backend, config.threads)
        if key not in self._loaded:
            self._loaded[key] = load(
                self.paths[config.model], backend=config.backend, device=self.device, threads=config.threads
            )
        return self._loaded[key]


def run_bench(plan: BenchPlan, progress: Progress | None = None) -> dict[str, Any]:
    """Measure every point of ``plan``; return the JSON-ready result (schema ``embedlab-bench/1``).

    Args:
        plan: what to measure.
        progress: called as ``progress(what, done, total)`` after each run.

    Raises:
        ConfigError: an invalid plan (see :func:`check_plan`).
        ModelNotFoundError, ModelLoadError, BackendUnavailableError, DataFileError: as loading does.
    """
    from embedlab.engine.loader import load_spec

    spec = load_spec(plan.model)
    check_plan(plan, spec)
    settings = plan.settings
    notes: list[str] = []
    data_texts: list[str] = []
    if plan.data is not None:
        from embedlab.io.readers import read_texts

        table = read_texts(plan.data, text_field=plan.text_field, skip_empty=True)
        data_texts = table.texts[: settings.max_texts]
        if table.skipped:
            notes.append(f"{plan.data}: skipped {table.skipped} empty texts")
        if len(table.texts) > settings.max_texts:
            notes.append(f"{plan.data}: measured the first {settings.max_texts} of {len(table.texts)} texts")
    cores = available_cores()
    if max(plan.thread_counts) > cores:
        notes.append(f"threads above the {cores} physical cores available oversubscribe the CPU")

    with tempfile.TemporaryDirectory(prefix="embedlab-bench-") as tmp:
        paths = {spec.name: str(spec.path)}
        flop_models: dict[str, FlopModel] = {spec.name: model_flops(spec)}
        shapes: dict[str, SyntheticShape] = {}
        tokenizer_dir = spec.path if spec.tokenizer_file is not None else None
        synth_max = max(512, *plan.seq_lengths) if plan.seq_lengths else 512
        for shape in plan.synthetic:
            directory = build_synthetic_bert(
                Path(tmp) / shape.label,
                shape,
                tokenizer_dir=tokenizer_dir,
                max_positions=synth_max,
                max_seq_length=spec.max_tokens if spec.max_tokens <= synth_max else synth_max,
            )
            paths[shape.label] = str(directory)
            flop_models[shape.label] = model_flops(load_spec(str(directory)))
            shapes[shape.label] = shape
        points = plan_points(plan, spec, list(shapes))
        models = _Models(paths, plan.device)

        peaks = {t: measure_matmul_peak(t, device=plan.device) for t in sorted(set(plan.thread_counts))}
        texts: dict[tuple[str, int | None, int | None], list[str]] = {}
        tokenizer = models.get(points[0]).tokenizer
        for point in points:
            if point.seq is None:
                continue
            assert point.batch is not None
            n = texts_per_point(point.batch, point.seq, settings.tokens_per_run)
            texts.setdefault((point.model, point.batch, point.seq), texts_of_length(tokenizer, point.seq, n))

        def point_texts(point: PointConfig) -> list[str]:
            return data_texts if point.seq is None else texts[(point.model, point.batch, point.seq)]

        def one_run(point: PointConfig) -> RunSample:
            embedder = models.get(point)
            set_backend_threads(embedder, point.threads)
            return measure_run(embedder, point_texts(point), point.batch, flop_models[point.model].batch_flops)

        total = len(points) * (settings.warmup + settings.repeat)
        done = 0
        for _ in range(settings.warmup):
            for point in points:
                one_run(point)
                done += 1
                if progress is not None:
                    progress(f"warm-up {point.key}", done, total)
        samples: dict[PointConfig, list[RunSample]] = {p: [] for p in points}
        for round_index in range(settings.repeat):
            shift = round_index % len(points)
            for point in points[shift:] + points[:shift]:
                samples[point].append(one_run(point))
                done += 1
                if progress is not None:
                    progress(point.key, done, total)

        results = []
        for point in points:
            extra: dict[str, Any] = {}
            if point.model in shapes:
                shape = shapes[point.model]
                extra["synthetic"] = {**shape.__dict__, "params": flop_models[point.model].params}
            results.append(
                PointResult(point, samples[point], settings.warmup, peaks.get(point.threads), extra).to_dict()
            )

        cache: dict[str, Any]
        if plan.cache:
            first = models.get(points[0])
            set_backend_threads(first, points[0].threads)
            cache_source = data_texts or generate_corpus(settings.cache_texts, seed=7)
            cache = measure_cache_effect(first, cache_source[: settings.cache_texts], settings.request_texts)
        else:
            cache = {"status": "skipped", "reason": "turned off (--no-cache)"}
        if cache["status"] == "skipped":
            notes.append(f"cache point skipped: {cache['reason']}")

    return {
        "schema": SCHEMA,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {**machine_info(), "matmul_peak_gflops": {str(t): v for t, v in peaks.items()}},
        "model": {
            "name": spec.name,
            "dim": spec.dim,
            "hidden_size": spec.hidden_size,
            "num_layers": spec.num_layers,
            "max_tokens": spec.max_tokens,
            "flops": flop_models[spec.name].to_dict(),
        },
        "plan": {
            "batches": list(plan.batches),
            "seqs": list(plan.seq_lengths),
            "backends": list(plan.backends),
            "threads": list(plan.thread_counts),
            "data": str(plan.data) if plan.data is not None else None,
            "data_texts": len(data_texts),
            "synthetic": [s.label for s in plan.synthetic],
            "device": plan.device,
            **settings.model_dump(),
        },
        "points": results,
        "cache": cache,
        "notes": notes,
    }
