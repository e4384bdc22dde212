"""The worker pool on real threads: batches run in slots, a stuck or dead worker is replaced in its slot."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from embedlab.engine.serving.health import HealthRecord
from embedlab.engine.serving.jobs import TextJob, WorkItem, attach_segments
from embedlab.engine.serving.queue import BatchLimits, TokenBudgetQueue
from embedlab.engine.serving.workers import RunningBatch, WorkerPool
from embedlab.engine.tokenize import Segment


class Harness:
    """A pool over a real queue whose batches run ``behaviour`` (``ok``, ``hang`` or ``die``)."""

    def __init__(self, workers: int, timeout: float = 5.0):
        self.cond = threading.Condition()
        self.queue = TokenBudgetQueue(BatchLimits(64, 1, None, None, 100), 100)
        self.record = HealthRecord()
        self.ran: list[tuple[int, int]] = []  # (slot, batch id)
        self.failed: list[tuple[TextJob, str]] = []
        self.restarts: list[str] = []
        self.behaviour = "ok"
        self.unblock = threading.Event()
        self.pool = WorkerPool(
            self.cond,
            self.cond.notify_all,
            workers,
            timeout,
            self.record,
            self.queue.assemble,
            self.run,
            self.fail,
            self.restarts.append,
        )

    def run(self, running: RunningBatch) -> None:
        if self.behaviour == "hang":
            self.unblock.wait(10)
        if self.behaviour == "die":
            self.behaviour = "ok"
            raise SystemExit("worker death")
        with self.cond:
            if self.pool.settle(running):
                self.ran.append((running.slot, running.batch_id))
            self.cond.notify_all()

    def fail(self, jobs: Sequence[TextJob], error: BaseException) -> None:
        with self.cond:
            self.failed.extend((job, str(error)) for job in jobs)
            self.cond.notify_all()

    def submit(self, n: int) -> list[TextJob]:
        jobs = [TextJob(None) for _ in range(n)]
        items: list[WorkItem] = attach_segments(jobs, [Segment(i, [1, 2], [0, 0], 1) for i in range(n)], [2] * n)
        with self.cond:
            self.queue.enqueue(items)
            self.cond.notify_all()
        return jobs

    def wait(self, condition: object, timeout: float = 10.0) -> bool:
        with self.cond:
            return self.cond.wait_for(condition, timeout)  # type: ignore[arg-type]


def test_every_batch_runs_once_across_the_slots() -> None:
    harness = Harness(workers=2)
    harness.pool.start()
    try:
        harness.submit(20)
        assert harness.wait(lambda: len(harness.ran) == 20)
        assert sorted(batch for _, batch in harness.ran) == list(range(1, 21))
        assert {slot for slot, _ in harness.ran} <= {0, 1}
    finally:
        harness.pool.stop()
        harness.pool.join_watchdog(5)


def test_a_stuck_batch_fails_its_jobs_and_a_new_worker_takes_the_slot() -> None:
    harness = Harness(workers=1, timeout=0.2)
    harness.pool.start()
    try:
        harness.behaviour = "hang"
        (job,) = harness.submit(1)
        assert harness.wait(lambda: bool(harness.failed))
        assert harness.failed[0][0] is job and "stuck" in harness.failed[0][1]
        assert harness.restarts == ["stuck"] and harness.record.restarts == 1
        harness.behaviour = "ok"
        harness.unblock.set()  # the abandoned thread wakes, finds its batch abandoned and leaves
        harness.submit(1)
        assert harness.wait(lambda: len(harness.ran) == 1)  # only the new worker's batch counts
    finally:
        harness.pool.stop()
        harness.pool.join_watchdog(5)


def test_a_dead_worker_fails_its_batch_and_is_replaced() -> None:
    harness = Harness(workers=1)
    harness.pool.start()
    try:
        harness.behaviour = "die"
        (job,) = harness.submit(1)
        assert harness.wait(lambda: bool(harness.failed) and harness.restarts == ["dead"])
        assert harness.failed[0][0] is job and "died" in harness.failed[0][1]
        harness.submit(1)
        assert harness.wait(lambda: len(harness.ran) == 1)
        assert not harness.pool.exited
    finally:
        harness.pool.stop()
        harness.pool.join_watchdog(5)
