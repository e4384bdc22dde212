"""``compare_models``: candidate models side by side on the user's data, each measured in its own process.

Order of work:

1. texts: ``--texts`` (any file ``embed`` reads), else the texts of ``--data`` (an STS file's sentences; a
   retrieval directory's documents and queries); the speed sample and the single queries are drawn from
   them (a retrieval set's own queries serve as queries);
2. every model is resolved and its facts read (parameters, shape, disk) before anything is measured, so a
   bad name fails in a second, not after minutes of measuring the others (unless ``keep_going``);
3. each (model, backend) is measured in a fresh process (:mod:`embedlab.compare.probe`), one at a time;
4. the options (model, backend, dimension, precision) get their bytes per vector and, with data, their
   score; the Pareto front over score, tokens/s and bytes per vector marks the ones worth choosing.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import embedlab.errors as errors_module
from embedlab.compare.facts import ModelFacts, read_facts
from embedlab.compare.pareto import Option, pareto_front
from embedlab.engine.vector_precision import PRECISIONS, Precision, bytes_per_vector, check_precision
from embedlab.errors import BackendError, ConfigError, EmbedlabError
from embedlab.eval.task import QualityPoint
from embedlab.json_child import run_json_job
from embedlab.settings import EngineSettings

#: texts in the speed sample, timed calls of it, and single-text calls for the latency
DEFAULT_SAMPLE = 1000
DEFAULT_ROUNDS = 3
DEFAULT_QUERIES = 50


@dataclass
class CompareOptions:
    """What ``compare`` measures (each is a CLI flag).

    Attributes:
        models: model names or paths, in the order to report them.
        backends: backends each model is measured with (``auto`` = what calibration chose on this machine).
        data: an STS file or a retrieval (BEIR) directory whose headline score is the quality column; None: none.
        data_limit: score only the first N pairs / queries of ``data``.
        texts: the user's own texts (lengths, truncation, speed); None: the texts of ``data``.
        text_field: the field holding the text in ``texts`` (jsonl/csv/parquet).
        precisions: output precisions whose bytes per vector (and score, with data) are reported.
        dimensions: output sizes to score besides each model's full dimension and declared Matryoshka sizes.
        sample: texts in the speed sample (drawn at random, seeded); rounds: timed passes over it (median).
        queries: single-text calls timed for the latency.
        rescore: retrieval data: rescore the top K candidates of int8 / binary searches with the float query.
        keep_going: measure the other models when one cannot be resolved, loaded or measured.
        device, threads: as everywhere; seed: of the samples.
        timeout_s: seconds one model's measuring process may take.
    """

    models: list[str]
    backends: list[str] = field(default_factory=lambda: ["auto"])
    data: Path | None = None
    data_limit: int | None = None
    texts: Path | None = None
    text_field: str | None = None
    precisions: list[str] = field(default_factory=lambda: list(PRECISIONS))
    dimensions: list[int] = field(default_factory=list)
    sample: int = DEFAULT_SAMPLE
    rounds: int = DEFAULT_ROUNDS
    queries: int = DEFAULT_QUERIES
    rescore: int = 0
    keep_going: bool = False
    device: str = "cpu"
    threads: int | None = None
    seed: int = 0
    timeout_s: float | None = None


@dataclass
class ModelResult:
    """One (model, backend) measured.

    Attributes:
        facts: what the model is (parameters, shape, disk).
        backend_asked: the backend requested; ``measured["backend"]`` is the one that ran (``auto`` resolves).
        measured: the probe's output (see :mod:`embedlab.compare.probe`).
        quality: score per (dimensions, precision); empty without data.
        options: every (dimensions, precision) with its bytes per vector and score, and ``pareto``.
    """

    facts: ModelFacts
    backend_asked: str
    measured: dict[str, Any]
    quality: list[QualityPoint]
    options: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pareto(self) -> bool:
        """Whether one of this model's options is on the Pareto front."""
        return any(option["pareto"] for option in self.options)

    def score(self, dimensions: int | None = None, precision: str = "float32") -> float | None:
        """The measured score at ``dimensions`` (default: full) and ``precision``, or None."""
        dims = self.facts.dim if dimensions is None else dimensions
        return next((q.score for q in self.quality if q.dimensions == dims and q.precision == precision), None)


@dataclass
class CompareReport:
    """Everything ``compare`` measured.

    Attributes:
        results: one per (model, backend) measured, in the order asked.
        failures: (model, backend or None, message) of those that could not be measured (``keep_going``).
        metric: the quality metric's name (``cosine_spearman`` / ``ndcg_at_10``), or None without data.
        data, texts: where the data and texts came from; texts_count: texts in the length statistics.
        data_limit: the pairs / queries of ``data`` scored (None: all).
        precisions: the precisions reported.
        machine: CPU model, flags, cores.
        notes: caveats, in words.
    """

    results: list[ModelResult]
    failures: list[tuple[str, str | None, str]]
    metric: str | None
    data: str | None
    data_limit: int | None
    texts: str
    texts_count: int
    precisions: list[str]
    machine: dict[str, Any]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Texts:
    all: list[str]
    speed: list[str]
    queries: list[str]
    source: str


def _gather_texts(options: CompareOptions) -> _Texts:
    from embedlab.eval.task import load_eval_task
    from embedlab.io.readers import read_texts

    queries: list[str] = []
    if options.texts is not None:
        texts = read_texts(options.texts, options.text_field).texts
        source = str(options.texts)
    elif options.data is not None:
        task = load_eval_task(options.data, options.data_limit)
        if task.kind == "sts":
            texts = [*task.data.sentences1, *task.data.sentences2]
        else:
            texts = [*task.data.corpus_texts, *task.data.query_texts]
            queries = list(task.data.query_texts)
        source = f"{options.data} ({'sentences' if task.kind == 'sts' else 'documents and queries'})"
    else:
        raise ConfigError("give --data (an STS file or a retrieval directory) or --texts (your own texts), or both")
    rng = random.Random(options.seed)
    speed = texts if len(texts) <= options.sample else rng.sample(texts, options.sample)
    if not queries:
        queries = texts
    query_sample = queries if len(queries) <= options.queries else rng.sample(queries, options.queries)
    return _Texts(texts, speed, query_sample, source)


def _check_options(options: CompareOptions) -> list[Precision]:
    if not options.models:
        raise ConfigError("--models needs at least one model")
    if len(set(options.models)) != len(options.models):
        raise ConfigError(f"--models names a model twice: {', '.join(options.models)}")
    if options.sample < 1 or options.rounds < 1 or options.queries < 1:
        raise ConfigError("--sample, --rounds and --queries must be at least 1")
    if options.rescore < 0:
        raise ConfigError(f"--rescore must be 0 (none) or a number of candidates, got {options.rescore}")
    if any(d < 1 for d in options.dimensions):
        raise ConfigError(f"--dimensions must be positive, got {options.dimensions}")
    precisions = [check_precision(p) for p in options.precisions]
    if "float32" not in precisions:
        precisions.insert(0, "float32")
    from embedlab.backends import BACKENDS

    for backend in options.backends:
        if backend != "auto" and backend not in BACKENDS:
            raise ConfigError(f"unknown backend {backend!r}; choose one of auto, {', '.join(BACKENDS)}")
    return precisions


def _error_class(name: str) -> type[EmbedlabError]:
    found = getattr(errors_module, name, None)
    return found if isinstance(found, type) and issubclass(found, EmbedlabError) else BackendError


def measure_in_process(job: dict[str, Any], timeout_s: float | None = None) -> dict[str, Any]:
    """Run one job in a fresh ``python -m embedlab.compare.probe`` process and return its result.

    Raises:
        EmbedlabError: the error the process raised, as the same type (a model it cannot run: ModelLoadError).
        BackendError: the process failed otherwise (crash, timeout, no output).
    """
    name = job["settings"]["model"]
    done = run_json_job("embedlab.compare.probe", job, f"measuring {name}", timeout_s)
    if "error" in done.result:
        raise _error_class(str(done.result.get("type")))(done.result["error"])
    if done.returncode != 0 or "tokens_per_s" not in done.result:
        raise BackendError(f"measuring {name} failed (exit {done.returncode}): {done.stderr_tail}")
    return done.result


def score_dimensions(facts: ModelFacts, asked: Sequence[int]) -> list[int]:
    """Output sizes to score: the full dimension, the declared Matryoshka sizes, and those asked that fit."""
    return sorted({facts.dim, *facts.matryoshka_dims, *(d for d in asked if d < facts.dim)}, reverse=True)


def _options_of(result: ModelResult, precisions: Sequence[Precision], dims: Sequence[int]) -> list[dict[str, Any]]:
    tps = float(result.measured["tokens_per_s"])
    out = []
    for d in dims:
        for precision in precisions:
            out.append(
                {
                    "dimensions": d,
                    "precision": precision,
                    "bytes_per_vector": bytes_per_vector(d, precision),
                    "score": result.score(d, precision),
                    "tokens_per_s": tps,
                }
            )
    return out


def mark_pareto(results: Sequence[ModelResult], with_quality: bool) -> None:
    """Set ``pareto`` on every option of every result: the front over all models' options together.

    Without quality, only full-dimension float32 options compete (storage tricks cost nothing visible
    when no score is measured, so ranking them would mislead); the others are marked False.
    """
    candidates: list[dict[str, Any]] = []
    for result in results:
        for option in result.options:
            option["pareto"] = False
            full_float = option["precision"] == "float32" and option["dimensions"] == result.facts.dim
            if (option["score"] is not None) if with_quality else full_float:
                candidates.append(option)
    front = pareto_front(
        [Option(c["score"] if with_quality else None, c["tokens_per_s"], c["bytes_per_vector"]) for c in candidates]
    )
    for option, on_front in zip(candidates, front, strict=True):
        option["pareto"] = on_front


def compare_models(options: CompareOptions, log: Callable[[str], None] = lambda _line: None) -> CompareReport:
    """Measure every model of ``options`` (see the module docstring) and return the report.

    Raises:
        ConfigError: bad options. DataFileError: unreadable data or texts.
        ModelNotFoundError, ModelLoadError, BackendError...: a model could not be resolved, run or measured
            (only without ``keep_going``; with it, the failure is listed in the report).
    """
    from embedlab.bench.machine import machine_info
    from embedlab.engine.loader import load_spec

    precisions = _check_options(options)
    texts = _gather_texts(options)
    failures: list[tuple[str, str | None, str]] = []
    facts: list[ModelFacts] = []
    for name in options.models:
        log(f"reading {name}")
        try:
            facts.append(read_facts(load_spec(name)))
        except EmbedlabError as exc:
            if not options.keep_going:
                raise
            failures.append((name, None, str(exc)))

    results: list[ModelResult] = []
    for fact in facts:
        dims = score_dimensions(fact, options.dimensions)
        for backend in options.backends:
            log(f"measuring {fact.name} ({backend}) in its own process")
            settings = EngineSettings(model=fact.name, backend=backend, device=options.device, threads=options.threads)
            job = {
                "settings": settings.model_dump(mode="json"),
                "texts": texts.all,
                "speed_texts": texts.speed,
                "query_texts": texts.queries,
                "rounds": options.rounds,
                "data": str(options.data) if options.data is not None else None,
                "data_limit": options.data_limit,
                "dimensions": dims,
                "precisions": list(precisions),
                "rescore": options.rescore,
            }
            try:
                measured = measure_in_process(job, options.timeout_s)
            except EmbedlabError as exc:
                if not options.keep_going:
                    raise
                failures.append((fact.name, backend, str(exc)))
                continue
            quality = [QualityPoint.from_dict(q) for q in measured.pop("quality")]
            result = ModelResult(fact, backend, measured, quality)
            result.options = _options_of(result, precisions, dims)
            results.append(result)

    with_quality = options.data is not None
    mark_pareto(results, with_quality)
    metric = next((q.metric for r in results for q in r.quality), None)
    notes = []
    if not with_quality:
        notes.append(
            "no --data: no quality column; the Pareto front is over tokens/s and float32 bytes per vector only"
        )
    info = machine_info()
    return CompareReport(
        results=results,
        failures=failures,
        metric=metric,
        data=str(options.data) if options.data is not None else None,
        data_limit=options.data_limit,
        texts=texts.source,
        texts_count=len(texts.all),
        precisions=list(precisions),
        machine={k: info[k] for k in ("cpu", "cpu_flags", "cores_available")},
        notes=notes,
    )
