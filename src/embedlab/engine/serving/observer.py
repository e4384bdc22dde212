"""What the batcher reports as it works: the observer protocol (the server turns events into metrics)."""

from __future__ import annotations

from typing import Protocol


class BatcherObserver(Protocol):
    """Receives engine events (the server turns them into Prometheus metrics)."""

    def on_batch(self, segments: int, real_tokens: int, padded_tokens: int, seconds: float, ok: bool) -> None:
        """A forward batch finished (or failed after ``seconds``)."""
        ...

    def on_cache(self, hits: int, misses: int, joined: int) -> None:
        """A request's cache look-up: texts found, texts to compute, texts joined to work in flight."""
        ...

    def on_dropped(self, segments: int) -> None:
        """Segments dropped before inference because nobody waits for them any more."""
        ...

    def on_restart(self, reason: str) -> None:
        """A worker was replaced (``stuck`` or ``dead``)."""
        ...


class NullObserver:
    """An observer that ignores every event."""

    def on_batch(self, segments: int, real_tokens: int, padded_tokens: int, seconds: float, ok: bool) -> None:
        """Ignored."""

    def on_cache(self, hits: int, misses: int, joined: int) -> None:
        """Ignored."""

    def on_dropped(self, segments: int) -> None:
        """Ignored."""

    def on_restart(self, reason: str) -> None:
        """Ignored."""
