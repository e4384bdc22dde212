from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

CODE = "from embedlab.server.process import limit_malloc_arenas; print(limit_malloc_arenas({}))"


def _run(arenas: int, **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    done = subprocess.run(
        [sys.executable, "-c", CODE.format(arenas)], env={**base, **env}, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt arenas are a glibc feature")
def test_arena_cap_is_applied_on_glibc() -> None:
    assert _run(2) == "True"


def test_arena_cap_leaves_an_explicit_setting_and_nonsense_alone() -> None:
    assert _run(2, MALLOC_ARENA_MAX="4") == "False"  # the user's own setting wins
    assert _run(0) == "False"
