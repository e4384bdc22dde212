"""Health: the status of a snapshot, the record of what happened, and the probe's round trips."""

from __future__ import annotations

import asyncio

from embedlab.engine.serving.health import HealthProbe, HealthRecord, WorkerHealth, health_status
from embedlab.errors import WorkerUnavailableError


def status(record: HealthRecord, **changes: object) -> str:
    values: dict[str, object] = dict(stopping=False, dead=False, busy_s=None, inference_timeout_s=1.0)
    values.update(changes)
    return health_status(record=record, **values)  # type: ignore[arg-type]


def test_status_words_most_serious_first() -> None:
    record = HealthRecord()
    assert status(record) == "starting"
    record.ready = True
    assert status(record) == "ok"
    record.failure("boom")
    assert status(record) == "failing" and record.last_error == "boom"
    record.success(5.0)
    assert status(record) == "ok" and record.last_success_at == 5.0
    assert status(record, busy_s=0.5) == "ok"
    assert status(record, busy_s=1.5) == "stuck"
    assert status(record, busy_s=1.5, dead=True) == "dead"
    assert status(record, dead=True, stopping=True) == "stopped"
    record.restart("stuck")
    assert record.restarts == 1 and status(record) == "failing"


class Workers:
    """A snapshot source whose state the probe's round trip changes, as a real worker's batch does."""

    def __init__(self, age: float | None, fail: bool = False):
        self.age = age
        self.fail = fail
        self.trips = 0

    def snapshot(self) -> WorkerHealth:
        ok = self.age is not None
        return WorkerHealth("ok" if ok else "failing", self.age, None, None, 0, 0, 0)

    async def round_trip(self) -> None:
        self.trips += 1
        await asyncio.sleep(0.01)
        if self.fail:
            raise WorkerUnavailableError("no round trip")
        self.age = 0.0


def test_a_recent_batch_proves_health_without_a_probe() -> None:
    workers = Workers(age=1.0)
    probe = HealthProbe(workers.snapshot, workers.round_trip, max_age_s=10.0)
    assert asyncio.run(probe.check()).status == "ok" and workers.trips == 0


def test_stale_health_runs_one_probe_shared_by_concurrent_checks() -> None:
    workers = Workers(age=None)
    probe = HealthProbe(workers.snapshot, workers.round_trip, max_age_s=10.0)

    async def main() -> list[WorkerHealth]:
        return list(await asyncio.gather(*(probe.check() for _ in range(5))))

    results = asyncio.run(main())
    assert workers.trips == 1 and all(r.status == "ok" for r in results)


def test_a_failed_probe_reports_the_snapshot_as_it_is() -> None:
    workers = Workers(age=None, fail=True)
    probe = HealthProbe(workers.snapshot, workers.round_trip, max_age_s=10.0)
    assert asyncio.run(probe.check()).status == "failing" and workers.trips == 1
