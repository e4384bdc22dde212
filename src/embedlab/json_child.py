"""Run a measuring job in a fresh Python process: a JSON job on its stdin, one JSON object back on its stdout.

``plan`` (batch sizes) and ``compare`` (one process per model) measure in fresh processes, so that resident
memory and speed are the job's alone. The child is ``python -m MODULE``; it prints its result as the last
line of its stdout, or ``{"error": message, "type": error class}`` when it failed on purpose.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from embedlab.errors import BackendError


@dataclass(frozen=True)
class ChildResult:
    """What a child process gave back.

    Attributes:
        returncode: its exit status.
        result: the JSON object of its last stdout line (empty when there was none, or not JSON).
        stderr_tail: the last line of its stderr (``no output`` when empty).
    """

    returncode: int
    result: dict[str, Any]
    stderr_tail: str


def run_json_job(module: str, job: dict[str, Any], what: str, timeout_s: float | None = None) -> ChildResult:
    """Run ``python -m module`` with ``job`` as JSON on its stdin and read its answer.

    Args:
        module: the child's module, e.g. ``embedlab.compare.probe``.
        job: JSON-ready input.
        what: the job in words, for error messages (``measuring all-MiniLM-L6-v2``).
        timeout_s: seconds it may take (None: no limit).

    Raises:
        BackendError: the process could not start, or ran over ``timeout_s``.
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        done = subprocess.run(
            [sys.executable, "-m", module],
            input=json.dumps(job),
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BackendError(f"{what} took over {timeout_s:g} s") from exc
    except OSError as exc:
        raise BackendError(f"{what}: cannot start the measuring process: {exc}") from exc
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    try:
        result = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        result = {}
    if not isinstance(result, dict):
        result = {}
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return ChildResult(done.returncode, result, tail)
