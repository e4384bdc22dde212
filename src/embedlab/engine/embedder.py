"""The Embedder: one model on one backend, as four stages that each do one job.

::

    resolve      options given → defaults applied, limits checked, once (:mod:`embedlab.engine.options`)
    prepare      texts → segments: prompt added, tokenised under the long-input policy (windows when chunking)
    encode       segments → ONE padded batch → backend forward → pooled rows (len(segments), hidden)
    combine      pooled rows → per text, the token-weighted mean of its windows (:mod:`.postprocess`)
    postprocess  combined (n, hidden) → Matryoshka truncation, normalisation → (n, dimensions)

:meth:`Embedder.embed_with_report` runs them for the library's batch path (token-budget batches,
tokenising the next block while the model runs this one); the server's dynamic batcher calls the same
stages itself to interleave requests. Vectors come back in the caller's order whatever the batching did.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from embedlab.arrays import FloatArray, IntArray
from embedlab.backends.base import Backend
from embedlab.engine.batch_plan import pad_segments, plan_batches
from embedlab.engine.calibration import Calibration
from embedlab.engine.options import EmbedOptions, InputType, ResolvedOptions, resolve_options
from embedlab.engine.postprocess import combine_windows, postprocess
from embedlab.engine.tokenize import (
    Segment,
    TokenizedTexts,
    count_tokens,
    find_pad_id,
    tokenize_texts,
    validate_texts,
)
from embedlab.errors import InputTooLongError
from embedlab.models.pooling import pool
from embedlab.models.spec import ModelSpec
from embedlab.settings import EngineSettings, LongInputPolicy

_NO_OPTIONS = EmbedOptions()


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

    Build it with :func:`embedlab.load`. The stages keep no per-call state, so concurrent calls are safe
    when the backend's ``forward`` is (ONNX Runtime and torch are; the server's workers rely on it).

    Raises:
        ConfigError: the settings' defaults (``max_tokens``, ``dimensions``, ``prompt_name``...) do not
            fit the model; they are resolved once here.
    """

    def __init__(
        self,
        spec: ModelSpec,
        backend: Backend,
        tokenizer: Any,
        settings: EngineSettings,
        calibration: Calibration | None = None,
    ):
        self.spec = spec
        self.backend = backend
        self.tokenizer = tokenizer
        self.settings = settings
        #: for ``backend="auto"``, the measurements the backend was chosen by (None for a named backend)
        self.calibration = calibration
        self._pad_id = find_pad_id(spec, tokenizer)
        #: batches run side by side by :meth:`embed` (the backend was built for this many callers)
        self.workers = settings.worker_layout()[0]
        self._batch_pool: ThreadPoolExecutor | None = None
        #: the settings' defaults, resolved against the model once (what a call with no options uses)
        self.defaults = resolve_options(spec, settings, _NO_OPTIONS, self._prompt_tokens)

    @property
    def dim(self) -> int:
        """Output dimension of the model's vectors."""
        return self.spec.dim

    # -- stage 0: resolve ----------------------------------------------------------------------------

    def _prompt_tokens(self, prompt: str) -> int:
        """Tokens ``prompt`` adds after the leading special token ([CLS] + prompt are masked out of pooling)."""
        return len(self.tokenizer.encode(prompt, add_special_tokens=True).ids) - 1

    def resolve(self, options: EmbedOptions | None = None, **given: Any) -> ResolvedOptions:
        """Options of one call, defaults applied and checked (see :func:`~embedlab.engine.options.resolve_options`).

        Args:
            options: the call's options, or None for keyword arguments ``given`` (None values ignored).

        Raises:
            ConfigError: an unknown option name, a value out of the model's range, or an unknown prompt.
        """
        if options is None:
            options = EmbedOptions.from_kwargs(**{k: v for k, v in given.items() if v is not None})
        if options == _NO_OPTIONS:
            return self.defaults
        return resolve_options(self.spec, self.settings, options, self._prompt_tokens)

    # -- the library's batch path ---------------------------------------------------------------------

    def embed(self, texts: Sequence[str], **options: Any) -> FloatArray:
        """Embed ``texts`` and return (len(texts), dim) float32. Options as :meth:`embed_with_report`."""
        return self.embed_with_report(texts, **options).vectors

    def embed_with_report(
        self,
        texts: Sequence[str],
        *,
        prompt: str | None = None,
        prompt_name: str | None = None,
        input_type: InputType | None = None,
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
            input_type: ``query`` / ``passage`` / ``document``: the model's prompt for that kind of text.
            long_input: ``truncate`` (default setting), ``error`` or ``chunk``.
            max_tokens: a limit below the model's own (special tokens included).
            dimensions: keep the first ``dimensions`` values (Matryoshka), re-normalised if normalising.
            normalize: L2-normalise; default: what the model's authors shipped.
            progress: called with the number of texts finished after each batch.

        Raises:
            InputError: bad texts (see :mod:`embedlab.errors`).
            ConfigError: bad options.
        """
        options = self.resolve(
            EmbedOptions(prompt, prompt_name, input_type, long_input, max_tokens, dimensions, normalize)
        )
        return self.embed_resolved(texts, options, progress)

    def embed_resolved(
        self, texts: Sequence[str], options: ResolvedOptions, progress: Callable[[int], None] | None = None
    ) -> EmbeddingResult:
        """Embed ``texts`` under options resolved already (:meth:`resolve`); as :meth:`embed_with_report`.

        Raises:
            InputError: bad texts.
        """
        started = time.perf_counter()
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
                out = self.prepare(items[offset : offset + block], options)
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
                for batch_indices, out in zip(plan, self._encode_all(segments, plan), strict=True):
                    pooled[batch_indices] = out.pooled
                    model_seconds += out.model_seconds
                    pool_seconds += out.pool_seconds
                    padded += out.padded_tokens
                    if progress is not None:
                        done_texts += len({segments[i].text_index for i in batch_indices})
                        progress(done_texts)
                t_post = time.perf_counter()
                combined = combine_windows(pooled, segments, len(tokenized.tokens))
                vectors.append(postprocess(combined, options.dimensions, options.normalize))
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

    def _encode_all(self, segments: Sequence[Segment], plan: Sequence[Sequence[int]]) -> Iterator[BatchOutput]:
        """:meth:`encode` of each planned batch, in plan order; ``workers`` batches run at once."""
        if self.workers == 1 or len(plan) == 1:
            for indices in plan:
                yield self.encode([segments[i] for i in indices])
            return
        if self._batch_pool is None:
            self._batch_pool = ThreadPoolExecutor(self.workers, thread_name_prefix="embedlab-batch")
        futures = [self._batch_pool.submit(self.encode, [segments[i] for i in indices]) for indices in plan]
        try:
            for future in futures:
                yield future.result()
        finally:
            for future in futures:
                future.cancel()

    # -- the stages, public so the server's dynamic batcher and the tools can run them one by one -------

    def prepare(self, texts: Sequence[str], options: ResolvedOptions | None = None) -> TokenizedTexts:
        """Stage 1 (pre): add the prompt and tokenise ``texts`` under the long-input policy.

        Args:
            texts: texts already checked by :func:`~embedlab.engine.tokenize.validate_texts`.
            options: resolved options (default: the settings' defaults, :attr:`defaults`).

        Raises:
            InputTooLongError: under ``error``, naming the index within ``texts``.
        """
        options = options or self.defaults
        items = [options.prompt + text for text in texts] if options.prompt else list(texts)
        return tokenize_texts(
            self.tokenizer,
            items,
            options.max_tokens,
            options.long_input,
            options.chunk_overlap,
            prompt_tokens=options.pool_skip,
        )

    def encode(self, segments: Sequence[Segment]) -> BatchOutput:
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
        self, pooled: FloatArray, segments: Sequence[Segment], n_texts: int, options: ResolvedOptions | None = None
    ) -> FloatArray:
        """Stages 3 and 4 (post) for one call's segments: combine windows per text, then postprocess.

        Args:
            pooled: (len(segments), hidden) from :meth:`encode`.
            segments: the segments, ``text_index`` over 0..n_texts-1.
            n_texts: number of texts.
            options: resolved options (default: :attr:`defaults`).

        Returns:
            (n_texts, dimensions) float32.
        """
        options = options or self.defaults
        return postprocess(combine_windows(pooled, segments, n_texts), options.dimensions, options.normalize)

    def count_tokens(self, texts: Sequence[str]) -> IntArray:
        """Full token length of each text with this model's tokenizer (special tokens included), shape (n,)."""
        return count_tokens(self.tokenizer, validate_texts(texts))
