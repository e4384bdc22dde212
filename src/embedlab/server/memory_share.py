"""Each served model's share of the server's resident memory, measured as it loads.

Models load one after the other at start. Around each load (and again around each warm-up) the
server returns freed heap pages to the kernel (glibc ``malloc_trim``) and reads its resident set size
(``VmRSS`` from ``/proc/self/status``); a model's share is what the RSS grew by. Memory the load
touched only for a while and freed is not counted; what stays is: the weights (or the pages of a
memory-mapped weights file that were read), the runtime's session and arena, the tokenizer. The first
model of a runtime also carries the runtime's own libraries (importing ONNX Runtime or PyTorch), which
a second model of the same runtime then no longer pays. Off Linux the shares are None.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from embedlab.inspect.memory import rss_bytes, trim_heap

T = TypeVar("T")
__all__ = ["METHOD", "ModelMemory", "measure_growth", "resident_bytes", "rss_bytes"]

METHOD = (
    "RSS growth of the process (VmRSS after malloc_trim) while each model loaded and warmed up at start, "
    "in load order; the first model of a runtime also carries the runtime's libraries"
)


@dataclass
class ModelMemory:
    """A model's measured share of the resident memory, bytes (None: not measured).

    Attributes:
        load_bytes: RSS growth while the model loaded (None when it was loaded before the app was built).
        warm_up_bytes: RSS growth while its warm-up texts ran through a worker.
    """

    load_bytes: int | None = None
    warm_up_bytes: int | None = None

    @property
    def share_bytes(self) -> int | None:
        """Load and warm-up growth together (the load's alone when the warm-up was not measured)."""
        if self.load_bytes is None:
            return None
        return self.load_bytes + (self.warm_up_bytes or 0)


def resident_bytes() -> int | None:
    """The process's resident bytes now, after giving freed heap pages back (None off Linux)."""
    trim_heap()
    return rss_bytes()


def measure_growth(work: Callable[[], T]) -> tuple[T, int | None]:
    """Run ``work``; return its result and how many bytes the resident set grew by (None if unmeasurable)."""
    before = resident_bytes()
    result = work()
    after = resident_bytes()
    return result, (None if before is None or after is None else after - before)
