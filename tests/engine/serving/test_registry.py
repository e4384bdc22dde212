"""The work registry: claiming, joining, enqueueing, releasing, failing and delivering jobs under one lock."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab.engine.cache import CachedVector
from embedlab.engine.serving.jobs import Ticket, attach_segments
from embedlab.engine.serving.queue import BatchLimits, TokenBudgetQueue
from embedlab.engine.serving.registry import WorkRegistry
from embedlab.engine.tokenize import Segment
from embedlab.errors import OverloadedError, WorkerUnavailableError


def registry(capacity: int = 100) -> tuple[WorkRegistry, list[int]]:
    dropped: list[int] = []
    queue = TokenBudgetQueue(BatchLimits(64, 8, None, None, 100), capacity)
    return WorkRegistry(queue, retry_after=lambda: 3, on_dropped=dropped.append), dropped


def seg(n: int = 3) -> Segment:
    return Segment(0, [1] * n, [0] * n, n - 2)


def entry(value: float) -> CachedVector:
    return CachedVector(np.full(4, value, dtype=np.float32), 3)


def test_claim_sorts_hits_joins_and_new_jobs() -> None:
    work, _ = registry()
    first = Ticket(2)
    new = work.claim(first, [b"a", b"b"], [None, entry(1.0)])
    assert [index for index, _ in new] == [0] and 1 in first.hits
    second = Ticket(1)
    assert work.claim(second, [b"a"], [None]) == []  # joined the job in flight
    assert second.jobs[0][1] is new[0][1] and new[0][1].refs == 2


def test_enqueue_is_bounded_unless_told_otherwise() -> None:
    work, _ = registry(capacity=1)
    ticket = Ticket(2)
    jobs = [job for _, job in work.claim(ticket, [b"a", b"b"], [None, None])]
    items = attach_segments(jobs, [seg(), Segment(1, [1, 1, 1], [0, 0, 0], 1)], [3, 3])
    with pytest.raises(OverloadedError, match="queue is full") as refused:
        work.enqueue(items, jobs, now=1.0)
    assert refused.value.retry_after == 3 and work.queue.live == 0
    work.enqueue(items, jobs, now=1.0, bounded=False)
    assert work.queue.live == 2 and all(job.enqueued_at == 1.0 for job in jobs)


def test_release_drops_texts_nobody_waits_for_and_counts_them() -> None:
    work, dropped = registry()
    one, two = Ticket(1), Ticket(1)
    (job,) = [j for _, j in work.claim(one, [b"a"], [None])]
    work.claim(two, [b"a"], [None])
    work.enqueue(attach_segments([job], [seg()], [3]), [job], now=0.0)
    work.release(one)
    work.release(one)  # once only
    assert not job.cancelled and work.queue.live == 1  # the second request still waits
    work.release(two)
    assert job.cancelled and work.queue.live == 0 and dropped == [1] and len(work.inflight) == 0


def test_fail_and_deliver_complete_futures_once() -> None:
    work, _ = registry()
    ticket = Ticket(2)
    jobs = [job for _, job in work.claim(ticket, [b"a", b"b"], [None, None])]
    items = attach_segments(jobs, [seg(), Segment(1, [1, 1, 1], [0, 0, 0], 1)], [3, 3])
    work.enqueue(items, jobs, now=0.0)
    work.fail([jobs[0]], WorkerUnavailableError("stuck"))
    assert isinstance(jobs[0].future.exception(), WorkerUnavailableError) and work.queue.live == 1
    batch = work.queue.assemble()
    finished = work.store_rows(batch, np.ones((1, 4), dtype=np.float32), batch_id=7, seconds=0.5)
    assert finished == [jobs[1]] and jobs[1].batch_seconds == {7: 0.5}
    work.deliver([jobs[0], jobs[1]], [entry(0.0), entry(2.0)])
    assert isinstance(jobs[0].future.exception(), WorkerUnavailableError)  # a failed job stays failed
    assert jobs[1].future.result().vector[0] == 2.0 and len(work.inflight) == 0


def test_close_refuses_new_work_and_returns_the_queued_jobs() -> None:
    work, _ = registry()
    ticket = Ticket(1)
    jobs = [job for _, job in work.claim(ticket, [b"a"], [None])]
    work.enqueue(attach_segments(jobs, [seg()], [3]), jobs, now=0.0)
    assert work.close() == jobs and work.queue.live == 0
    with pytest.raises(WorkerUnavailableError, match="shutting down"):
        work.claim(Ticket(1), [b"c"], [None])
