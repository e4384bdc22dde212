"""The token-budget queue, pure: enqueue, cancel, compact, assemble (no threads, no clock)."""

from __future__ import annotations

from embedlab.engine.serving.jobs import TextJob, WorkItem
from embedlab.engine.serving.queue import COMPACT_MIN_DEAD, BatchLimits, TokenBudgetQueue
from embedlab.engine.tokenize import Segment


def limits(**changes: object) -> BatchLimits:
    values: dict[str, object] = dict(
        max_batch_tokens=64, max_batch_size=8, bucket_ratio=None, max_attention_cells=None, assembly_window=100
    )
    values.update(changes)
    return BatchLimits(**values)  # type: ignore[arg-type]


def item(length: int, job: TextJob | None = None) -> WorkItem:
    job = job or TextJob(None)
    return WorkItem(job, 0, Segment(0, [1] * length, [0] * length, length), length)


def test_enqueue_counts_live_segments_per_job_and_respects_capacity() -> None:
    queue = TokenBudgetQueue(limits(), capacity=3)
    job = TextJob(None)
    queue.enqueue([item(4, job), item(4, job)])
    assert queue.live == 2 and job.queued == 2 and len(queue) == 2
    assert queue.fits(1) and not queue.fits(2)


def test_assemble_takes_the_oldest_and_its_length_neighbours_within_the_budget() -> None:
    queue = TokenBudgetQueue(limits(max_batch_tokens=40), capacity=100)
    items = [item(10), item(30), item(10), item(12), item(10)]
    queue.enqueue(items)
    # by length: [30], [12, 10, 10] (3 x 12 = 36; a fourth row would pad to 48), [10]; the oldest is a 10
    assert queue.assemble() == [items[3], items[0], items[2]]
    assert queue.assemble() == [items[1]]  # the next oldest
    assert queue.assemble() == [items[4]]
    assert queue.live == 0 and queue.assemble() == []
    assert all(i.job.queued == 0 for i in items)


def test_items_left_out_of_a_batch_keep_their_place_in_line() -> None:
    queue = TokenBudgetQueue(limits(max_batch_tokens=32, bucket_ratio=1.05), capacity=100)
    long, short_a, short_b = item(30), item(3), item(3)
    queue.enqueue([long, short_a, short_b])
    assert queue.assemble() == [long]
    assert queue.assemble() == [short_a, short_b]


def test_bucketing_and_the_attention_budget_split_batches() -> None:
    queue = TokenBudgetQueue(limits(max_batch_tokens=1000, bucket_ratio=1.05), capacity=100)
    queue.enqueue([item(20), item(5), item(20)])
    assert [len(queue.assemble()), len(queue.assemble())] == [2, 1]  # 20s together, the 5 alone
    cells = TokenBudgetQueue(limits(max_batch_tokens=1000, max_attention_cells=20 * 20 * 2), capacity=100)
    cells.enqueue([item(20) for _ in range(5)])
    assert [len(cells.assemble()) for _ in range(3)] == [2, 2, 1]


def test_assembly_window_bounds_what_is_considered() -> None:
    queue = TokenBudgetQueue(limits(max_batch_tokens=1000, assembly_window=2), capacity=100)
    queue.enqueue([item(5) for _ in range(5)])
    assert [len(queue.assemble()) for _ in range(3)] == [2, 2, 1]


def test_cancelled_jobs_are_skipped_then_compacted() -> None:
    queue = TokenBudgetQueue(limits(), capacity=10_000)
    gone, stays = TextJob(None), TextJob(None)
    queue.enqueue([item(4, gone), item(4, stays), item(4, gone)])
    assert queue.cancel(gone) == 2 and gone.cancelled and gone.queued == 0
    assert queue.cancel(gone) == 0  # once
    assert queue.live == 1 and queue.dead == 2 and len(queue) == 3
    batch = queue.assemble()
    assert [i.job for i in batch] == [stays] and queue.dead == 0 and len(queue) == 0

    many = [TextJob(None) for _ in range(COMPACT_MIN_DEAD + 1)]
    queue.enqueue([item(4, job) for job in many])
    for job in many[:-1]:
        queue.cancel(job)
    assert len(queue) == COMPACT_MIN_DEAD + 1  # dead weight tolerated up to the threshold
    queue.cancel(many[-1])
    assert len(queue) == 0 and queue.dead == 0 and queue.live == 0  # then compacted away


def test_drain_empties_the_queue() -> None:
    queue = TokenBudgetQueue(limits(), capacity=10)
    job = TextJob(None)
    queue.enqueue([item(4, job), item(4, job)])
    assert len(queue.drain()) == 2
    assert queue.live == 0 and len(queue) == 0 and job.queued == 0
