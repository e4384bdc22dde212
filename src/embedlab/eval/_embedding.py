"""What the evaluators share: embedding a list of texts with counters, and the settings in effect."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from embedlab.arrays import FloatArray
from embedlab.engine.embedder import Embedder
from embedlab.engine.options import EmbedOptions, ResolvedOptions
from embedlab.engine.vector_precision import ranges_of
from embedlab.errors import ConfigError
from embedlab.models.pooling import l2_normalize

#: ``progress(stage, done, total)``: ``stage`` names what is being embedded (``sentences``,
#: ``queries``, ``corpus``), ``done`` / ``total`` count texts.
ProgressFn = Callable[[str, int, int], None]

#: Keyword options an evaluator passes on to :meth:`Embedder.embed_with_report`.
EMBED_OPTIONS: tuple[str, ...] = ("max_tokens", "dimensions", "long_input", "normalize", "prompt", "prompt_name")


def check_embed_options(options: dict[str, Any], forbidden: Sequence[str] = ()) -> dict[str, Any]:
    """The options that are set (not None), after checking every name is a known embedding option.

    Raises:
        ConfigError: an unknown option, or one the evaluator sets itself (``forbidden``).
    """
    for name in options:
        if name not in EMBED_OPTIONS or name in forbidden:
            allowed = [o for o in EMBED_OPTIONS if o not in forbidden]
            raise ConfigError(f"unknown embedding option {name!r}; use one of {', '.join(allowed)}")
    return {name: value for name, value in options.items() if value is not None}


def resolve_embed_options(embedder: Embedder, options: dict[str, Any]) -> ResolvedOptions:
    """Resolve an evaluation's options once, before any text is embedded, so a bad one fails first.

    Raises:
        ConfigError: a value out of the model's range or a prompt it lacks.
    """
    return embedder.resolve(EmbedOptions.from_kwargs(**options))


@dataclass
class EmbedCounters:
    """Running totals over the embedding calls of one evaluation.

    Attributes:
        texts: texts embedded.
        tokens: tokens embedded (special tokens included, padding not).
        truncated: texts that lost tokens to the limit.
        seconds: wall time spent in embedding calls, seconds.
    """

    texts: int = 0
    tokens: int = 0
    truncated: int = 0
    seconds: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        """Tokens embedded per second of embedding time."""
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


def embed_texts(
    embedder: Embedder,
    texts: Sequence[str],
    counters: EmbedCounters,
    *,
    stage: str,
    options: ResolvedOptions,
    progress: ProgressFn | None = None,
    done_before: int = 0,
    total: int | None = None,
) -> FloatArray:
    """Embed ``texts`` and return unit-length rows (n, dim) float32, adding to ``counters``.

    Rows are L2-normalised here whatever the model ships, since every score is a cosine.
    ``progress`` is called as ``progress(stage, done_before + done, total)``.
    """
    grand_total = len(texts) if total is None else total

    def report(done: int) -> None:
        if progress is not None:
            progress(stage, done_before + done, grand_total)

    result = embedder.embed_resolved(list(texts), options, progress=report if progress else None)
    counters.texts += len(texts)
    counters.tokens += result.total_tokens
    counters.truncated += result.n_truncated
    counters.seconds += result.seconds
    return l2_normalize(result.vectors)


def resolve_int8_ranges(
    embedder: Embedder, int8_ranges: Any, options: ResolvedOptions, counters: EmbedCounters
) -> FloatArray | None:
    """The (2, dim) int8 / uint8 ranges to quantise with, when they are known before the evaluated texts are.

    Args:
        int8_ranges: ``"unit"`` (None: [-1, 1]), ``"corpus"`` (None here: the evaluator measures them on
            its texts), calibration texts (embedded with ``options``, unit rows like every evaluated vector,
            and added to ``counters``), or the ranges themselves.

    Raises:
        ConfigError: given ranges not of shape (2, dimensions).
    """
    if isinstance(int8_ranges, np.ndarray):
        if int8_ranges.shape != (2, options.dimensions):
            raise ConfigError(f"int8 ranges must have shape (2, {options.dimensions}), got {int8_ranges.shape}")
        return np.asarray(int8_ranges, dtype=np.float32)
    if isinstance(int8_ranges, str):
        return None
    return ranges_of(embed_texts(embedder, list(int8_ranges), counters, stage="calibration", options=options))


def settings_in_effect(embedder: Embedder, resolved: ResolvedOptions) -> dict[str, Any]:
    """The settings a run used: backend, device, threads, max tokens, dimensions, long-input policy."""
    settings = embedder.settings
    return {
        "backend": getattr(embedder.backend, "name", settings.backend),
        "device": getattr(embedder.backend, "device", settings.device),
        "threads": settings.threads,
        "max_tokens": resolved.max_tokens,
        "dimensions": resolved.dimensions,
        "long_input": resolved.long_input,
        "max_batch_tokens": settings.max_batch_tokens,
    }
