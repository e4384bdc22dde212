"""Jobs, work items and the in-flight table of the serving engine."""

from __future__ import annotations

from embedlab.engine.serving.jobs import InflightTable, TextJob, attach_segments
from embedlab.engine.tokenize import Segment


def test_inflight_table_joins_then_forgets() -> None:
    table: InflightTable[str, list[int]] = InflightTable()
    first, created = table.join_or_create("k", lambda: [1])
    again, created_again = table.join_or_create("k", lambda: [2])
    assert created and not created_again and again is first
    table.discard("k", [1])  # another object: not removed
    assert len(table) == 1
    table.discard("k", first)
    assert len(table) == 0


def test_attach_segments_gives_each_job_its_windows_in_order() -> None:
    jobs = [TextJob(b"a"), TextJob(b"b")]
    segments = [
        Segment(0, [1, 5, 2], [0, 0, 0], 1),
        Segment(1, [1, 6, 7, 2], [0, 0, 0, 0], 2),
        Segment(1, [1, 8, 2], [0, 0, 0], 1),
    ]
    items = attach_segments(jobs, segments, [3, 7])
    assert [(item.job, item.window, item.length) for item in items] == [
        (jobs[0], 0, 3),
        (jobs[1], 0, 4),
        (jobs[1], 1, 3),
    ]
    assert [s.text_index for s in jobs[1].segments] == [0, 0]  # each job's windows combine on their own
    assert [s.ids for s in jobs[1].segments] == [[1, 6, 7, 2], [1, 8, 2]]
    assert jobs[0].remaining == 1 and jobs[1].remaining == 2
    assert jobs[1].rows == [None, None] and jobs[1].tokens == 7
    assert jobs[0].queued == 0  # nothing is queued until the queue takes the items
