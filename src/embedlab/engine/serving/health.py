"""Health of the inference workers: what happened last, a snapshot's status, and the probe behind ``/health``.

A snapshot is ``ok`` only when the workers are alive, none is stuck, warm-up is done and the last batch
succeeded. :class:`HealthProbe` proves it with a real round trip through the queue when no batch has
succeeded recently, and never runs two probes at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from embedlab.errors import EmbedlabError

log = logging.getLogger(__name__)

HealthStatus = Literal["ok", "starting", "stuck", "dead", "failing", "stopped"]


@dataclass(frozen=True)
class WorkerHealth:
    """A snapshot of the inference workers.

    Attributes:
        status: ``ok``; ``starting`` (warm-up not done); ``stuck`` (a batch over the inference
            timeout); ``dead`` (a worker thread ended); ``failing`` (the last batch raised);
            ``stopped``.
        last_success_age_s: seconds since a batch last succeeded, or None if none has.
        busy_s: seconds the longest-running current batch has run, or None when every worker idles.
        last_error: message of the last failure, or None.
        restarts: workers replaced after being stuck or dead.
        queue_segments: segments waiting for inference.
        in_flight_requests: requests admitted and not yet answered.
        workers: inference worker slots.
    """

    status: HealthStatus
    last_success_age_s: float | None
    busy_s: float | None
    last_error: str | None
    restarts: int
    queue_segments: int
    in_flight_requests: int
    workers: int = 1


@dataclass
class HealthRecord:
    """What the workers did last (mutated under the batcher's lock).

    Attributes:
        ready: warm-up succeeded.
        last_success_at: monotonic time a batch last succeeded, or None.
        last_ok: whether the last batch (or worker event) went well.
        last_error: message of the last failure.
        restarts: workers replaced so far.
    """

    ready: bool = False
    last_success_at: float | None = None
    last_ok: bool = True
    last_error: str | None = None
    restarts: int = 0

    def success(self, now: float) -> None:
        """A batch succeeded at monotonic time ``now``."""
        self.last_success_at = now
        self.last_ok = True

    def failure(self, message: str) -> None:
        """A batch failed."""
        self.last_ok = False
        self.last_error = message

    def restart(self, message: str) -> None:
        """A worker was replaced after ``message``."""
        self.failure(message)
        self.restarts += 1


def health_status(
    *, stopping: bool, dead: bool, busy_s: float | None, inference_timeout_s: float, record: HealthRecord
) -> HealthStatus:
    """The status word of a snapshot, most serious first: stopped, dead, stuck, starting, failing, ok."""
    if stopping:
        return "stopped"
    if dead:
        return "dead"
    if busy_s is not None and busy_s > inference_timeout_s:
        return "stuck"
    if not record.ready:
        return "starting"
    if not record.last_ok:
        return "failing"
    return "ok"


class HealthProbe:
    """Health proven by a recent successful batch, else by one real round trip shared by concurrent checks.

    Args:
        snapshot: the current :class:`WorkerHealth` (no round trip).
        round_trip: sends a text through the queue and a worker, raising on failure.
        max_age_s: a successful batch younger than this proves health without a probe.
    """

    def __init__(
        self, snapshot: Callable[[], WorkerHealth], round_trip: Callable[[], Awaitable[None]], max_age_s: float
    ):
        self._snapshot = snapshot
        self._round_trip = round_trip
        self.max_age_s = max_age_s
        self._probe: asyncio.Task[bool] | None = None

    async def check(self) -> WorkerHealth:
        """A snapshot, ``ok`` only if a batch succeeded within ``max_age_s`` or the probe just did."""
        snapshot = self._snapshot()
        if snapshot.status in ("stuck", "dead", "starting", "stopped"):
            return snapshot
        fresh = snapshot.last_success_age_s is not None and snapshot.last_success_age_s <= self.max_age_s
        if snapshot.status == "ok" and fresh:
            return snapshot
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(self._probe_once())
        await asyncio.shield(self._probe)
        return self._snapshot()

    async def _probe_once(self) -> bool:
        try:
            await self._round_trip()
        except EmbedlabError as exc:
            log.warning("health probe failed: %s", exc)
            return False
        return True
