"""Token lengths of the user's texts: distribution, truncation at a limit, a recommended max tokens.

Lengths count special tokens (``[CLS]``, ``[SEP]``...), as sentence-transformers and the engine do.

The recommended max tokens (documented in docs/inspect-plan.md):

1. take q, the ``coverage`` quantile of the lengths (the smallest length such that at least that
   share of texts is no longer; ``coverage=1.0``, the default, makes q the longest text);
2. round q up to a multiple of 8 (tokenizer-friendly and SIMD-friendly shapes);
3. cap it at the model's limit (sentence-transformers' ``max_seq_length``).

So by default nothing the model could see whole is cut, while the padded worst case (and with it the
memory a batch needs) shrinks to what the data really holds.

Chunking: if more than ``chunk_threshold`` (default 1 %) of the texts are longer than the model's
limit, the advice is ``long_input=chunk`` at the model's full limit (each long text is embedded as
overlapping windows whose vectors are averaged) instead of truncating them.
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from embedlab.arrays import IntArray
from embedlab.errors import ConfigError, EmptyInputError

PERCENTILES: tuple[int, ...] = (50, 90, 95, 99)


@dataclass(frozen=True)
class LengthStats:
    """The token-length distribution of a set of texts.

    Attributes:
        n_texts: texts counted.
        total_tokens: their summed full lengths.
        mean, min, max: of the lengths.
        percentiles: ``{50: p50, 90: p90, 95: p95, 99: p99}`` (nearest-rank: a length that occurs).
        limit: the model's token limit the shares below refer to.
        texts_over_limit: texts longer than ``limit``; ``share_texts_over_limit`` their fraction.
        tokens_over_limit: tokens beyond ``limit`` (what truncation would drop);
            ``share_tokens_over_limit`` their fraction of ``total_tokens``.
    """

    n_texts: int
    total_tokens: int
    mean: float
    min: int
    max: int
    percentiles: dict[int, int]
    limit: int
    texts_over_limit: int
    share_texts_over_limit: float
    tokens_over_limit: int
    share_tokens_over_limit: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (percentile keys as ``p50``...)."""
        out = asdict(self)
        out["percentiles"] = {f"p{k}": v for k, v in self.percentiles.items()}
        return out


def truncation_at(lengths: IntArray, max_tokens: int) -> tuple[int, int]:
    """(texts longer than ``max_tokens``, tokens beyond it summed over texts)."""
    over = lengths[lengths > max_tokens]
    return int(over.size), int((over - max_tokens).sum())


def quantile_length(lengths: IntArray, share: float) -> int:
    """The smallest length L such that at least ``share`` of the texts have length ≤ L (nearest rank)."""
    ordered = np.sort(lengths)
    rank = max(1, math.ceil(share * ordered.size))
    return int(ordered[rank - 1])


def length_stats(lengths: IntArray, limit: int) -> LengthStats:
    """Summarise token lengths against the model's ``limit``.

    Raises:
        EmptyInputError: no lengths.
    """
    values = np.asarray(lengths, dtype=np.int64)
    if values.size == 0:
        raise EmptyInputError("no texts to measure")
    over_texts, over_tokens = truncation_at(values, limit)
    total = int(values.sum())
    return LengthStats(
        n_texts=int(values.size),
        total_tokens=total,
        mean=float(values.mean()),
        min=int(values.min()),
        max=int(values.max()),
        percentiles={p: quantile_length(values, p / 100) for p in PERCENTILES},
        limit=int(limit),
        texts_over_limit=over_texts,
        share_texts_over_limit=over_texts / values.size,
        tokens_over_limit=over_tokens,
        share_tokens_over_limit=over_tokens / total if total else 0.0,
    )


@dataclass(frozen=True)
class MaxTokensAdvice:
    """What max tokens and long-input policy to use for this data.

    Attributes:
        max_tokens: the recommended limit (special tokens included).
        long_input: ``truncate`` or ``chunk``.
        coverage: the quantile the rule aimed to keep whole.
        quantile_length: the length at that quantile.
        texts_truncated: texts that lose tokens at ``max_tokens`` (0 under ``chunk``);
            ``share_texts_truncated`` their fraction.
        tokens_lost: tokens cut off at ``max_tokens`` (0 under ``chunk``); ``share_tokens_lost``.
        segments: sequences the model will run (texts, plus extra windows under ``chunk``).
        tokens_embedded: tokens the model will compute on (special tokens of every window included);
            from lengths alone this is an estimate under ``chunk`` (the tokenizer may end the last
            window differently), which :func:`embedlab.plan.planner.make_plan` replaces with the
            engine's exact count.
        reasons: the rule applied, in words.
    """

    max_tokens: int
    long_input: str
    coverage: float
    quantile_length: int
    texts_truncated: int
    share_texts_truncated: float
    tokens_lost: int
    share_tokens_lost: float
    segments: int
    tokens_embedded: int
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


def chunk_windows(lengths: IntArray, max_tokens: int, n_special: int, overlap: int) -> IntArray:
    """Windows per text under the chunk policy (1 for texts within ``max_tokens``), as the engine cuts them."""
    window = max_tokens - n_special
    content = np.maximum(lengths - n_special, 0)
    extra = np.ceil(np.maximum(content - window, 0) / max(window - overlap, 1)).astype(np.int64)
    return 1 + extra


def recommend_max_tokens(
    lengths: IntArray,
    limit: int,
    *,
    n_special: int = 2,
    coverage: float = 1.0,
    chunk_threshold: float = 0.01,
    chunk_overlap: int = 32,
) -> MaxTokensAdvice:
    """Apply the rule of the module docstring.

    Args:
        lengths: full token length of each text (special tokens included).
        limit: the model's token limit.
        n_special: special tokens the tokenizer adds per sequence.
        coverage: share of texts to keep whole, in (0, 1].
        chunk_threshold: above this share of texts over the model limit, chunk instead of truncating.
        chunk_overlap: overlap of chunk windows (the engine's ``chunk_overlap`` setting).

    Raises:
        ConfigError: coverage or threshold outside their ranges.
        EmptyInputError: no lengths.
    """
    values = np.asarray(lengths, dtype=np.int64)
    if values.size == 0:
        raise EmptyInputError("no texts to measure")
    if not 0 < coverage <= 1:
        raise ConfigError(f"coverage must be in (0, 1], got {coverage}")
    if not 0 <= chunk_threshold <= 1:
        raise ConfigError(f"chunk threshold must be in [0, 1], got {chunk_threshold}")
    q = quantile_length(values, coverage)
    rounded = 8 * math.ceil(q / 8)
    chosen = max(min(limit, rounded), n_special + 1)
    over_limit, _ = truncation_at(values, limit)
    reasons = [
        f"{100 * coverage:g} % of texts are at most {q} tokens long; rounded up to a multiple of 8: {rounded}"
        + (f", capped at the model limit {limit}" if rounded > limit else "")
    ]
    if over_limit / values.size > chunk_threshold:
        policy = "chunk"
        chosen = limit
        overlap = min(chunk_overlap, max(limit - n_special - 1, 0))
        windows = chunk_windows(values, limit, n_special, overlap)
        segments = int(windows.sum())
        embedded = int(np.where(values > limit, values + (windows - 1) * (n_special + overlap), values).sum())
        truncated, lost = 0, 0
        reasons.append(
            f"{over_limit} texts ({100 * over_limit / values.size:.1f} %) are longer than the model limit {limit}, "
            f"more than the {100 * chunk_threshold:g} % threshold: chunk them into overlapping windows of {limit} "
            "tokens instead of truncating"
        )
    else:
        policy = "truncate"
        truncated, lost = truncation_at(values, chosen)
        segments = int(values.size)
        embedded = int(np.minimum(values, chosen).sum())
        if over_limit:
            reasons.append(
                f"{over_limit} texts ({100 * over_limit / values.size:.2f} %) exceed the model limit {limit}, "
                f"within the {100 * chunk_threshold:g} % threshold: truncating them is fine"
            )
        else:
            reasons.append(f"no text exceeds the model limit {limit}: no chunking needed")
    total = int(values.sum())
    return MaxTokensAdvice(
        max_tokens=int(chosen),
        long_input=policy,
        coverage=coverage,
        quantile_length=q,
        texts_truncated=truncated,
        share_texts_truncated=truncated / values.size,
        tokens_lost=lost,
        share_tokens_lost=lost / total if total else 0.0,
        segments=segments,
        tokens_embedded=embedded,
        reasons=reasons,
    )


def histogram(lengths: IntArray, bins: int = 40) -> tuple[list[int], list[float]]:
    """(counts, bin edges) of the lengths, for the JSON report."""
    counts, edges = np.histogram(np.asarray(lengths), bins=min(bins, max(1, int(np.ptp(lengths)) + 1)))
    return [int(c) for c in counts], [float(e) for e in edges]


def histogram_png(lengths: IntArray, limit: int, recommended: int, title: str = "token lengths") -> bytes:
    """A PNG histogram of the lengths with the model limit and the recommended max tokens marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = np.asarray(lengths)
    fig, ax = plt.subplots(figsize=(8, 3.6), dpi=100)
    try:
        ax.hist(values, bins=min(60, max(1, int(np.ptp(values)) + 1)), color="#4c72b0")
        ax.axvline(limit, color="#c44e52", linestyle="--", label=f"model limit {limit}")
        if recommended != limit:
            ax.axvline(recommended, color="#55a868", linestyle=":", label=f"recommended {recommended}")
        for p, style in ((50, "-"), (99, "-.")):
            ax.axvline(quantile_length(values, p / 100), color="#8172b2", linestyle=style, linewidth=1, label=f"p{p}")
        ax.set_xlabel("tokens per text (special tokens included)")
        ax.set_ylabel("texts")
        ax.set_title(title)
        ax.legend(loc="upper right", fontsize=8)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
    finally:
        plt.close(fig)
    return buffer.getvalue()
