"""Facts about this machine's CPU: the cores this process may really use, the model, the feature flags."""

from __future__ import annotations

import math
import os
from pathlib import Path


def _cgroup_cpu_limit() -> float | None:
    """CPUs allowed by a cgroup v2 (``cpu.max``) or v1 (``cfs_quota_us``) quota, or None."""
    v2 = Path("/sys/fs/cgroup/cpu.max")
    try:
        if v2.is_file():
            quota, period = v2.read_text().split()[:2]
            if quota != "max":
                return int(quota) / int(period)
            return None
        quota_file = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
        period_file = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
        if quota_file.is_file() and period_file.is_file():
            quota_us = int(quota_file.read_text())
            if quota_us > 0:
                return quota_us / int(period_file.read_text())
    except (OSError, ValueError):
        return None
    return None


def _physical_cores(cpus: set[int]) -> int:
    """Count distinct physical cores among logical CPUs (SMT siblings count once)."""
    seen: set[str] = set()
    for cpu in cpus:
        siblings = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list")
        try:
            seen.add(siblings.read_text().strip())
        except OSError:
            seen.add(str(cpu))
    return max(1, len(seen))


def available_cores() -> int:
    """Physical cores available to this process: affinity mask, SMT siblings and cgroup quota applied."""
    try:
        cpus = set(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return max(1, (os.cpu_count() or 2) // 2)
    cores = _physical_cores(cpus)
    limit = _cgroup_cpu_limit()
    if limit is not None:
        cores = min(cores, max(1, math.ceil(limit)))
    return max(1, cores)


def cpu_flags() -> frozenset[str]:
    """The CPU feature flags of this machine (``/proc/cpuinfo``; empty where it cannot be read)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or the platform's processor string."""
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def cpu_has_bf16() -> bool:
    """Whether this CPU has native bfloat16 matrix instructions (AVX512-BF16 or AMX-BF16)."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())
