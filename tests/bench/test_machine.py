"""The machine description every benchmark report carries."""

from __future__ import annotations

import platform
from pathlib import Path

from embedlab.bench.machine import machine_info
from embedlab.cpu import available_cores
from embedlab.version import __version__


def test_machine_info_names_the_cpu_cores_and_versions() -> None:
    info = machine_info()
    assert info["cores_available"] == available_cores()
    assert info["python"] == platform.python_version()
    assert info["embedlab"] == __version__
    cpuinfo = Path("/proc/cpuinfo")
    text = cpuinfo.read_text(encoding="utf-8") if cpuinfo.is_file() else ""
    cpu_lines = [line for line in text.splitlines() if line.startswith("model name")]
    if cpu_lines:
        assert info["cpu"] == cpu_lines[0].split(":", 1)[1].strip()
    for library in ("numpy", "torch", "onnxruntime"):
        assert isinstance(info[library], str) and info[library][0].isdigit()
