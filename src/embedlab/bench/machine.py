"""What machine a benchmark ran on: CPU model, cores, platform and library versions."""

from __future__ import annotations

import os
import platform
from typing import Any

from embedlab.cpu import available_cores, cpu_flags, cpu_model


def machine_info() -> dict[str, Any]:
    """CPU model, cores, platform and library versions."""

    import numpy
    import torch

    from embedlab.version import __version__

    try:
        import onnxruntime

        ort_version: str | None = onnxruntime.__version__
    except ImportError:
        ort_version = None
    return {
        "cpu": cpu_model(),
        "cpu_flags": sorted(cpu_flags() & {"avx512_bf16", "amx_bf16", "amx_int8", "avx512_vnni", "avx512f", "avx2"}),
        "cores_available": available_cores(),
        "logical_cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "torch": torch.__version__,
        "onnxruntime": ort_version,
        "embedlab": __version__,
    }
