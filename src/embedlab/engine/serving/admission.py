"""Admission: a bounded count of requests in flight that refuses fast (429 + Retry-After) beyond its limit.

The Retry-After a refused client gets is the queue's drain time at the rate batches have been
finishing (:class:`DrainRate`), 1 to 60 seconds.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Iterator

from embedlab.errors import OverloadedError

RETRY_AFTER_MAX_S = 60


class DrainRate:
    """An exponential moving average of segments computed per second, and the wait it implies.

    Not locked: the batcher updates it under its own lock; a read of a float is atomic in Python.
    """

    def __init__(self, smoothing: float = 0.2):
        self.smoothing = smoothing
        self.segments_per_s = 0.0

    def observe(self, segments: int, seconds: float) -> None:
        """A batch of ``segments`` took ``seconds``."""
        rate = segments / max(seconds, 1e-6)
        if self.segments_per_s == 0:
            self.segments_per_s = rate
        else:
            self.segments_per_s = (1 - self.smoothing) * self.segments_per_s + self.smoothing * rate

    def retry_after(self, queued: int) -> int:
        """Whole seconds until ``queued`` segments would be computed at the current rate, 1 to 60."""
        rate = self.segments_per_s
        wait = queued / rate if rate > 0 else 1.0
        return int(min(RETRY_AFTER_MAX_S, max(1, math.ceil(wait))))


class AdmissionGate:
    """Counts requests in flight; :meth:`admit` refuses beyond ``limit`` with :class:`OverloadedError`.

    Args:
        limit: requests admitted at once.
        retry_after: seconds a refused client should wait (called only when refusing).
        on_change: called after every admission and release (the batcher wakes its waiters).
    """

    def __init__(self, limit: int, retry_after: Callable[[], int], on_change: Callable[[], None] | None = None):
        self.limit = limit
        self._retry_after = retry_after
        self._on_change = on_change
        self._admitted = 0
        self._lock = threading.Lock()

    @property
    def admitted(self) -> int:
        """Requests admitted and not yet released."""
        return self._admitted

    @contextlib.contextmanager
    def admit(self) -> Iterator[None]:
        """Hold one place for the duration of the block.

        Raises:
            OverloadedError: ``limit`` requests are in flight already (with ``retry_after`` seconds).
        """
        with self._lock:
            if self._admitted >= self.limit:
                raise OverloadedError(
                    f"too many concurrent requests (limit {self.limit}); retry shortly",
                    retry_after=self._retry_after(),
                )
            self._admitted += 1
        self._changed()
        try:
            yield
        finally:
            with self._lock:
                self._admitted -= 1
            self._changed()

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()
