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
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from embedlab.arrays import FloatArray, IntArray
from embedlab.backends.base import Backend
from embedlab.engine.batch_plan import BatchOutput, pad_segments, plan_batches
from embedlab.engine.cache import cache_key
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
from embedlab.engine.vector_precision import EmbeddingArray, ranges_of
from embedlab.errors import InputTooLongError
from embedlab.models.pooling import pool
from embedlab.models.spec import ModelSpec
from embedlab.settings import EngineSettings, LongInputPolicy

_NO_OPTIONS = EmbedOptions()


@dataclass
class EmbeddingResult:
    """Vectors plus what it took to make them.

    Attributes:
        vectors: (n_texts, dim) float32 in the caller's order (in the call's ``precision`` if one was given).
        tokens: per text, tokens embedded (special tokens included).
        input_tokens: per text, its full token length before any truncation.
        truncated: per text, whether tokens were cut off.
        padded_tokens: tokens the model computed on, padding included.
        seconds: wall time of the whole call.
        timings: seconds spent tokenising (``tokenize``), in the backend (``model``) and pooling /
            combining / normalising (``pool``). Tokenising overlaps the model for inputs longer than
            one tokenize block, so the three may add up to more than ``seconds``.
    """

    vectors: EmbeddingArray
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

    def embed(self, texts: Sequence[str], **options: Any) -> EmbeddingArray:
        """Embed ``texts``: (len(texts), dim) float32, or in ``precision``. Options as :meth:`embed_with_report`."""
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
        precision: str | None = None,
        ranges: npt.ArrayLike | None = None,
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
            precision: ``float32`` (default), ``float16``, ``int8``, ``uint8``, ``binary`` or ``ubinary``
                (see :mod:`embedlab.engine.vector_precision` for the values and byte layout).
            ranges: ``int8`` / ``uint8`` only: (2, dimensions) per-dimension min and max; default [-1, 1]
                (normalised vectors); :meth:`calibrate_ranges` measures them on your own texts.
            progress: called with the number of texts finished after each batch.

        Raises:
            InputError: bad texts (see :mod:`embedlab.errors`).
            ConfigError: bad options.
        """
        options = self.resolve(
            EmbedOptions(
                prompt,
                prompt_name,
                input_type,
                long_input,
                max_tokens,
                dimensions,
                normalize,
                precision,
                None if ranges is None else np.asarray(ranges, dtype=np.float32),
            )
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
        n = len(items)
        # Longest texts first (by characters, as sentence-transformers sorts): each tokenize block then holds
        # texts of similar length, so batches planned within a block pad little, and blocks can stay small
        # enough for block k+1 to be tokenised while block k runs in the model.
        order = sorted(range(n), key=lambda i: -len(items[i]))
        ordered = [items[i] for i in order]
        block = self.settings.tokenize_block
        starts = list(range(0, n, block))
        vectors: EmbeddingArray | None = None
        tokens = [0] * n
        input_tokens = [0] * n
        truncated = [False] * n
        timings = {"tokenize": 0.0, "model": 0.0, "pool": 0.0}
        counts = {"padded": 0, "done": 0}

        def tokenize_block(offset: int) -> tuple[TokenizedTexts, float]:
            t0 = time.perf_counter()
            try:
                out = self.prepare(ordered[offset : offset + block], options)
            except InputTooLongError as exc:
                raise InputTooLongError(order[exc.index + offset], exc.n_tokens, exc.limit) from None
            return out, time.perf_counter() - t0

        def finish_block(offset: int, tokenized: TokenizedTexts, plan: list[list[int]], outs: list[Any]) -> None:
            nonlocal vectors
            segments = tokenized.segments
            pooled = np.empty((len(segments), self.spec.hidden_size), dtype=np.float32)
            for batch_indices, pending in zip(plan, outs, strict=True):
                out: BatchOutput = pending.result() if isinstance(pending, Future) else pending
                pooled[batch_indices] = out.pooled
                timings["model"] += out.model_seconds
                timings["pool"] += out.pool_seconds
                counts["padded"] += out.padded_tokens
                if progress is not None:
                    counts["done"] += len({segments[i].text_index for i in batch_indices})
                    progress(min(counts["done"], n))
            t_post = time.perf_counter()
            combined = combine_windows(pooled, segments, len(tokenized.tokens))
            done = postprocess(combined, options.dimensions, options.normalize, options.precision, options.ranges)
            if vectors is None:
                vectors = np.empty((n, done.shape[1]), dtype=done.dtype)
            rows = order[offset : offset + len(tokenized.tokens)]
            vectors[rows] = done
            for j, row in enumerate(rows):
                tokens[row] = tokenized.tokens[j]
                input_tokens[row] = tokenized.input_tokens[j]
                truncated[row] = tokenized.truncated[j]
            timings["pool"] += time.perf_counter() - t_post

        # pre / core overlap: the next block is tokenised on a helper thread while the workers run this one's
        # batches (the Rust tokenizer and the runtimes release the GIL); at most two blocks are in flight.
        tokenizer = ThreadPoolExecutor(1, thread_name_prefix="embedlab-tokenize") if len(starts) > 1 else None
        in_flight: deque[tuple[int, TokenizedTexts, list[list[int]], list[Any]]] = deque()
        try:
            next_block = tokenizer.submit(tokenize_block, 0) if tokenizer else None
            for k, offset in enumerate(starts):
                tokenized, seconds = next_block.result() if next_block else tokenize_block(offset)
                timings["tokenize"] += seconds
                if tokenizer and k + 1 < len(starts):
                    next_block = tokenizer.submit(tokenize_block, starts[k + 1])
                lengths = [len(s.ids) for s in tokenized.segments]
                plan = plan_batches(
                    lengths, self.settings.max_batch_tokens, self.settings.max_batch_size, self.settings.bucket_ratio
                )
                in_flight.append((offset, tokenized, plan, self._submit_batches(tokenized.segments, plan)))
                while len(in_flight) > 1:
                    finish_block(*in_flight.popleft())
            while in_flight:
                finish_block(*in_flight.popleft())
        finally:
            for _, _, _, outs in in_flight:
                for pending in outs:
                    if isinstance(pending, Future):
                        pending.cancel()
            if tokenizer:
                tokenizer.shutdown(wait=True, cancel_futures=True)
        assert vectors is not None
        return EmbeddingResult(
            vectors=vectors,
            tokens=tokens,
            input_tokens=input_tokens,
            truncated=truncated,
            padded_tokens=counts["padded"],
            seconds=time.perf_counter() - started,
            timings=timings,
        )

    def _submit_batches(self, segments: Sequence[Segment], plan: Sequence[Sequence[int]]) -> list[Any]:
        """Each planned batch's :meth:`encode`: futures on the ``workers`` threads, or outputs run here (1 worker)."""
        if self.workers == 1:
            return [self.encode([segments[i] for i in indices]) for indices in plan]
        if self._batch_pool is None:
            self._batch_pool = ThreadPoolExecutor(self.workers, thread_name_prefix="embedlab-batch")
        return [self._batch_pool.submit(self.encode, [segments[i] for i in indices]) for indices in plan]

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
    ) -> EmbeddingArray:
        """Stages 3 and 4 (post) for one call's segments: combine windows per text, then postprocess.

        Args:
            pooled: (len(segments), hidden) from :meth:`encode`.
            segments: the segments, ``text_index`` over 0..n_texts-1.
            n_texts: number of texts.
            options: resolved options (default: :attr:`defaults`).

        Returns:
            (n_texts, dimensions) float32, or in the options' precision.
        """
        options = options or self.defaults
        combined = combine_windows(pooled, segments, n_texts)
        return postprocess(combined, options.dimensions, options.normalize, options.precision, options.ranges)

    # -- what the server's dynamic batcher needs besides the stages (:class:`~embedlab.engine.serving.model.BatchModel`)

    def warm_up_items(self) -> list[str]:
        """A short text and one of as many tokens as the limit allows, the default prompt and special tokens
        included (the batcher's warm-up; the first is its health probe). Never over the limit, so a server whose
        policy is ``error`` starts too."""
        prompt = self.defaults.prompt
        one, two = (int(n) for n in self.count_tokens([prompt + "warm", prompt + "warm warm"]))
        per_word = max(1, two - one)
        words = max(1, (self.defaults.max_tokens - (one - per_word)) // per_word)
        return ["warm up", " ".join(["warm"] * words)]

    def item_key(self, identity: str, item: str, resolved: ResolvedOptions) -> bytes:
        """The cache key of text ``item`` under ``resolved`` options (see :func:`~embedlab.engine.cache.cache_key`)."""
        return cache_key(
            identity,
            item,
            prompt=resolved.prompt,
            max_tokens=resolved.max_tokens,
            long_input=resolved.long_input,
            chunk_overlap=resolved.chunk_overlap,
        )

    def calibrate_ranges(self, texts: Sequence[str], **options: Any) -> FloatArray:
        """int8 / uint8 ranges measured on ``texts``: per dimension, the min and max of their float vectors.

        Args:
            texts: calibration texts like those you will embed (at least 2; hundreds are better).
            options: as :meth:`embed_with_report` (``dimensions``, ``normalize``, ``prompt_name``...),
                the same as the calls the ranges are for; ``precision`` and ``ranges`` are ignored.

        Returns:
            (2, dimensions) float32, to pass as ``ranges=``.
        """
        given = {k: v for k, v in options.items() if k not in ("precision", "ranges")}
        return ranges_of(self.embed_with_report(texts, **given).vectors)

    def count_tokens(self, texts: Sequence[str]) -> IntArray:
        """Full token length of each text with this model's tokenizer (special tokens included), shape (n,)."""
        return count_tokens(self.tokenizer, validate_texts(texts))
