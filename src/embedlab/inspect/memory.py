"""Measuring the peak memory of a piece of work on the CPU.

PyTorch's CPU allocator hands memory straight to ``malloc``, which ``tracemalloc`` does not see, so
embedlab measures the process's resident set instead (Linux only):

1. ``malloc_trim(0)`` gives freed heap pages back to the kernel, so memory freed earlier cannot be
   silently reused and hide a peak;
2. writing ``5`` to ``/proc/self/clear_refs`` resets the kernel's resident high-water mark ``VmHWM``
   to the current resident size ``VmRSS``;
3. the work runs;
4. ``VmHWM`` is the peak resident size during the work; ``VmHWM - VmRSS(before)`` is what the work
   added at its peak (bytes).

The numbers are whole-process: another thread allocating at the same time would be counted too.
Where the reset is not possible (not Linux, or ``clear_refs`` not writable) :class:`PeakMemory`
reports ``None`` instead of a wrong number.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int | None:
    try:
        text = _STATUS.read_text()
    except OSError:
        return None
    match = re.search(rf"^{field}:\s+(\d+)\s+kB", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def rss_bytes() -> int | None:
    """Resident set size of this process now (bytes), or None off Linux."""
    kib = _status_kib("VmRSS")
    return None if kib is None else kib * 1024


def peak_rss_bytes() -> int | None:
    """Resident high-water mark of this process since start or the last reset (bytes), or None."""
    kib = _status_kib("VmHWM")
    return None if kib is None else kib * 1024


def trim_heap() -> None:
    """Return freed heap memory to the kernel (glibc ``malloc_trim(0)``); a no-op elsewhere."""
    name = ctypes.util.find_library("c")
    if not name:
        return
    try:
        libc = ctypes.CDLL(name)
        libc.malloc_trim(ctypes.c_size_t(0))
    except (OSError, AttributeError):
        return


def reset_peak_rss() -> bool:
    """Reset ``VmHWM`` to the current resident size; True if the kernel accepted the reset."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


@dataclass
class PeakMemory:
    """Context manager measuring the resident-memory peak of the work inside it.

    Attributes (set on exit):
        before: resident bytes at entry (after trimming the heap).
        peak: resident high-water bytes during the work.
        added: ``peak - before``: bytes the work added at its peak; None when not measurable.
        method: how it was measured (for reports).
    """

    before: int | None = None
    peak: int | None = None
    added: int | None = None
    method: str = "VmHWM after /proc/self/clear_refs reset, heap trimmed first"

    def __enter__(self) -> PeakMemory:
        trim_heap()
        self.before = rss_bytes()
        if not reset_peak_rss():
            self.before = None
            self.method = "not measurable here (needs Linux /proc/self/clear_refs)"
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.before is None:
            return
        self.peak = peak_rss_bytes()
        if self.peak is not None:
            self.added = max(0, self.peak - self.before)
