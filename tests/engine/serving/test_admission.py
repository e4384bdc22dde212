"""Admission: the gate that refuses beyond its limit, and the drain-rate Retry-After."""

from __future__ import annotations

import pytest

from embedlab.engine.serving.admission import RETRY_AFTER_MAX_S, AdmissionGate, DrainRate
from embedlab.errors import OverloadedError


def test_gate_admits_up_to_its_limit_and_releases_on_exit() -> None:
    changes: list[int] = []
    gate = AdmissionGate(2, retry_after=lambda: 7, on_change=lambda: changes.append(gate.admitted))
    with gate.admit(), gate.admit():
        assert gate.admitted == 2
        with (
            pytest.raises(OverloadedError, match=r"too many concurrent requests \(limit 2\)") as refused,
            gate.admit(),
        ):
            pass
        assert refused.value.retry_after == 7
    assert gate.admitted == 0
    assert changes == [1, 2, 1, 0]


def test_gate_releases_when_the_block_raises() -> None:
    gate = AdmissionGate(1, retry_after=lambda: 1)
    with pytest.raises(ValueError), gate.admit():
        raise ValueError("boom")
    assert gate.admitted == 0


def test_drain_rate_turns_queue_depth_into_seconds() -> None:
    rate = DrainRate(smoothing=0.5)
    assert rate.retry_after(1000) == 1  # no measurement yet: one second
    rate.observe(100, 1.0)
    assert rate.segments_per_s == 100
    rate.observe(300, 1.0)
    assert rate.segments_per_s == 200  # moving average
    assert rate.retry_after(0) == 1 and rate.retry_after(450) == 3
    assert rate.retry_after(10**9) == RETRY_AFTER_MAX_S
