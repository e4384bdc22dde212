"""The token-budget queue: segments waiting for inference, and how the next batch is assembled from them.

Pure data structure: no threads, no clock, no locks (the batcher holds its lock around every call).
Segments wait in arrival order. A batch is the oldest live segment and its neighbours in length
among the oldest ``assembly_window`` ones, up to the token budget (:func:`plan_batches` with length
bucketing, and an attention budget when several workers run at once). Segments of cancelled jobs stay
in place as dead weight that :meth:`TokenBudgetQueue.assemble` skips, and are compacted away once
they outnumber the live ones.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from embedlab.engine.batch_plan import plan_batches
from embedlab.engine.serving.jobs import TextJob, WorkItem

COMPACT_MIN_DEAD = 1024  # dead segments tolerated before a compaction, whatever the live count


@dataclass(frozen=True)
class BatchLimits:
    """What one assembled batch may hold.

    Attributes:
        max_batch_tokens: padded tokens (batch size × longest sequence).
        max_batch_size: segments.
        bucket_ratio: a batch only takes segments at least ``longest / bucket_ratio`` long (None: any).
        max_attention_cells: batch size × longest² at most (None: no cap).
        assembly_window: oldest live segments considered per batch.
    """

    max_batch_tokens: int
    max_batch_size: int
    bucket_ratio: float | None
    max_attention_cells: int | None
    assembly_window: int


class TokenBudgetQueue:
    """Work items waiting for inference, with the live / dead accounting the batcher's limits need.

    Args:
        limits: what an assembled batch may hold.
        capacity: live segments the queue holds at most (see :meth:`fits`).
    """

    def __init__(self, limits: BatchLimits, capacity: int):
        self.limits = limits
        self.capacity = capacity
        self._items: deque[WorkItem] = deque()
        self._live = 0
        self._dead = 0

    @property
    def live(self) -> int:
        """Segments waiting whose job still wants them."""
        return self._live

    @property
    def dead(self) -> int:
        """Segments of cancelled jobs not compacted away yet."""
        return self._dead

    def fits(self, count: int) -> bool:
        """Whether ``count`` more live segments stay within the capacity."""
        return self._live + count <= self.capacity

    def enqueue(self, items: Sequence[WorkItem]) -> None:
        """Append ``items`` (their jobs must not be cancelled); each job counts its queued segments."""
        for item in items:
            item.job.queued += 1
        self._items.extend(items)
        self._live += len(items)

    def cancel(self, job: TextJob) -> int:
        """Mark ``job`` cancelled: its queued segments become dead weight. Returns how many were queued
        (0 for a job already cancelled)."""
        if job.cancelled:
            return 0
        dropped = job.queued
        job.cancelled = True
        job.queued = 0
        self._live -= dropped
        self._dead += dropped
        if self._dead > max(COMPACT_MIN_DEAD, self._live):
            self.compact()
        return dropped

    def compact(self) -> None:
        """Remove the segments of cancelled jobs."""
        self._items = deque(item for item in self._items if not item.job.cancelled)
        self._dead = 0

    def assemble(self) -> list[WorkItem]:
        """Take the next batch (the oldest live segment and its neighbours in length), or [] when none waits."""
        window: list[WorkItem] = []
        while self._items and len(window) < self.limits.assembly_window:
            item = self._items.popleft()
            if item.job.cancelled:
                self._dead -= 1
                continue
            window.append(item)
        if not window:
            return []
        limits = self.limits
        lengths = [item.length for item in window]
        plan = plan_batches(
            lengths, limits.max_batch_tokens, limits.max_batch_size, limits.bucket_ratio, limits.max_attention_cells
        )
        chosen = next(batch for batch in plan if 0 in batch)
        taken = set(chosen)
        self._items.extendleft(reversed([item for i, item in enumerate(window) if i not in taken]))
        batch = [window[i] for i in chosen]
        for item in batch:
            item.job.queued -= 1
        self._live -= len(batch)
        return batch

    def drain(self) -> list[WorkItem]:
        """Take every item out (live or dead), leaving the queue empty and every job with nothing queued."""
        items = list(self._items)
        for item in items:
            item.job.queued = 0
        self._items.clear()
        self._live = self._dead = 0
        return items

    def __len__(self) -> int:
        """Items held, dead ones included."""
        return len(self._items)
