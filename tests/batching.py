"""For tests of the dynamic batcher: an observer that keeps what it is told, and a batcher run around a test body."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from embedlab.engine.cache import VectorCache
from embedlab.engine.serving import DynamicBatcher
from embedlab.settings import BatcherSettings
from faultybackend import FaultyBackend


class Recorder:
    """A BatcherObserver that keeps what it is told."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, bool]] = []
        self.cache: list[tuple[int, int, int]] = []
        self.dropped = 0
        self.restarts: list[str] = []

    def on_batch(self, segments: int, real_tokens: int, padded_tokens: int, seconds: float, ok: bool) -> None:
        assert padded_tokens >= real_tokens or not ok
        self.batches.append((segments, ok))

    def on_cache(self, hits: int, misses: int, joined: int) -> None:
        self.cache.append((hits, misses, joined))

    def on_dropped(self, segments: int) -> None:
        self.dropped += segments

    def on_restart(self, reason: str) -> None:
        self.restarts.append(reason)


def serve(
    model: Any,
    body: Callable[[DynamicBatcher], Coroutine[Any, Any, None]],
    *,
    backend: FaultyBackend | None = None,
    cache: VectorCache | None = None,
    observer: Recorder | None = None,
    **limits: Any,
) -> None:
    """Start a batcher for ``model`` (limits as :class:`BatcherSettings` fields), warm it up, run ``body``, stop it.

    ``backend``: a held :class:`FaultyBackend` under the model, released before the batcher stops.
    """
    batcher = DynamicBatcher(model, BatcherSettings(**limits), cache=cache, observer=observer)
    batcher.start()

    async def main() -> None:
        await batcher.warm_up()
        await body(batcher)

    try:
        asyncio.run(main())
    finally:
        if backend is not None:
            backend.release()
        batcher.stop()
