"""Process-level tuning of the serving process, applied once before its threads start."""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_ARENA_MAX = -8  # glibc's mallopt parameter number for the arena limit


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas at ``arenas`` unless ``MALLOC_ARENA_MAX`` is already set; True if applied.

    glibc gives each thread that allocates its own arena (up to 8 per core), and memory freed in one arena
    is not reused by another. A server's request threads, event loop and inference worker then hold
    several partly empty heaps. Must run before those threads start. No-op on other C libraries.
    """
    if arenas < 1 or "MALLOC_ARENA_MAX" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_ARENA_MAX, int(arenas)))
