"""The work the batcher holds, under one lock: queued segments, texts in flight, and how jobs end.

:class:`WorkRegistry` is the one place that changes a job's state: claimed (a new job, or joined to
one in flight), enqueued, released by its requests, failed, given its pooled rows, delivered. Every
change happens under its lock. Two conditions share that lock: ``cond`` wakes the workers and the
watchdog (work to take, a batch started or ended), ``changed`` wakes observers
(:meth:`WorkRegistry.wait_until`) on every change; a change the workers need not see (a request
admitted or released, a job failed) never wakes them.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence

from embedlab.arrays import FloatArray
from embedlab.engine.cache import CachedVector
from embedlab.engine.serving.jobs import InflightTable, TextJob, Ticket, WorkItem
from embedlab.engine.serving.queue import TokenBudgetQueue
from embedlab.errors import OverloadedError, WorkerUnavailableError

CLOSED = "the server is shutting down"


class WorkRegistry:
    """Queued and in-flight work, guarded by ``cond`` (re-entrant: the worker pool shares it).

    Args:
        queue: the token-budget queue.
        retry_after: seconds a client refused for a full queue should wait.
        on_dropped: told how many queued segments were dropped because nobody waits for them.
    """

    def __init__(self, queue: TokenBudgetQueue, retry_after: Callable[[], int], on_dropped: Callable[[int], None]):
        lock = threading.RLock()
        self.cond = threading.Condition(lock)  # the workers and the watchdog wait on this
        self.changed = threading.Condition(lock)  # observers wait on this
        self.queue = queue
        self.inflight: InflightTable[bytes, TextJob] = InflightTable()
        self.closed = False
        self._retry_after = retry_after
        self._on_dropped = on_dropped

    def notify(self) -> None:
        """Wake the observers (something they may wait for changed); the workers sleep on."""
        with self.changed:
            self.changed.notify_all()

    def wake_all_locked(self) -> None:
        """Under the lock: wake the workers, the watchdog and the observers."""
        self.cond.notify_all()
        self.changed.notify_all()

    def wait_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Block until ``condition()`` holds, re-checked at every change; whether it did within ``timeout`` s."""
        with self.changed:
            return self.changed.wait_for(condition, timeout)

    def claim(
        self, ticket: Ticket, keys: Sequence[bytes], found: Sequence[CachedVector | None]
    ) -> list[tuple[int, TextJob]]:
        """Record in ``ticket`` the cache hits, the texts joined to jobs in flight and the new jobs.

        Returns:
            The new jobs (to tokenise and enqueue), each with the index of its text in the request.

        Raises:
            WorkerUnavailableError: the registry is closed.
        """
        new_jobs: list[tuple[int, TextJob]] = []
        with self.cond:
            if self.closed:
                raise WorkerUnavailableError(CLOSED)
            for index, (key, entry) in enumerate(zip(keys, found, strict=True)):
                if entry is not None:
                    ticket.hits[index] = entry
                    continue
                job, created = self.inflight.join_or_create(key, lambda key=key: TextJob(key))  # type: ignore[misc]
                if created:
                    new_jobs.append((index, job))
                else:
                    job.refs += 1
                ticket.jobs.append((index, job))
        return new_jobs

    def enqueue(self, work: list[WorkItem], jobs: Sequence[TextJob], now: float, bounded: bool = True) -> None:
        """Put ``work`` (the segments of ``jobs``) in the queue and wake a worker.

        Args:
            now: monotonic time, the jobs' ``enqueued_at``.
            bounded: refuse work that would overfill the queue (warm-up and probes are not bounded).

        Raises:
            OverloadedError: the queue would go over its capacity.
            WorkerUnavailableError: the registry is closed.
        """
        with self.cond:
            if self.closed:
                raise WorkerUnavailableError(CLOSED)
            if bounded and not self.queue.fits(len(work)):
                raise OverloadedError(
                    f"the queue is full ({self.queue.live} segments waiting, limit {self.queue.capacity}); "
                    "retry shortly",
                    retry_after=self._retry_after(),
                )
            for job in jobs:
                job.enqueued_at = now
            self.queue.enqueue(work)
            self.wake_all_locked()

    def release(self, ticket: Ticket) -> None:
        """The request no longer waits (once): texts nobody else waits for are dropped from the queue."""
        with self.cond:
            if ticket.released:
                return
            ticket.released = True
            for _, job in ticket.jobs:
                job.refs -= 1
                if job.refs <= 0 and not job.future.done() and not job.cancelled:
                    dropped = self.cancel(job)
                    if dropped:
                        self._on_dropped(dropped)
            self.changed.notify_all()

    def cancel(self, job: TextJob) -> int:
        """Take a job out of the queue and the in-flight table; returns its segments that were still queued."""
        with self.cond:
            dropped = self.queue.cancel(job)
            if job.key is not None:
                self.inflight.discard(job.key, job)
            return dropped

    def fail(self, jobs: Sequence[TextJob], error: BaseException) -> None:
        """Fail each job once: its queued segments are taken out and its future raises ``error``."""
        with self.cond:
            for job in jobs:
                self.cancel(job)
            self.changed.notify_all()
        for job in jobs:
            if not job.future.done():
                with contextlib.suppress(Exception):  # InvalidStateError: completed concurrently
                    job.future.set_exception(error)

    def store_rows(self, items: Sequence[WorkItem], pooled: FloatArray, batch_id: int, seconds: float) -> list[TextJob]:
        """Store a batch's pooled rows (``pooled[i]`` for ``items[i]``); return the jobs now complete."""
        finished: list[TextJob] = []
        with self.cond:  # a chunked text's windows may finish in batches of two workers at once
            for row, item in zip(pooled, items, strict=True):
                job = item.job
                job.rows[item.window] = row
                job.remaining -= 1
                job.batch_seconds[batch_id] = seconds
                if job.remaining == 0:
                    finished.append(job)
        return finished

    def deliver(self, jobs: Sequence[TextJob], entries: Sequence[CachedVector]) -> None:
        """Complete each job with its entry (unless it failed meanwhile) and forget it as in flight."""
        with self.cond:
            for job in jobs:
                if job.key is not None:
                    self.inflight.discard(job.key, job)
        for job, entry in zip(jobs, entries, strict=True):
            if not job.future.done():
                with contextlib.suppress(Exception):  # InvalidStateError: failed concurrently
                    job.future.set_result(entry)

    def close(self) -> list[TextJob]:
        """Refuse new work and empty the queue; returns the jobs whose segments were queued."""
        with self.cond:
            self.closed = True
            items = self.queue.drain()
            self.wake_all_locked()
        return list({id(item.job): item.job for item in items}.values())
