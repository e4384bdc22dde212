"""The Reranker: one cross-encoder on one backend, scoring (query, document) pairs as ``CrossEncoder.predict`` does.

::

    resolve   options given → raw_scores, truncate and the token limit, checked once (:meth:`Reranker.resolve`)
    prepare   pairs → one segment per pair, cut ``longest_first`` to the limit (:mod:`embedlab.engine.pairs`)
    encode    segments → ONE padded batch → backend forward → logits (len(segments), num_labels)
    score     logits → the model's activation unless ``raw_scores`` → (n,) for one label, (n, num_labels) else
    rank      scores → document indices, best first, ``top_n`` of them (:func:`rank`)

:meth:`Reranker.rerank` and :meth:`Reranker.predict` run them in process: pairs packed into token-budget
batches by :func:`~embedlab.engine.batch_plan.plan_batches` (longest first), scores put back in the
caller's order. The server's :class:`~embedlab.engine.serving.DynamicBatcher` runs the same stages
itself to put the pairs of concurrent requests into shared batches.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from embedlab.arrays import FloatArray
from embedlab.backends.base import Backend
from embedlab.engine.batch_plan import BatchOutput, pad_segments, plan_batches
from embedlab.engine.cache import pair_key
from embedlab.engine.pairs import Pair, PairTokenizer, rerank_pairs, validate_pairs
from embedlab.engine.tokenize import Segment, TokenizedTexts, find_pad_id
from embedlab.errors import ConfigError
from embedlab.models.cross_encoder import Activation, CrossEncoderSpec
from embedlab.settings import EngineSettings


@dataclass(frozen=True)
class RerankOptions:
    """Options of one rerank / predict call; these defaults are the only ones.

    Attributes:
        raw_scores: return the logits as they are, without the model's activation.
        truncate: cut a pair over the token limit ``longest_first`` (reported per pair), as
            ``CrossEncoder`` does; False refuses it with :class:`~embedlab.errors.PairTooLongError`.
    """

    raw_scores: bool = False
    truncate: bool = True

    @classmethod
    def from_kwargs(cls, **options: Any) -> RerankOptions:
        """Options from keyword arguments; None values keep the defaults.

        Raises:
            ConfigError: a name that is not a rerank option, or a value that is not a bool.
        """
        known = [f.name for f in fields(cls)]
        given = {name: value for name, value in options.items() if value is not None}
        for name, value in given.items():
            if name not in known:
                raise ConfigError(f"unknown rerank option {name!r}; use one of {', '.join(known)}")
            if not isinstance(value, bool):
                raise ConfigError(f"{name} must be true or false, got {value!r}")
        return cls(**given)


@dataclass(frozen=True)
class ResolvedRerank:
    """A call's rerank options with the token limit applied.

    Attributes:
        raw_scores: logits as they are (True), or the model's activation applied.
        truncate: cut long pairs (True) or refuse them.
        max_tokens: tokens per pair, special tokens included.
    """

    raw_scores: bool
    truncate: bool
    max_tokens: int


@dataclass(frozen=True)
class PairScores:
    """Scores of (query, document) pairs in the caller's order, and what it took to make them.

    Attributes:
        scores: float32, (n_pairs,) for a one-label model, else (n_pairs, num_labels); the model's
            activation applied unless the call asked for raw scores.
        tokens: per pair, tokens the model ran on (special tokens included).
        input_tokens: per pair, its full length before truncation.
        truncated: per pair, whether tokens were cut off.
        timings: seconds: ``tokenize``, ``model`` (forward batches) and ``total`` in process; ``tokenize``,
            ``queue``, ``inference`` and ``total`` through the dynamic batcher.
    """

    scores: FloatArray
    tokens: list[int]
    input_tokens: list[int]
    truncated: list[bool]
    timings: dict[str, float]

    @property
    def n_truncated(self) -> int:
        """How many pairs lost tokens to truncation."""
        return int(sum(self.truncated))

    @property
    def total_tokens(self) -> int:
        """Tokens run, summed over pairs."""
        return int(sum(self.tokens))


@dataclass(frozen=True)
class RerankResult(PairScores):
    """:class:`PairScores` of one query with each document, and the documents ranked.

    Attributes:
        ranking: document indices, highest score first (ties: the lower index first), at most ``top_n``.
    """

    ranking: list[int]

    def top(self) -> list[tuple[int, float]]:
        """(document index, score) of the ranked documents, best first."""
        return [(index, float(self.scores[index])) for index in self.ranking]


def check_top_n(top_n: Any) -> None:
    """Raise :class:`ConfigError` unless ``top_n`` is None or a whole number ≥ 1."""
    if top_n is not None and (isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1):
        raise ConfigError(f"top_n must be a whole number of at least 1, got {top_n!r}")


def rank(scores: FloatArray, top_n: int | None = None) -> list[int]:
    """Indices of ``scores`` (n,) from highest to lowest (ties keep index order), the first ``top_n`` of them."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    return [int(i) for i in order[:top_n]]


def activate(logits: FloatArray, activation: Activation) -> FloatArray:
    """Apply a cross-encoder's activation to logits (n, num_labels); float32, same shape."""
    values = np.asarray(logits, dtype=np.float64)
    if activation == "sigmoid":
        values = 1.0 / (1.0 + np.exp(-values))
    elif activation == "tanh":
        values = np.tanh(values)
    elif activation == "softmax":
        exps = np.exp(values - values.max(axis=1, keepdims=True))
        values = exps / exps.sum(axis=1, keepdims=True)
    return values.astype(np.float32)


class Reranker:
    """Scores (query, document) pairs with one cross-encoder on one backend.

    Build it with :func:`embedlab.load_reranker`. The stages keep no per-call state, so concurrent calls
    are safe when the backend's ``forward`` is (ONNX Runtime and torch are).

    Raises:
        ConfigError: the settings' ``max_tokens`` does not fit the model.
    """

    def __init__(self, spec: CrossEncoderSpec, backend: Backend, tokenizer: Any, settings: EngineSettings):
        self.spec = spec
        self.backend = backend
        self.tokenizer = tokenizer
        self.settings = settings
        self.pair_tokenizer = PairTokenizer(tokenizer)
        self._pad_id = find_pad_id(spec, tokenizer)
        #: batches run side by side by :meth:`predict` (the backend was built for this many callers)
        self.workers = settings.worker_layout()[0]
        self._batch_pool: ThreadPoolExecutor | None = None
        #: what a call with no options uses
        self.defaults = self.resolve()

    # -- stage 0: resolve ----------------------------------------------------------------------------

    def resolve(self, options: RerankOptions | None = None) -> ResolvedRerank:
        """A call's options with the token limit (the settings' ``max_tokens``, else the model's) applied.

        Raises:
            ConfigError: ``max_tokens`` over the model's limit, or too small for a pair.
        """
        options = options or RerankOptions()
        limit = self.spec.max_tokens if self.settings.max_tokens is None else int(self.settings.max_tokens)
        if limit > self.spec.max_tokens:
            raise ConfigError(f"max_tokens must be at most the model's limit {self.spec.max_tokens}, got {limit}")
        self.pair_tokenizer.check_limit(limit)
        return ResolvedRerank(options.raw_scores, options.truncate, limit)

    # -- the library's calls -------------------------------------------------------------------------

    def rerank(
        self,
        query: str,
        documents: Sequence[str],
        *,
        raw_scores: bool | None = None,
        truncate: bool | None = None,
        top_n: int | None = None,
    ) -> RerankResult:
        """Score each document against ``query`` and rank them.

        Args:
            query: a non-blank string.
            documents: non-empty list of non-blank strings.
            raw_scores: logits without the model's activation (default False, see :class:`RerankOptions`).
            truncate: cut pairs over the token limit (default True) or refuse them.
            top_n: rank only the best ``top_n`` documents (default: all); ``scores`` still holds every one.

        Returns:
            Scores (n_documents,) in document order and the ranking.

        Raises:
            InputError: a bad query or documents, or (``truncate=False``) a pair over the limit.
            ConfigError: bad options, or a model with several labels (use :meth:`predict`).
        """
        check_top_n(top_n)
        self.check_single_label()
        resolved = self.resolve(RerankOptions.from_kwargs(raw_scores=raw_scores, truncate=truncate))
        return ranked(self.score_pairs(rerank_pairs(query, documents), resolved), top_n)

    def predict(
        self, pairs: Sequence[Pair], *, raw_scores: bool | None = None, truncate: bool | None = None
    ) -> PairScores:
        """Score (query, document) pairs as ``CrossEncoder(path).predict(pairs)`` does.

        Args:
            pairs: non-empty list of (query, document) pairs of non-blank strings.
            raw_scores, truncate: as :meth:`rerank`.

        Returns:
            Scores (n_pairs,) for a one-label model, (n_pairs, num_labels) otherwise, in pair order.

        Raises:
            InputError: bad pairs, or (``truncate=False``) a pair over the limit. ConfigError: bad options.
        """
        resolved = self.resolve(RerankOptions.from_kwargs(raw_scores=raw_scores, truncate=truncate))
        return self.score_pairs(validate_pairs(pairs), resolved)

    def check_single_label(self) -> None:
        """Raise :class:`ConfigError` unless the model gives one score per pair (what ranking needs)."""
        if self.spec.num_labels != 1:
            raise ConfigError(
                f"model {self.spec.name} gives {self.spec.num_labels} scores per pair "
                f"({', '.join(self.spec.labels)}), so it cannot rank; use predict for its per-label scores"
            )

    def score_pairs(self, pairs: Sequence[Pair], resolved: ResolvedRerank) -> PairScores:
        """Score checked ``pairs`` under resolved options: token-budget batches, longest first, caller's order back."""
        started = time.perf_counter()
        tokenized = self.prepare(pairs, resolved)
        tokenize_s = time.perf_counter() - started
        lengths = [len(s.ids) for s in tokenized.segments]
        settings = self.settings
        plan = plan_batches(lengths, settings.max_batch_tokens, settings.max_batch_size, settings.bucket_ratio)
        batches = [[tokenized.segments[i] for i in indices] for indices in plan]
        if self.workers == 1:
            outs = [self.encode(batch) for batch in batches]
        else:
            if self._batch_pool is None:
                self._batch_pool = ThreadPoolExecutor(self.workers, thread_name_prefix="embedlab-rerank")
            outs = list(self._batch_pool.map(self.encode, batches))
        logits = np.empty((len(lengths), self.spec.num_labels), dtype=np.float32)
        for indices, out in zip(plan, outs, strict=True):
            logits[indices] = out.pooled
        timings = {
            "tokenize": tokenize_s,
            "model": float(sum(out.model_seconds for out in outs)),
            "total": time.perf_counter() - started,
        }
        return self.pair_scores(logits, tokenized, resolved, timings)

    def pair_scores(
        self, logits: FloatArray, tokenized: TokenizedTexts, resolved: ResolvedRerank, timings: dict[str, float]
    ) -> PairScores:
        """The :class:`PairScores` of one call from its logits (n_pairs, num_labels) in pair order."""
        return PairScores(
            scores=self.score(logits, resolved),
            tokens=list(tokenized.tokens),
            input_tokens=list(tokenized.input_tokens),
            truncated=list(tokenized.truncated),
            timings=timings,
        )

    # -- the stages, public so the server's dynamic batcher can run them one by one -------------------

    def prepare(self, pairs: Sequence[Pair], resolved: ResolvedRerank | None = None) -> TokenizedTexts:
        """Stage 1 (pre): tokenise checked ``pairs``, one segment each (``text_index`` = pair index).

        Raises:
            PairTooLongError: with ``truncate`` off, the first pair over the limit (its index within ``pairs``).
        """
        resolved = resolved or self.defaults
        return self.pair_tokenizer.tokenize(pairs, resolved.max_tokens, resolved.truncate)

    def encode(self, segments: Sequence[Segment]) -> BatchOutput:
        """Stage 2 (core): pad ``segments`` into ONE batch and run the backend: logits (len(segments), num_labels)."""
        batch = pad_segments(segments, self._pad_id)
        t0 = time.perf_counter()
        logits = self.backend.forward(batch)
        return BatchOutput(logits, int(batch.input_ids.size), time.perf_counter() - t0, 0.0)

    def score(self, logits: FloatArray, resolved: ResolvedRerank | None = None) -> FloatArray:
        """Stage 3 (post): logits (n, num_labels) → scores, (n,) for one label, (n, num_labels) else (float32).

        As ``CrossEncoder.predict``: the activation (unless ``raw_scores``), then one label squeezed.
        """
        resolved = resolved or self.defaults
        scores = logits if resolved.raw_scores else activate(logits, self.spec.activation)
        return np.ascontiguousarray(scores[:, 0]) if self.spec.num_labels == 1 else scores

    # -- what the dynamic batcher needs besides the stages ------------------------------------------------

    def warm_up_items(self) -> list[Pair]:
        """A short pair and one of the full token limit (the batcher's warm-up; the first is its health probe)."""
        half = " ".join(["warm"] * self.defaults.max_tokens)
        return [("warm up", "warm up"), (half, half)]

    def item_key(self, identity: str, item: Pair, resolved: ResolvedRerank) -> bytes:
        """The key that lets concurrent requests share one computation of ``item`` (see :func:`pair_key`)."""
        return pair_key(identity, item[0], item[1], max_tokens=resolved.max_tokens, truncate=resolved.truncate)


def ranked(scores: PairScores, top_n: int | None) -> RerankResult:
    """``scores`` (one per document) with the documents ranked, the best ``top_n`` (default: all)."""
    return RerankResult(**vars(scores), ranking=rank(scores.scores, top_n))
