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


@pytest.fixture(scope="session")
def scifact_slice(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 judged SciFact test queries, their judged documents and 30 other documents, in BEIR layout."""
    from .helpers import slice_scifact

    return slice_scifact(shared_data / "scifact", tmp_path_factory.mktemp("scifact"), n_queries=20, n_other_docs=30)


@pytest.fixture(scope="session")
def scifact_slice_report(default_model: Any, scifact_slice: Path) -> Any:
    """``evaluate_retrieval`` of the default model (torch) on :func:`scifact_slice`, run once per session."""
    from embedlab.eval.beir import load_beir
    from embedlab.eval.retrieval import evaluate_retrieval

    return evaluate_retrieval(default_model, load_beir(scifact_slice), corpus_chunk_size=32)
