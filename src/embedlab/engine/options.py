"""Per-call embedding options: given (:class:`EmbedOptions`) and resolved once (:class:`ResolvedOptions`).

:func:`resolve_options` is the one place where a call's options meet their defaults (the engine
settings, then the model's own) and are checked against the model's limits. Every caller — the
library's ``embed``, the server's batcher, eval, the CLI — resolves once and hands the result down;
no later stage checks again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import numpy as np

from embedlab.arrays import FloatArray
from embedlab.engine.vector_precision import Precision, check_precision
from embedlab.errors import ConfigError
from embedlab.models.spec import ModelSpec
from embedlab.settings import LONG_INPUT_POLICIES, EngineSettings, LongInputPolicy

InputType = Literal["query", "passage", "document"]
#: the model prompts an ``input_type`` selects, in order of preference
INPUT_TYPE_PROMPTS: dict[str, tuple[str, ...]] = {
    "query": ("query",),
    "passage": ("passage", "document"),
    "document": ("document", "passage"),
}


@dataclass(frozen=True)
class EmbedOptions:
    """Options of one call as given; None means the engine setting, then the model's default.

    Attributes:
        prompt: text prepended to every input.
        prompt_name: one of the model's named prompts instead.
        input_type: ``query``, ``passage`` or ``document``: the model's prompt for that kind of text
            (ignored by models without prompts); not together with ``prompt`` / ``prompt_name``.
        long_input: ``truncate``, ``error`` or ``chunk`` for texts over the token limit.
        max_tokens: token limit per text below the model's own (special tokens included).
        dimensions: keep the first N values (Matryoshka), re-normalised when normalising.
        normalize: L2-normalise the vectors.
        precision: output precision, one of :data:`~embedlab.engine.vector_precision.PRECISIONS`
            (default ``float32``); applied after ``dimensions`` and ``normalize``.
        ranges: ``int8`` / ``uint8`` only: per-dimension (2, dimensions) min and max (default [-1, 1],
            the range of a normalised vector; see :mod:`embedlab.engine.vector_precision`).
    """

    prompt: str | None = None
    prompt_name: str | None = None
    input_type: InputType | None = None
    long_input: LongInputPolicy | None = None
    max_tokens: int | None = None
    dimensions: int | None = None
    normalize: bool | None = None
    precision: str | None = None
    ranges: FloatArray | None = field(default=None, compare=False)

    @classmethod
    def from_kwargs(cls, **options: Any) -> EmbedOptions:
        """Options from keyword arguments.

        Raises:
            ConfigError: a name that is not an embedding option (the message lists the known ones).
        """
        known = [f.name for f in fields(cls)]
        for name in options:
            if name not in known:
                raise ConfigError(f"unknown embedding option {name!r}; use one of {', '.join(known)}")
        return cls(**options)


@dataclass(frozen=True)
class ResolvedOptions:
    """A call's options with every default applied and every limit checked.

    Attributes:
        prompt: the text prepended to each input ("" for none).
        pool_skip: leading tokens of each text's first window left out of pooling (the prompt's, for
            models whose pooling excludes it: sentence-transformers' ``include_prompt=False``), else 0.
        max_tokens: tokens per sequence, special tokens included (1 to the model's limit).
        long_input: what happens to a text over ``max_tokens``.
        chunk_overlap: tokens shared by consecutive chunk windows (``chunk`` only).
        dimensions: output values kept per vector (1 to the model's dim).
        normalize: whether output vectors are L2-normalised.
        precision: the output precision (``float32``: the vectors as they are).
        ranges: int8 / uint8 ranges (2, dimensions), or None for [-1, 1].
    """

    prompt: str
    pool_skip: int
    max_tokens: int
    long_input: LongInputPolicy
    chunk_overlap: int
    dimensions: int
    normalize: bool
    precision: Precision = "float32"
    ranges: FloatArray | None = field(default=None, compare=False)


def resolve_prompt(spec: ModelSpec, options: EmbedOptions, default_name: str | None) -> str:
    """The prompt text a call asks for: explicit, named, by input type, the settings' or model's default, or "".

    Raises:
        ConfigError: two ways of choosing a prompt at once, or a name / input type the model has no prompt for.
    """
    if options.prompt is not None and options.prompt_name is not None:
        raise ConfigError("give either prompt or prompt_name, not both")
    if options.input_type is not None:
        if options.prompt is not None or options.prompt_name is not None:
            raise ConfigError("give either prompt_name or input_type, not both")
        if not spec.prompts:
            return ""  # a model without prompts embeds queries and passages alike
        for candidate in INPUT_TYPE_PROMPTS[options.input_type]:
            if candidate in spec.prompts:
                return spec.prompts[candidate]
        raise ConfigError(
            f"model {spec.name} has no prompt for input_type {options.input_type!r} "
            f"(its prompts: {', '.join(sorted(spec.prompts))})"
        )
    if options.prompt is not None:
        return options.prompt
    name: str | None = options.prompt_name
    if name is None:
        name = default_name if default_name is not None else spec.default_prompt_name
    if name is None:
        return ""
    if name not in spec.prompts:
        known = ", ".join(sorted(spec.prompts)) or "none"
        raise ConfigError(f"unknown prompt_name: model {spec.name} has no prompt named {name!r} (its prompts: {known})")
    return spec.prompts[name]


def resolve_options(
    spec: ModelSpec,
    settings: EngineSettings,
    options: EmbedOptions,
    prompt_tokens: Callable[[str], int],
) -> ResolvedOptions:
    """Apply defaults (``options`` > ``settings`` > the model's own) and check every limit, once.

    Args:
        spec: the model.
        settings: the engine settings (their ``max_tokens``, ``dimensions``, ``long_input``,
            ``prompt_name``, ``chunk_overlap`` are the call defaults).
        options: what the call gave.
        prompt_tokens: tokens a prompt adds after the leading special token (for ``pool_skip``).

    Raises:
        ConfigError: a limit out of the model's range, an unknown policy or precision, int8 ranges of the
            wrong shape or int8 / uint8 of unnormalised vectors without ranges, or a prompt the model lacks.
    """
    prompt = resolve_prompt(spec, options, settings.prompt_name)
    limit = options.max_tokens if options.max_tokens is not None else settings.max_tokens
    max_tokens = spec.max_tokens if limit is None else int(limit)
    if not 1 <= max_tokens <= spec.max_tokens:
        raise ConfigError(f"max_tokens must be between 1 and the model's limit {spec.max_tokens}, got {max_tokens}")
    policy = options.long_input or settings.long_input
    if policy not in LONG_INPUT_POLICIES:
        raise ConfigError(f"unknown long-input policy {policy!r}; choose one of {', '.join(LONG_INPUT_POLICIES)}")
    dims = options.dimensions if options.dimensions is not None else settings.dimensions
    dimensions = spec.dim if dims is None else int(dims)
    if not 1 <= dimensions <= spec.dim:
        raise ConfigError(f"dimensions must be between 1 and the model's {spec.dim}, got {dims}")
    normalize = spec.normalize if options.normalize is None else bool(options.normalize)
    pool_skip = prompt_tokens(prompt) if prompt and not spec.include_prompt else 0
    precision = check_precision("float32" if options.precision is None else options.precision)
    ranges = None
    if precision in ("int8", "uint8"):
        if options.ranges is not None:
            ranges = np.asarray(options.ranges, dtype=np.float32)
            if ranges.shape != (2, dimensions):
                raise ConfigError(f"{precision} ranges must have shape (2, {dimensions}), got {ranges.shape}")
        elif not normalize:
            raise ConfigError(
                f"{precision} of vectors that are not normalised needs ranges (the default [-1, 1] fits "
                "normalised vectors only); pass ranges, e.g. from Embedder.calibrate_ranges(texts)"
            )
    return ResolvedOptions(
        prompt, pool_skip, max_tokens, policy, settings.chunk_overlap, dimensions, normalize, precision, ranges
    )
