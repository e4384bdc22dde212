"""The cache effect: the same texts twice through the server's dynamic batcher with an in-memory cache."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from embedlab.engine.embedder import Embedder


def measure_cache_effect(embedder: Embedder, texts: Sequence[str], request_texts: int) -> dict[str, Any]:
    """The same texts twice through the engine's dynamic batcher with an in-memory cache.

    Returns ``{"status": "measured", "first_s", "second_s", "ratio", "hits"...}``, where ``ratio`` is how
    many times faster the second pass (all hits) is.
    """
    from embedlab.engine.cache import MemoryLRUCache
    from embedlab.engine.serving import DynamicBatcher

    batcher = DynamicBatcher(embedder, cache=MemoryLRUCache(max(1, 2 * len(texts))))
    requests = [list(texts[i : i + request_texts]) for i in range(0, len(texts), request_texts)]

    async def twice() -> tuple[float, float, int]:
        await batcher.warm_up()
        t0 = time.perf_counter()
        for request in requests:
            await batcher.embed(request)
        t1 = time.perf_counter()
        hits = 0
        for request in requests:
            hits += (await batcher.embed(request)).cache_hits
        return t1 - t0, time.perf_counter() - t1, hits

    batcher.start()
    try:
        first, second, hits = asyncio.run(twice())
    finally:
        batcher.stop()
    return {
        "status": "measured",
        "backend": embedder.backend.name,
        "texts": len(texts),
        "requests": len(requests),
        "first_s": first,
        "second_s": second,
        "hits": hits,
        "ratio": first / second if second > 0 else None,
    }
