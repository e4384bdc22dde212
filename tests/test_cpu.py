from __future__ import annotations

import os

from embedlab.cpu import available_cores


def test_available_cores_within_affinity() -> None:
    cores = available_cores()
    assert 1 <= cores <= len(os.sched_getaffinity(0))


def test_respects_a_narrowed_affinity_mask() -> None:
    original = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(original)})
        assert available_cores() == 1
    finally:
        os.sched_setaffinity(0, original)
