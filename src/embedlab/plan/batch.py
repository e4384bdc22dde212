"""Batch size: measured throughput and peak memory per batch size, and the choice within a memory budget.

Measurements run in a fresh process (:mod:`embedlab.plan.probe`), so the peak resident memory is that
of a process doing only this work, like ``embedlab embed`` or ``serve`` would.

The choice (documented in docs/inspect-plan.md):

- a batch size *fits* when its measured worst-case peak resident memory, plus a safety margin
  (default 10 %), is within the budget: ``peak × (1 + margin) ≤ budget``; the margin covers run-to-run
  noise and what the job holds besides the batch (a block of output vectors);
- with ``--target-latency``, a batch size must also finish its worst-case batch within the target;
- *largest* is the biggest batch size that fits; *fastest* is the one with the highest measured tokens/s
  among those that fit; the recommendation is the fastest.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from embedlab.errors import BackendError, ConfigError
from embedlab.inspect.report import fmt_bytes
from embedlab.json_child import run_json_job
from embedlab.settings import EngineSettings

DEFAULT_BATCH_SIZES: tuple[int, ...] = (1, 4, 16, 64, 256)
DEFAULT_MARGIN = 0.10
_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}


def parse_size(text: str | int, what: str = "memory size") -> int:
    """Bytes from ``2GiB``, ``512MiB``, ``1.5GB``, ``800M`` or a plain number of bytes.

    Decimal units (kB, MB, GB; K, M, G) are powers of 1000, binary ones (KiB, MiB, GiB) of 1024.
    ``what`` names the size in error messages (``memory size``, ``storage budget``).

    Raises:
        ConfigError: not a positive size.
    """
    if isinstance(text, int):
        value, unit = float(text), ""
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
        if match is None or match.group(2).lower() not in _UNITS:
            raise ConfigError(f"cannot read {what} {text!r}; write e.g. 2GiB, 512MiB, 1.5GB or a number of bytes")
        value, unit = float(match.group(1)), match.group(2).lower()
    size = int(value * _UNITS[unit])
    if size <= 0:
        raise ConfigError(f"{what} must be positive, got {text!r}")
    return size


def available_memory() -> int | None:
    """Bytes a new process could use now: ``MemAvailable``, capped by a cgroup limit minus its usage."""
    available: int | None = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        available = None
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            room = int(limit) - used
            available = room if available is None else min(available, room)
    except (OSError, ValueError):
        pass
    return available


def parse_batch_sizes(text: str) -> list[int]:
    """``"1,4,16"`` → ``[1, 4, 16]`` (sorted, unique).

    Raises:
        ConfigError: anything but positive whole numbers.
    """
    try:
        sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError as exc:
        raise ConfigError(f"batch sizes must be comma-separated whole numbers, got {text!r}") from exc
    if not sizes or sizes[0] < 1:
        raise ConfigError(f"batch sizes must be at least 1, got {text!r}")
    return sizes


@dataclass(frozen=True)
class BatchMeasurement:
    """One batch size, measured.

    Attributes:
        batch_size: b.
        texts, tokens, batches, seconds: the throughput run on the sample.
        texts_per_second, tokens_per_second: its throughput (real tokens, padding not counted).
        worst_case_seq_len: L of the worst-case batch (the plan's max tokens).
        worst_case_latency_s: seconds for one (b, L) batch.
        peak_rss_bytes: the process's peak resident memory during that batch.
        rss_before_bytes: its resident memory just before (model loaded).
        memory_method: how the peak was measured.
    """

    batch_size: int
    texts: int
    tokens: int
    batches: int
    seconds: float
    texts_per_second: float
    tokens_per_second: float
    worst_case_seq_len: int
    worst_case_latency_s: float
    peak_rss_bytes: int | None
    rss_before_bytes: int | None
    memory_method: str = ""

    @property
    def batch_bytes(self) -> int | None:
        """Resident memory the worst-case batch added at its peak (``peak - before``)."""
        if self.peak_rss_bytes is None or self.rss_before_bytes is None:
            return None
        return self.peak_rss_bytes - self.rss_before_bytes

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields plus ``batch_bytes``."""
        return {**asdict(self), "batch_bytes": self.batch_bytes}


def measure_batch_sizes(
    settings: EngineSettings,
    texts: list[str],
    batch_sizes: list[int],
    max_tokens: int,
    long_input: str = "truncate",
    timeout: float | None = None,
) -> list[BatchMeasurement]:
    """Measure each batch size in one fresh process (see :mod:`embedlab.plan.probe`).

    Raises:
        BackendError: the measuring process failed (its message is passed on).
    """
    job = {
        "settings": settings.model_dump(),
        "texts": texts,
        "batch_sizes": batch_sizes,
        "max_tokens": max_tokens,
        "long_input": long_input,
    }
    done = run_json_job("embedlab.plan.probe", job, "the batch-size measuring process", timeout)
    result = done.result
    if done.returncode != 0 or "results" not in result:
        why = result.get("error") or done.stderr_tail
        raise BackendError(f"the batch-size measuring process failed (exit {done.returncode}): {why}")
    return [BatchMeasurement(**row) for row in result["results"]]


@dataclass(frozen=True)
class BatchChoice:
    """The batch sizes that fit, and the recommendation.

    Attributes:
        budget_bytes: the memory budget applied; ``budget_source`` says where it came from.
        margin: the safety margin (fraction of the peak).
        target_latency_s: the latency target, if any.
        fitting: batch sizes that fit (memory and latency).
        largest: the largest that fits; fastest: the fastest that fits (None when none fits).
        recommended: the batch size to use (the fastest that fits).
        reasons: why, in words.
    """

    budget_bytes: int | None
    budget_source: str
    margin: float
    target_latency_s: float | None
    fitting: list[int]
    largest: int | None
    fastest: int | None
    recommended: int | None
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


def fits(measurement: BatchMeasurement, budget: int | None, margin: float, target_latency_s: float | None) -> bool:
    """Whether a measured batch size fits the budget (with margin) and the latency target."""
    if budget is not None:
        if measurement.peak_rss_bytes is None:
            return False
        if measurement.peak_rss_bytes * (1 + margin) > budget:
            return False
    return target_latency_s is None or measurement.worst_case_latency_s <= target_latency_s


def choose_batch(
    measurements: list[BatchMeasurement],
    budget: int | None,
    budget_source: str = "--memory-budget",
    margin: float = DEFAULT_MARGIN,
    target_latency_s: float | None = None,
) -> BatchChoice:
    """Pick the largest and the fastest batch size within ``budget`` (bytes) and the latency target.

    When no batch size fits the memory budget, ``recommended`` is None and ``reasons`` says why. When
    some fit the memory but none the latency target, the smallest that fits the memory is recommended
    (it has the lowest latency) and ``reasons`` says the target cannot be met.

    Raises:
        ConfigError: a negative margin or an empty list.
    """
    if margin < 0:
        raise ConfigError(f"memory margin must be ≥ 0, got {margin}")
    if not measurements:
        raise ConfigError("no batch sizes were measured")
    in_memory = [m for m in measurements if fits(m, budget, margin, None)]
    reasons: list[str] = []
    if not in_memory:
        smallest = min(measurements, key=lambda m: m.batch_size)
        reasons.append(
            f"no batch size fits: even b={smallest.batch_size} peaks at {fmt_bytes(smallest.peak_rss_bytes)} "
            f"(+{100 * margin:g} % margin) against a budget of {fmt_bytes(budget)}"
        )
        return BatchChoice(budget, budget_source, margin, target_latency_s, [], None, None, None, reasons)
    fitting = [m for m in in_memory if fits(m, budget, margin, target_latency_s)]
    if budget is not None:
        largest_in_memory = max(in_memory, key=lambda m: m.batch_size)
        reasons.append(
            f"b={largest_in_memory.batch_size} is the largest batch whose worst-case peak "
            f"({fmt_bytes(largest_in_memory.peak_rss_bytes)}) plus {100 * margin:g} % stays within {fmt_bytes(budget)}"
        )
    if not fitting:
        quickest = min(in_memory, key=lambda m: m.worst_case_latency_s)
        reasons.append(
            f"no batch size meets the latency target of {1000 * (target_latency_s or 0):g} ms; "
            f"b={quickest.batch_size} has the lowest worst-case latency ({1000 * quickest.worst_case_latency_s:.1f} ms)"
        )
        return BatchChoice(
            budget,
            budget_source,
            margin,
            target_latency_s,
            [],
            max(m.batch_size for m in in_memory),
            quickest.batch_size,
            quickest.batch_size,
            reasons,
        )
    largest = max(fitting, key=lambda m: m.batch_size)
    fastest = max(fitting, key=lambda m: m.tokens_per_second)
    if target_latency_s is not None:
        reasons.append(
            f"batch sizes whose worst-case batch takes at most {1000 * target_latency_s:g} ms: "
            + ", ".join(str(m.batch_size) for m in fitting)
        )
    reasons.append(f"b={fastest.batch_size} measured fastest among those: {fastest.tokens_per_second:,.0f} tokens/s")
    return BatchChoice(
        budget_bytes=budget,
        budget_source=budget_source,
        margin=margin,
        target_latency_s=target_latency_s,
        fitting=[m.batch_size for m in fitting],
        largest=largest.batch_size,
        fastest=fastest.batch_size,
        recommended=fastest.batch_size,
        reasons=reasons,
    )
