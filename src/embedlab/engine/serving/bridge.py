"""The bridge from worker threads to the event loop: one asyncio future for many thread futures."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any


def gather_thread_futures(loop: asyncio.AbstractEventLoop, futures: Sequence[Future[Any]]) -> asyncio.Future[None]:
    """An asyncio future (of ``loop``) that completes when every thread future has, or fails with the first error.

    The thread futures may be shared with other requests, so they are never cancelled from here; a
    cancelled asyncio future simply stops listening.
    """
    done: asyncio.Future[None] = loop.create_future()
    if not futures:
        done.set_result(None)
        return done
    remaining = [len(futures)]
    lock = threading.Lock()

    def settle(error: BaseException | None) -> None:
        if done.done():
            return
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)

    def on_done(future: Future[Any]) -> None:
        error = future.exception()
        with lock:
            remaining[0] -= 1
            last = remaining[0] == 0
        if error is not None or last:
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting any more
                loop.call_soon_threadsafe(settle, error)

    for future in futures:
        future.add_done_callback(on_done)
    return done
