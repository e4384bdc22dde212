"""The thread-to-event-loop bridge: one asyncio future for many thread futures."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future

import pytest

from embedlab.engine.serving.bridge import gather_thread_futures


def test_completes_when_every_thread_future_has() -> None:
    async def main() -> None:
        futures: list[Future[int]] = [Future() for _ in range(3)]
        waiter = gather_thread_futures(asyncio.get_running_loop(), futures)
        threads = [threading.Thread(target=f.set_result, args=(i,)) for i, f in enumerate(futures[:2])]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        await asyncio.sleep(0)
        assert not waiter.done()
        threading.Thread(target=futures[2].set_result, args=(2,)).start()
        await asyncio.wait_for(waiter, 5)

    asyncio.run(main())


def test_fails_with_the_first_error_and_leaves_shared_futures_alone() -> None:
    async def main() -> None:
        futures: list[Future[int]] = [Future(), Future()]
        waiter = gather_thread_futures(asyncio.get_running_loop(), futures)
        threading.Thread(target=futures[1].set_exception, args=(RuntimeError("batch failed"),)).start()
        with pytest.raises(RuntimeError, match="batch failed"):
            await asyncio.wait_for(waiter, 5)
        assert not futures[0].done() and not futures[0].cancelled()

    asyncio.run(main())


def test_no_futures_is_done_at_once() -> None:
    async def main() -> None:
        assert gather_thread_futures(asyncio.get_running_loop(), []).done()

    asyncio.run(main())
