"""Inference worker threads, one per slot, and the watchdog that replaces a stuck or dead one in its slot.

Each slot runs one thread at a time; a thread belongs to a *generation*, and a slot whose thread is
replaced moves to a new generation, so an abandoned thread that wakes up later knows to leave. All
state is guarded by the batcher's condition (a re-entrant lock), which the pool shares:

- a worker takes a batch from the queue under the lock (``take_batch``), waits on the condition while
  there is none, and runs it outside the lock (``run_batch``);
- the watchdog waits on the same condition for the oldest running batch's deadline; a batch over
  ``inference_timeout_s`` fails its jobs (``fail_jobs``), and a fresh worker takes the slot; a thread
  that ended unexpectedly has the batch it ran failed and is replaced the same way.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from embedlab.engine.serving.health import HealthRecord
from embedlab.engine.serving.jobs import TextJob, WorkItem
from embedlab.errors import WorkerUnavailableError

log = logging.getLogger(__name__)


@dataclass
class RunningBatch:
    """A batch a worker is running: its id, the worker's slot and generation, when it started, its items."""

    batch_id: int
    slot: int
    generation: int
    started: float
    items: list[WorkItem]

    def jobs(self) -> list[TextJob]:
        """The distinct jobs of the batch's items, in first-seen order."""
        return list({id(item.job): item.job for item in self.items}.values())


class WorkerPool:
    """``workers`` inference threads and their watchdog.

    Args:
        cond: the condition the workers and the watchdog wait on (its re-entrant lock guards the queue too).
        wake_all: under the lock, wakes everyone waiting on it (``cond`` and observers).
        workers: inference slots.
        inference_timeout_s: a batch running longer than this means its worker is stuck.
        record: the health record, told of restarts.
        take_batch: called under ``cond``; the next batch's items, or [] when none waits.
        run_batch: runs a batch outside the lock; calls :meth:`settle` under the lock when done.
        fail_jobs: fails jobs with an error (called with or without the lock held).
        on_restart: told the reason (``stuck`` / ``dead``) of every replacement.
    """

    def __init__(
        self,
        cond: threading.Condition,
        wake_all: Callable[[], None],
        workers: int,
        inference_timeout_s: float,
        record: HealthRecord,
        take_batch: Callable[[], list[WorkItem]],
        run_batch: Callable[[RunningBatch], None],
        fail_jobs: Callable[[Sequence[TextJob], BaseException], None],
        on_restart: Callable[[str], None],
    ):
        self.cond = cond
        self._wake_all = wake_all
        self.workers = workers
        self.inference_timeout_s = inference_timeout_s
        self.record = record
        self._take_batch = take_batch
        self._run_batch = run_batch
        self._fail_jobs = fail_jobs
        self._on_restart = on_restart
        self.running: dict[int, RunningBatch] = {}  # by slot
        self.exited: set[int] = set()  # slots whose thread ended unexpectedly
        self.stopping = False
        self._generations = [0] * workers  # the live thread's generation, by slot
        self._generation_counter = 0
        self._batch_counter = 0
        self._started = False
        self._watchdog: threading.Thread | None = None

    def start(self) -> None:
        """Start a thread per slot and the watchdog (idempotent)."""
        with self.cond:
            if self._started:
                return
            self._started = True
            for slot in range(self.workers):
                self._spawn_locked(slot)
        self._watchdog = threading.Thread(target=self._watchdog_main, name="embedlab-watchdog", daemon=True)
        self._watchdog.start()

    def stop(self) -> list[RunningBatch]:
        """Tell every thread to leave; returns the batches still running (their jobs are the caller's to fail)."""
        with self.cond:
            self.stopping = True
            running = list(self.running.values())
            self._wake_all()
        return running

    def join_watchdog(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the watchdog thread to end after :meth:`stop`."""
        if self._watchdog is not None:
            self._watchdog.join(timeout)

    def busy_s(self, now: float) -> float | None:
        """Seconds the longest-running current batch has run (call under the lock), or None when all idle."""
        started = [batch.started for batch in self.running.values()]
        return now - min(started) if started else None

    def settle(self, running: RunningBatch) -> bool:
        """Under the lock: mark ``running`` finished; False if the watchdog abandoned it (its jobs failed already)."""
        if self.running.get(running.slot) is not running:
            return False
        del self.running[running.slot]
        return True

    # -- threads --------------------------------------------------------------------------------------

    def _spawn_locked(self, slot: int) -> None:
        self._generation_counter += 1
        generation = self._generation_counter
        self._generations[slot] = generation
        self.exited.discard(slot)
        thread = threading.Thread(
            target=self._worker_main,
            args=(slot, generation),
            name=f"embedlab-worker-{slot}-{generation}",
            daemon=True,
        )
        thread.start()

    def _next_batch(self, slot: int, generation: int) -> RunningBatch | None:
        """Wait for and take the next batch; None when this thread must leave (stopping or replaced)."""
        with self.cond:
            items: list[WorkItem] = []
            while not items:
                if self.stopping or generation != self._generations[slot]:
                    return None
                items = self._take_batch()
                if not items:
                    self.cond.wait()
            self._batch_counter += 1
            running = RunningBatch(self._batch_counter, slot, generation, time.monotonic(), items)
            self.running[slot] = running
            for item in items:
                if item.job.started_at is None:
                    item.job.started_at = running.started
            self._wake_all()
            return running

    def _worker_main(self, slot: int, generation: int) -> None:
        try:
            while (running := self._next_batch(slot, generation)) is not None:
                self._run_batch(running)
        except BaseException:  # the thread ends here; the watchdog replaces it (logged, not re-raised)
            log.exception("the inference worker thread ended with an exception")
        finally:  # a normal exit (stop, replaced) runs no batch; an abnormal one fails the batch it ran
            orphans: list[TextJob] = []
            with self.cond:
                if generation == self._generations[slot]:
                    self.exited.add(slot)
                    running_now = self.running.get(slot)
                    if running_now is not None and running_now.generation == generation:
                        del self.running[slot]
                        orphans = running_now.jobs()
                self._wake_all()
            if orphans:
                died = WorkerUnavailableError("the inference worker died while running a batch; it is being replaced")
                self._fail_jobs(orphans, died)

    def _watchdog_main(self) -> None:
        timeout = self.inference_timeout_s
        with self.cond:
            while not self.stopping:
                if self.exited:
                    self._restart_locked(min(self.exited), "dead", "the inference worker thread ended unexpectedly")
                    continue
                if not self.running:
                    self.cond.wait()
                    continue
                running = min(self.running.values(), key=lambda batch: batch.started)
                overdue = running.started + timeout - time.monotonic()
                if overdue > 0:
                    self.cond.wait(overdue)
                    continue
                if self.running.get(running.slot) is running:
                    n = len(running.items)
                    message = f"the inference worker is stuck: a batch of {n} segments ran over {timeout:g} s"
                    self._restart_locked(running.slot, "stuck", message)
                    error = WorkerUnavailableError(message, retry_after=max(1, math.ceil(timeout)))
                    self._fail_jobs(running.jobs(), error)

    def _restart_locked(self, slot: int, reason: str, message: str) -> None:
        log.error("%s; starting a new worker", message)
        self.running.pop(slot, None)
        self.record.restart(message)
        self._spawn_locked(slot)
        self._wake_all()
        self._on_restart(reason)
