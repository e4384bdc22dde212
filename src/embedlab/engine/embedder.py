"""The Embedder: texts in, vectors out, through tokenizer → token-budget batches → backend → pooling.

Vectors come back in the caller's order whatever the batching did. Pooling, chunk averaging,
Matryoshka truncation and normalisation happen here, identically for every backend.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from embedlab.backends.base import Backend
from embedlab.engine.batching import pad_segments, plan_batches
from embedlab.engine.tokenize import (
    LongInputPolicy,
    Segment,
    TokenizedTexts,
    count_tokens,
    find_pad_id,
    tokenize_texts,
    validate_texts,
)
from embedlab.errors import ConfigError, InputTooLongError
from embedlab.models.pooling import l2_normalize, pool
from embedlab.models.spec import ModelSpec
from embedlab.settings import EngineSettings

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class BatchOutput:
    """One forward batch: pooled vectors (batch, hidden), padded tokens computed, seconds in model / pooling."""

    pooled: FloatArray
    padded_tokens: int
    model_seconds: float
    pool_seconds: float


@dataclass
class EmbeddingResult:
    """Vectors plus what it took to make them.

    Attributes:
        vectors: (n_texts, dim) float32, in the caller's order.
        tokens: per text, tokens embedded (special tokens included).
        input_tokens: per text, its full token length before any truncation.
        truncated: per text, whether tokens were cut off.
        padded_tokens: tokens the model computed on, padding included.
        seconds: wall time of the whole call.
        timings: seconds spent tokenising (``tokenize``), in the backend (``model``) and pooling /
            combining / normalising (``pool``). Tokenising overlaps the model for inputs longer than
            one tokenize block, so the three may add up to more than ``seconds``.
    """

    vectors: FloatArray
    tokens: list[int]
    input_tokens: list[int]
    truncated: list[bool]
    padded_tokens: int
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def total_tokens(self) -> int:
        """Tokens embedded, summed over texts."""
        return int(sum(self.tokens))

    @property
    def n_truncated(self) -> int:
        """How many texts lost tokens to truncation."""
        return int(sum(self.truncated))

    @property
    def tokens_per_second(self) -> float:
        """Real (non-padding) tokens per second of wall time."""
        return self.total_tokens / self.seconds if self.seconds > 0 else 0.0


class Embedder:
    """Embeds texts with one model on one backend.

    Build it with :func:`embedlab.load`. Thread-safe for concurrent ``embed`` calls only if the backend
    is; the server serialises calls through one worker.
    """

    def __init__(self, spec: ModelSpec, backend: Backend, tokenizer: Any, settings: EngineSettings):
        self.spec = spec
        self.backend = backend
        self.tokenizer = tokenizer
        self.settings = settings
        self._pad_id = find_pad_id(spec, tokenizer)

    @property
    def dim(self) -> int:
        """Output dimension of the model's vectors."""
        return self.spec.dim

    def resolve_prompt(self, prompt: str | None = None, prompt_name: str | None = None) -> str:
        """The prompt text to prepend: explicit ``prompt``, a named one, or the model's default ("" if none)."""
        if prompt is not None and prompt_name is not None:
            raise ConfigError("give either prompt or prompt_name, not both")
        if prompt is not None:
            return prompt
        name = prompt_name if prompt_name is not None else self.spec.default_prompt_name
        if name is None:
            return ""
        if name not in self.spec.prompts:
            known = ", ".join(sorted(self.spec.prompts)) or "none"
            raise ConfigError(f"model {self.spec.name} has no prompt named {name!r} (its prompts: {known})")
        return self.spec.prompts[name]

    def _check_limits(self, max_tokens: int | None, dimensions: int | None) -> int:
        limit = self.spec.max_tokens if max_tokens is None else int(max_tokens)
        if not 1 <= limit <= self.spec.max_tokens:
            raise ConfigError(f"max_tokens must be between 1 and the model's limit {self.spec.max_tokens}, got {limit}")
        if dimensions is not None and not 1 <= int(dimensions) <= self.spec.dim:
            raise ConfigError(f"dimensions must be between 1 and the model's {self.spec.dim}, got {dimensions}")
        return limit

    def embed(self, texts: Sequence[str], **options: Any) -> FloatArray:
        """Embed ``texts`` and return (len(texts), dim) float32. Options as :meth:`embed_with_report`."""
        return self.embed_with_report(texts, **options).vectors

    def embed_with_report(
        self,
        texts: Sequence[str],
        *,
        prompt: str | None = None,
        prompt_name: str | None = None,
        long_input: LongInputPolicy | None = None,
        max_tokens: int | None = None,
        dimensions: int | None = None,
        normalize: bool | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> EmbeddingResult:
        """Embed ``texts`` and report tokens, truncation and timings.

        Args:
            texts: non-empty list of non-blank strings.
            prompt: text prepended to every input (e.g. ``"query: "``).
            prompt_name: name of one of the model's own prompts instead.
            long_input: ``truncate`` (default setting), ``error`` or ``chunk``.
            max_tokens: a limit below the model's own (special tokens included).
            dimensions: keep the first ``dimensions`` values (Matryoshka), re-normalised if normalising.
            normalize: L2-normalise; default: what the model's authors shipped.
            progress: called with the number of texts finished after each batch.

        Raises:
            InputError: bad texts (see :mod:`embedlab.errors`).
            ConfigError: bad options.
        """
        started = time.perf_counter()
        self._check_limits(None, dimensions)
        items = validate_texts(texts)  # up front, so an error names the caller's index
        block = self.settings.tokenize_block
        starts = list(range(0, len(items), block))
        tokenize_seconds = model_seconds = pool_seconds = 0.0
        padded = done_texts = 0
        vectors: list[FloatArray] = []
        tokens: list[int] = []
        input_tokens: list[int] = []
        truncated: list[bool] = []

        def tokenize_block(offset: int) -> tuple[TokenizedTexts, float]:
            t0 = time.perf_counter()
            try:
                out = self.prepare(
                    items[offset : offset + block],
                    prompt=prompt,
                    prompt_name=prompt_name,
                    long_input=long_input,
                    max_tokens=max_tokens,
                )
            except InputTooLongError as exc:
                raise InputTooLongError(exc.index + offset, exc.n_tokens, exc.limit) from None
            return out, time.perf_counter() - t0

        # pre / core overlap: block k+1 is tokenised on a helper thread while block k runs in the model
        # (the Rust tokenizer and the runtimes release the GIL).
        executor = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedlab-tokenize") if len(starts) > 1 else None
        )
        try:
            pending = executor.submit(tokenize_block, 0) if executor else None
            for k, offset in enumerate(starts):
                tokenized, seconds = pending.result() if pending else tokenize_block(offset)
                tokenize_seconds += seconds
                if executor and k + 1 < len(starts):
                    pending = executor.submit(tokenize_block, starts[k + 1])
                segments = tokenized.segments
                pooled = np.empty((len(segments), self.spec.hidden_size), dtype=np.float32)
                lengths = [len(s.ids) for s in segments]
                plan = plan_batches(
                    lengths, self.settings.max_batch_tokens, self.settings.max_batch_size, self.settings.bucket_ratio
                )
                for batch_indices in plan:
                    out = self.encode_segments([segments[i] for i in batch_indices])
                    pooled[batch_indices] = out.pooled
                    model_seconds += out.model_seconds
                    pool_seconds += out.pool_seconds
                    padded += out.padded_tokens
                    if progress is not None:
                        done_texts += len({segments[i].text_index for i in batch_indices})
                        progress(done_texts)
                t_post = time.perf_counter()
                vectors.append(
                    self.finish(pooled, segments, len(tokenized.tokens), dimensions=dimensions, normalize=normalize)
                )
                pool_seconds += time.perf_counter() - t_post
                tokens += tokenized.tokens
                input_tokens += tokenized.input_tokens
                truncated += tokenized.truncated
        finally:
            if executor:
                executor.shutdown(wait=True, cancel_futures=True)
        return EmbeddingResult(
            vectors=vectors[0] if len(vectors) == 1 else np.concatenate(vectors),
            tokens=tokens,
            input_tokens=input_tokens,
            truncated=truncated,
            padded_tokens=padded,
            seconds=time.perf_counter() - started,
            timings={"tokenize": tokenize_seconds, "model": model_seconds, "pool": pool_seconds},
        )

    # -- the three stages, public so the server's dynamic batcher can interleave requests --------------

    def prepare(
        self,
        texts: Sequence[str],
        *,
        prompt: str | None = None,
        prompt_name: str | None = None,
        long_input: LongInputPolicy | None = None,
        max_tokens: int | None = None,
    ) -> TokenizedTexts:
        """Stage 1 (pre): validate ``texts``, add the prompt, tokenise under the long-input policy."""
        items = validate_texts(texts)
        limit = self._check_limits(max_tokens if max_tokens is not None else self.settings.max_tokens, None)
        if prompt is None and prompt_name is None:
            prompt_name = self.settings.prompt_name
        prefix = self.resolve_prompt(prompt, prompt_name)
        if prefix:
            items = [prefix + text for text in items]
        policy = long_input or self.settings.long_input
        prompt_tokens = 0
        if prefix and not self.spec.include_prompt:
            # as sentence-transformers: [CLS] + the prompt's tokens are masked out of pooling
            prompt_tokens = len(self.tokenizer.encode(prefix, add_special_tokens=True).ids) - 1
        return tokenize_texts(
            self.tokenizer, items, limit, policy, self.settings.chunk_overlap, prompt_tokens=prompt_tokens
        )

    def encode_segments(self, segments: Sequence[Segment]) -> BatchOutput:
        """Stage 2 (core): pad ``segments`` into ONE batch, run the backend, pool.

        Returns pooled, un-normalised vectors (len(segments), hidden) in the order given.
        """
        batch = pad_segments(segments, self._pad_id)
        t0 = time.perf_counter()
        hidden = self.backend.forward(batch)
        t1 = time.perf_counter()
        mask = batch.attention_mask
        if any(s.pool_skip for s in segments):
            mask = mask.copy()
            for row, segment in enumerate(segments):
                mask[row, : segment.pool_skip] = 0
        pooled = pool(hidden, mask, self.spec.pooling)
        return BatchOutput(pooled, int(batch.input_ids.size), t1 - t0, time.perf_counter() - t1)

    def finish(
        self,
        pooled: FloatArray,
        segments: Sequence[Segment],
        n_texts: int,
        *,
        dimensions: int | None = None,
        normalize: bool | None = None,
    ) -> FloatArray:
        """Stage 3 (post): combine chunk windows per text, truncate to ``dimensions``, normalise.

        Args:
            pooled: (len(segments), hidden) pooled vectors, row i for ``segments[i]``.
            segments: the segments, whose ``text_index`` runs over 0..n_texts-1.
            n_texts: number of texts.
        Returns:
            (n_texts, dimensions or dim) float32.
        """
        if dimensions is None:
            dimensions = self.settings.dimensions
        self._check_limits(None, dimensions)
        vectors = self._combine(pooled, segments, n_texts)
        if dimensions is not None:
            vectors = np.ascontiguousarray(vectors[:, : int(dimensions)])
        if self.spec.normalize if normalize is None else normalize:
            vectors = l2_normalize(vectors)
        return vectors

    @staticmethod
    def _combine(pooled: FloatArray, segments: Sequence[Segment], n_texts: int) -> FloatArray:
        """Per text, the token-weighted mean of its segments' pooled vectors: (n_texts, hidden)."""
        if len(segments) == n_texts and all(s.text_index == i for i, s in enumerate(segments)):
            return pooled
        out = np.zeros((n_texts, pooled.shape[1]), dtype=np.float64)
        weights = np.zeros(n_texts, dtype=np.float64)
        for row, segment in enumerate(segments):
            w = max(segment.weight, 1)
            out[segment.text_index] += w * pooled[row]
            weights[segment.text_index] += w
        return (out / weights[:, None]).astype(np.float32)

    def count_tokens(self, texts: Sequence[str]) -> npt.NDArray[np.int64]:
        """Full token length of each text with this model's tokenizer (special tokens included), shape (n,)."""
        return count_tokens(self.tokenizer, validate_texts(texts))
