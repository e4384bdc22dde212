"""Backend and precision: measured speed of each available backend on the sample, and its quality.

Every backend embeds the same sample with the same settings (max tokens, long-input policy, batch
size). Quality is measured two ways:

- *agreement*: the cosine between each sample vector and the exact ``torch`` float32 vector of the
  same text (mean and minimum over the sample), always;
- with ``--eval``: the task score (STS Spearman or retrieval nDCG@10) through :mod:`embedlab.eval`.

The recommendation is the fastest backend whose quality loss is within the stated tolerance: with
``--eval``, a score at least ``reference × (1 − max_quality_loss)``; without it, a mean agreement of at
least ``min_agreement`` (default 0.999) and a minimum agreement of at least ``min_agreement - 0.01``.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from embedlab.errors import BackendError, ModelLoadError
from embedlab.eval.task import EvalTask
from embedlab.models.pooling import l2_normalize
from embedlab.settings import EngineSettings

REFERENCE_BACKEND = "torch"
DEFAULT_MIN_AGREEMENT = 0.999
DEFAULT_MAX_QUALITY_LOSS = 0.01


@dataclass
class BackendMeasurement:
    """One backend on the sample.

    Attributes:
        name: the backend's registry name.
        available: whether it loaded; ``reason`` says why not.
        load_seconds: time to load it (an ONNX export on first use included).
        seconds, texts_per_second, tokens_per_second: embedding the sample (after a warm-up call).
        agreement_mean, agreement_min: cosine to the torch float32 vectors of the same texts.
        eval_metric, eval_score: the task score with ``--eval``; ``eval_loss``: relative loss vs torch.
        acceptable: quality within the tolerance (see the module docstring).
    """

    name: str
    available: bool
    reason: str = ""
    load_seconds: float = 0.0
    seconds: float = 0.0
    texts_per_second: float = 0.0
    tokens_per_second: float = 0.0
    agreement_mean: float | None = None
    agreement_min: float | None = None
    eval_metric: str | None = None
    eval_score: float | None = None
    eval_loss: float | None = None
    acceptable: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


def _settings_for(base: EngineSettings, backend: str, batch_size: int | None, max_tokens: int) -> EngineSettings:
    if batch_size is None:
        return base.model_copy(update={"backend": backend})
    return base.model_copy(
        update={"backend": backend, "max_batch_size": batch_size, "max_batch_tokens": batch_size * max_tokens}
    )


def measure_backends(
    base: EngineSettings,
    texts: list[str],
    backends: list[str],
    *,
    batch_size: int | None,
    max_tokens: int,
    long_input: str,
    eval_task: EvalTask | None = None,
    log: Callable[[str], None] | None = None,
) -> list[BackendMeasurement]:
    """Load each backend in turn, embed ``texts``, compare with torch float32, optionally score ``eval_task``.

    ``torch`` is measured first (it is the reference) even when ``backends`` does not name it.
    ``batch_size`` None keeps the batching of ``base`` (``max_batch_size`` / ``max_batch_tokens``).
    """
    from embedlab.engine.loader import load

    say = log or (lambda _message: None)
    order = [REFERENCE_BACKEND] + [b for b in backends if b != REFERENCE_BACKEND]
    reference: np.ndarray | None = None
    reference_score: float | None = None
    results: list[BackendMeasurement] = []
    options: dict[str, Any] = {"max_tokens": max_tokens, "long_input": long_input}
    for name in order:
        say(f"backend {name}: loading")
        started = time.perf_counter()
        try:
            embedder = load(settings=_settings_for(base, name, batch_size, max_tokens))
        except (BackendError, ModelLoadError) as exc:
            results.append(BackendMeasurement(name=name, available=False, reason=str(exc).splitlines()[0][:200]))
            continue
        load_seconds = time.perf_counter() - started
        say(f"backend {name}: embedding the sample")
        embedder.embed(texts[: min(len(texts), 16)], **options)  # warm-up
        result = embedder.embed_with_report(texts, **options)
        vectors = l2_normalize(result.vectors)
        if reference is None:
            reference = vectors
        agreement = np.einsum("ij,ij->i", vectors.astype(np.float64), reference.astype(np.float64))
        measurement = BackendMeasurement(
            name=name,
            available=True,
            load_seconds=load_seconds,
            seconds=result.seconds,
            texts_per_second=len(texts) / result.seconds if result.seconds > 0 else 0.0,
            tokens_per_second=result.tokens_per_second,
            agreement_mean=float(agreement.mean()),
            agreement_min=float(agreement.min()),
        )
        if eval_task is not None:
            say(f"backend {name}: evaluating on {eval_task.path}")
            report = eval_task.run(embedder, f"backend={name}", **options)
            measurement.eval_metric = report.metric
            measurement.eval_score = float(report.score)
            if reference_score is None:
                reference_score = float(report.score)
            measurement.eval_loss = relative_loss(reference_score, float(report.score))
        results.append(measurement)
        del embedder
        gc.collect()
    return results


def relative_loss(reference: float, score: float) -> float:
    """``(reference - score) / |reference|``: the fraction of the reference score lost (negative: a gain)."""
    if reference == 0:
        return 0.0 if score == reference else float("inf") if score < reference else float("-inf")
    return (reference - score) / abs(reference)


@dataclass(frozen=True)
class BackendChoice:
    """The recommended backend and why."""

    recommended: str
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


def choose_backend(
    measurements: list[BackendMeasurement],
    max_quality_loss: float = DEFAULT_MAX_QUALITY_LOSS,
    min_agreement: float = DEFAULT_MIN_AGREEMENT,
) -> BackendChoice:
    """The fastest available backend within the quality tolerance (marks ``acceptable`` on each).

    Raises:
        BackendError: not even the reference backend could run.
    """
    usable = [m for m in measurements if m.available]
    if not usable:
        raise BackendError("no backend could run: " + "; ".join(f"{m.name}: {m.reason}" for m in measurements))
    for m in usable:
        if m.eval_loss is not None:
            m.acceptable = m.eval_loss <= max_quality_loss
        else:
            m.acceptable = (m.agreement_mean or 0) >= min_agreement and (m.agreement_min or 0) >= min_agreement - 0.01
    candidates = [m for m in usable if m.acceptable] or usable[:1]
    best = max(candidates, key=lambda m: m.tokens_per_second)
    reference = usable[0]
    reasons = [
        f"{best.name} is the fastest backend within the quality tolerance: {best.tokens_per_second:,.0f} tokens/s "
        f"({best.tokens_per_second / reference.tokens_per_second:.2f}× {reference.name})"
        if reference.tokens_per_second
        else f"{best.name} is the fastest backend within the quality tolerance"
    ]
    if best.eval_loss is not None:
        reasons.append(
            f"its {best.eval_metric} is {best.eval_score:.4f}, a loss of {100 * best.eval_loss:.2f} % against "
            f"{reference.name} (tolerance {100 * max_quality_loss:g} %)"
        )
    else:
        reasons.append(
            f"its vectors agree with torch float32 at mean cosine {best.agreement_mean:.5f} "
            f"(tolerance {min_agreement}); pass --eval to judge by task quality"
        )
    for m in usable:
        if not m.acceptable and m.tokens_per_second > best.tokens_per_second:
            why = (
                f"loses {100 * m.eval_loss:.2f} % {m.eval_metric}"
                if m.eval_loss is not None
                else f"agrees only at mean cosine {m.agreement_mean:.5f} / min {m.agreement_min:.5f}"
            )
            reasons.append(f"{m.name} is faster ({m.tokens_per_second:,.0f} tokens/s) but {why}")
    return BackendChoice(recommended=best.name, reasons=reasons)
