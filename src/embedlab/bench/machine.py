"""What machine a benchmark ran on: CPU model, cores, platform and library versions."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

from embedlab.backends.threads import available_cores


def machine_info() -> dict[str, Any]:
    """CPU model, cores, platform and library versions."""

    import numpy
    import torch

    from embedlab.version import __version__

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import onnxruntime

        ort_version: str | None = onnxruntime.__version__
    except ImportError:
        ort_version = None
    return {
        "cpu": cpu,
        "cores_available": available_cores(),
        "logical_cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "torch": torch.__version__,
        "onnxruntime": ort_version,
        "embedlab": __version__,
    }
