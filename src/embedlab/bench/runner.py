"""Measure one benchmark point: a model on a backend with some threads, at one batch size, on given texts.

A *run* embeds all the point's texts once, through the engine's three stages (tokenise, forward +
pool, finish), in batches of exactly ``batch`` texts in the order given (a client sending ``batch``
texts per request), or, with ``batch=None``, through :meth:`Embedder.embed_with_report` and the
engine's own token-budget batching. The runner records per run: wall seconds, texts, real and padded
tokens, the wall time of every batch (latency as a client of that batch size sees it), seconds in
each stage, the peak resident memory while it ran, and the FLOPs computed (from the shape of every
forward pass the backend really ran, recorded by :func:`recording_shapes`).

:func:`summarize_point` turns the runs of a point (warm-up runs are never passed to it) into medians
with min and max, latency percentiles over every batch of every run, and time shares.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from embedlab.backends.base import EncodedBatch
from embedlab.engine.embedder import Embedder
from embedlab.errors import ConfigError

FlopsOfBatch = Callable[[int, int], int]


@dataclass(frozen=True)
class PointConfig:
    """What one point measures.

    Attributes:
        model: the model's name (or a synthetic shape's label).
        backend: backend name, e.g. ``torch`` or ``onnx``.
        batch: texts per forward batch; None: the engine's token-budget batching (data points only).
        seq: exact tokens per text (special tokens included) of generated texts; None for data.
        data: the data file the texts came from; None for generated texts.
        threads: intra-op CPU threads.
    """

    model: str
    backend: str
    batch: int | None
    seq: int | None
    data: str | None
    threads: int

    @property
    def key(self) -> str:
        """A stable identity used to match points across two result files."""
        source = f"seq={self.seq}" if self.seq is not None else f"data={Path(self.data or '').name}"
        return f"{self.model}|{self.backend}|batch={self.batch or 'auto'}|{source}|threads={self.threads}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


@dataclass
class RunSample:
    """One timed run over all of a point's texts.

    Attributes:
        seconds: wall time of the run.
        texts: texts embedded.
        real_tokens: tokens embedded (special tokens included, after truncation).
        padded_tokens: tokens the model computed on (padding included).
        batch_seconds: wall time of each batch, tokenising to finished vectors.
        stage_seconds: seconds in ``tokenize``, ``model`` and ``pool``; the rest of ``seconds`` is
            padding, copying and Python between stages.
        peak_rss_bytes: the most resident memory of the process seen during the run.
        flops: FLOPs of the forward passes (matrix products), or 0 when unknown.
        start_rss_bytes: resident memory when the run started (the peak minus this is what the run
            added on top of what the process already held).
    """

    seconds: float
    texts: int
    real_tokens: int
    padded_tokens: int
    batch_seconds: list[float]
    stage_seconds: dict[str, float]
    peak_rss_bytes: int
    flops: int = 0
    start_rss_bytes: int = 0


def _current_rss() -> int:
    """Resident memory of this process in bytes (Linux /proc; elsewhere the peak so far)."""
    try:
        with open("/proc/self/statm", "rb") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


class RssSampler:
    """Samples this process's resident memory every ``interval`` seconds on a daemon thread.

    ``with RssSampler() as rss: ...`` then ``rss.peak`` is the most seen, in bytes.
    """

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.start = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="embedlab-rss", daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _current_rss())
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self.start = self.peak = _current_rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _current_rss())


def set_backend_threads(embedder: Embedder, threads: int) -> None:
    """Make a PyTorch backend use ``threads`` (a process-wide setting); other runtimes keep their own."""
    if embedder.backend.name.startswith("torch"):
        import torch

        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


class _ShapeRecorder:
    """Stands in for a backend during a run and records the (batch, seq_len) of every forward pass."""

    def __init__(self, backend: Any):
        self._backend = backend
        self.shapes: list[tuple[int, int]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def forward(self, batch: EncodedBatch) -> Any:
        self.shapes.append(batch.shape)
        return self._backend.forward(batch)


@contextlib.contextmanager
def recording_shapes(embedder: Embedder) -> Iterator[list[tuple[int, int]]]:
    """Within the block, every forward pass of ``embedder`` appends its (batch, seq_len) to the list yielded."""
    recorder = _ShapeRecorder(embedder.backend)
    embedder.backend = recorder
    try:
        yield recorder.shapes
    finally:
        embedder.backend = recorder._backend


def measure_run(
    embedder: Embedder, texts: Sequence[str], batch: int | None, flops: FlopsOfBatch | None = None
) -> RunSample:
    """Embed ``texts`` once and time it (see the module docstring for ``batch``).

    Args:
        embedder: the loaded model; its threads must already be set (:func:`set_backend_threads`).
        texts: the point's texts.
        batch: texts per batch, or None for the engine's token-budget batching.
        flops: FLOPs of a (batch, seq_len) forward pass, to count the work done.

    Raises:
        ConfigError: ``batch`` below 1, or no texts.
    """
    if batch is not None and batch < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch}")
    if not texts:
        raise ConfigError("a benchmark point needs at least one text")
    if batch is None:
        return _measure_engine_run(embedder, texts, flops)
    stages = {"tokenize": 0.0, "model": 0.0, "pool": 0.0}
    batch_seconds: list[float] = []
    real = padded = 0
    truncate = embedder.resolve(long_input="truncate")
    with RssSampler() as rss, recording_shapes(embedder) as shapes:
        started = time.perf_counter()
        for start in range(0, len(texts), batch):
            chunk = texts[start : start + batch]
            t0 = time.perf_counter()
            tokenized = embedder.prepare(chunk, truncate)
            t1 = time.perf_counter()
            out = embedder.encode(tokenized.segments)
            t2 = time.perf_counter()
            embedder.finish(out.pooled, tokenized.segments, len(chunk), truncate)
            t3 = time.perf_counter()
            stages["tokenize"] += t1 - t0
            stages["model"] += out.model_seconds
            stages["pool"] += out.pool_seconds + (t3 - t2)
            batch_seconds.append(t3 - t0)
            real += sum(tokenized.tokens)
            padded += out.padded_tokens
        seconds = time.perf_counter() - started
    work = sum(flops(b, n) for b, n in shapes) if flops is not None else 0
    return RunSample(seconds, len(texts), real, padded, batch_seconds, stages, rss.peak, work, rss.start)


def _measure_engine_run(embedder: Embedder, texts: Sequence[str], flops: FlopsOfBatch | None) -> RunSample:
    """One run through :meth:`Embedder.embed_with_report`; a batch's latency runs from the previous batch's end
    (the first batch's includes tokenising every text up front)."""
    marks: list[float] = []
    with RssSampler() as rss, recording_shapes(embedder) as shapes:
        started = time.perf_counter()
        report = embedder.embed_with_report(
            list(texts), long_input="truncate", progress=lambda _: marks.append(time.perf_counter())
        )
        seconds = time.perf_counter() - started
    edges = [started, *marks]
    batch_seconds = [b - a for a, b in itertools.pairwise(edges)]
    work = sum(flops(b, n) for b, n in shapes) if flops is not None else 0
    stages = {k: float(report.timings.get(k, 0.0)) for k in ("tokenize", "model", "pool")}
    return RunSample(
        seconds, len(texts), report.total_tokens, report.padded_tokens, batch_seconds, stages, rss.peak, work, rss.start
    )


def _spread(values: Sequence[float]) -> dict[str, float]:
    return {"median": float(statistics.median(values)), "min": float(min(values)), "max": float(max(values))}


@dataclass
class PointResult:
    """The summary of one point, as saved in the JSON result (see :meth:`to_dict` for every field)."""

    config: PointConfig
    samples: list[RunSample]
    warmup: int
    matmul_peak_gflops: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Every field of the point: config, throughput (median/min/max over repeats), latency
        percentiles per batch (ms), peak RSS of the process and its growth during a run (MB), time
        shares, repeats, FLOPs and share of matmul peak."""
        return summarize_point(self)


def summarize_point(result: PointResult) -> dict[str, Any]:
    """Summarise a point's timed runs; see :meth:`PointResult.to_dict`.

    Raises:
        ConfigError: no timed runs.
    """
    samples = result.samples
    if not samples:
        raise ConfigError(f"point {result.config.key} has no timed runs")
    first = samples[0]
    texts_s = [s.texts / s.seconds for s in samples]
    real_s = [s.real_tokens / s.seconds for s in samples]
    padded_s = [s.padded_tokens / s.seconds for s in samples]
    latencies = np.array([b for s in samples for b in s.batch_seconds], dtype=np.float64) * 1000.0
    total = sum(s.seconds for s in samples)
    staged = {k: sum(s.stage_seconds.get(k, 0.0) for s in samples) for k in ("tokenize", "model", "pool")}
    shares = {k: v / total for k, v in staged.items()}
    shares["other"] = max(0.0, 1.0 - sum(shares.values()))
    out: dict[str, Any] = {
        "key": result.config.key,
        "config": result.config.to_dict(),
        "texts_per_run": first.texts,
        "real_tokens_per_run": first.real_tokens,
        "padded_tokens_per_run": first.padded_tokens,
        "padded_over_real": first.padded_tokens / first.real_tokens if first.real_tokens else None,
        "texts_per_s": _spread(texts_s),
        "real_tokens_per_s": _spread(real_s),
        "padded_tokens_per_s": _spread(padded_s),
        "latency_ms": {
            "p50": float(np.percentile(latencies, 50)),
            "p95": float(np.percentile(latencies, 95)),
            "p99": float(np.percentile(latencies, 99)),
            "batches": int(latencies.size),
        },
        "peak_rss_mb": max(s.peak_rss_bytes for s in samples) / 2**20,
        "rss_growth_mb": max(s.peak_rss_bytes - s.start_rss_bytes for s in samples) / 2**20,
        "time_share": shares,
        "repeats": {"n": len(samples), "warmup": result.warmup, "seconds": [s.seconds for s in samples]},
        "flops_per_token": None,
        "achieved_gflops": None,
        "matmul_peak_gflops": result.matmul_peak_gflops,
        "share_of_matmul_peak": None,
    }
    if first.flops:
        gflops = statistics.median(s.flops / s.seconds for s in samples) / 1e9
        out["achieved_gflops"] = gflops
        out["flops_per_token"] = first.flops / first.padded_tokens
        if result.matmul_peak_gflops:
            out["share_of_matmul_peak"] = gflops / result.matmul_peak_gflops
    out.update(result.extra)
    return out
