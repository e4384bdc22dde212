"""The units of work of the dynamic batcher: an item being computed, its queued segments, a request's claim.

An item is what a request lists: a text for an embedding model, a (query, document) pair for a cross-encoder.

- :class:`TextJob`: one distinct item (under one set of options) being computed: its segments, the
  rows that come back for them (pooled vectors, or logits), and the future every request for it waits on.
- :class:`WorkItem`: one segment of one job, as it waits in the queue.
- :class:`Ticket`: one request's claim: cache hits by text index, and the jobs it waits for.
- :class:`InflightTable`: jobs being computed, by cache key, so that a second request for the same
  text joins the first one's job instead of computing it again (de-duplication, not a cache: an
  entry lives only while its job runs).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

from embedlab.arrays import FloatArray
from embedlab.engine.cache import CachedVector
from embedlab.engine.tokenize import Segment


class TextJob:
    """One item (a text, or a pair) being computed.

    Attributes:
        key: its cache key, or None for work that is neither cached nor shared (warm-up, probes).
        future: completes with the item's :class:`CachedVector` (its combined row, before postprocessing), or fails.
        segments: its windows, each with ``text_index`` 0 (so they combine on their own).
        rows: the row (width,) of each segment once computed, else None.
        remaining: segments not computed yet.
        queued: segments still waiting in the queue (0 once all are taken or the job is cancelled).
        tokens: tokens run for the item (special tokens included).
        input_tokens: its full length before any truncation.
        truncated: whether tokens were cut off.
        refs: requests waiting for it.
        cancelled: nobody waits any more, or it failed: its queued segments are skipped.
        enqueued_at: monotonic time its segments entered the queue.
        started_at: monotonic time its first batch started, or None.
        batch_seconds: seconds of each forward batch that carried one of its segments, by batch id.
    """

    __slots__ = (
        "batch_seconds",
        "cancelled",
        "enqueued_at",
        "future",
        "input_tokens",
        "key",
        "queued",
        "refs",
        "remaining",
        "rows",
        "segments",
        "started_at",
        "tokens",
        "truncated",
    )

    def __init__(self, key: bytes | None) -> None:
        self.key = key
        self.future: Future[CachedVector] = Future()
        self.segments: list[Segment] = []
        self.rows: list[FloatArray | None] = []
        self.remaining = 0
        self.queued = 0
        self.tokens = 0
        self.input_tokens = 0
        self.truncated = False
        self.refs = 1
        self.cancelled = False
        self.enqueued_at = 0.0
        self.started_at: float | None = None
        self.batch_seconds: dict[int, float] = {}


@dataclass(frozen=True)
class WorkItem:
    """One segment waiting for inference.

    Attributes:
        job: the text it belongs to.
        window: its position among the job's segments (the row of ``job.rows`` it fills).
        segment: the token ids to run.
        length: tokens in the segment.
    """

    job: TextJob
    window: int
    segment: Segment
    length: int


@dataclass
class Ticket:
    """One request's claim: cached entries by text index, and the jobs it waits for by text index."""

    n_texts: int
    hits: dict[int, CachedVector] = field(default_factory=dict)
    jobs: list[tuple[int, TextJob]] = field(default_factory=list)
    tokenize_seconds: float = 0.0
    released: bool = False


def attach_segments(
    jobs: Sequence[TextJob],
    segments: Sequence[Segment],
    tokens: Sequence[int],
    *,
    input_tokens: Sequence[int] | None = None,
    truncated: Sequence[bool] | None = None,
) -> list[WorkItem]:
    """Give each job its segments and return their work items, in segment order.

    Args:
        jobs: the jobs of one tokenised call; ``segments[i].text_index`` indexes into it.
        segments: the call's segments (a chunked text has several).
        tokens: tokens run per item, as the tokenizer counted them.
        input_tokens: per item, its full length before truncation (default: ``tokens``).
        truncated: per item, whether it was cut (default: none was).
    """
    items: list[WorkItem] = []
    for segment in segments:
        job = jobs[segment.text_index]
        items.append(WorkItem(job, len(job.segments), segment, len(segment.ids)))
        job.segments.append(replace(segment, text_index=0))
    full = tokens if input_tokens is None else input_tokens
    cut = [False] * len(jobs) if truncated is None else truncated
    for job, count, length, was_cut in zip(jobs, tokens, full, cut, strict=True):
        job.tokens = count
        job.input_tokens = length
        job.truncated = was_cut
        job.rows = [None] * len(job.segments)
        job.remaining = len(job.segments)
    return items


K = TypeVar("K")
V = TypeVar("V")


class InflightTable(Generic[K, V]):
    """Work being computed, by key, so that a second request for the same key joins it instead.

    Not locked itself: the caller holds one lock around its lookups and updates together with its
    queue, so "is it in flight?" and "enqueue it" happen atomically.
    """

    def __init__(self) -> None:
        self._items: dict[K, V] = {}

    def join_or_create(self, key: K, create: Callable[[], V]) -> tuple[V, bool]:
        """The in-flight item for ``key`` (created=False), or a new one made by ``create`` (created=True)."""
        item = self._items.get(key)
        if item is not None:
            return item, False
        item = create()
        self._items[key] = item
        return item, True

    def discard(self, key: K, item: V) -> None:
        """Forget ``key`` if it still maps to ``item`` (finished, failed or abandoned)."""
        if self._items.get(key) is item:
            del self._items[key]

    def __len__(self) -> int:
        return len(self._items)
