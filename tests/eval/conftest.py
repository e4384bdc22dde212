"""Fixtures for the eval tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .helpers import write_beir


@pytest.fixture
def beir_writer(tmp_path: Path) -> Callable[..., Path]:
    """``beir_writer(name, corpus, queries, qrels, **options)`` writes a BEIR folder under tmp_path."""

    def write(name: str, corpus: Any, queries: Any, qrels: Any, **options: Any) -> Path:
        return write_beir(tmp_path / name, corpus, queries, qrels, **options)

    return write
