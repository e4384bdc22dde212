"""Shared fixtures: tiny random-weight BERT models (fast) and the real default model (slow, loaded once)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from smalldata import write_beir_dir, write_sts_file, write_texts_file
from tinymodel import build_tiny_bert, build_tiny_cross_encoder

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep exported graphs and caches of the test run out of the user's cache directory."""
    import os

    old = os.environ.get("EMBEDLAB_CACHE_DIR")
    os.environ["EMBEDLAB_CACHE_DIR"] = str(tmp_path_factory.mktemp("embedlab-cache"))
    yield
    if old is None:
        os.environ.pop("EMBEDLAB_CACHE_DIR", None)
    else:
        os.environ["EMBEDLAB_CACHE_DIR"] = old


def _built_once(
    tmp_path_factory: pytest.TempPathFactory, build: Callable[..., Path], prefix: str
) -> Callable[..., Path]:
    """A factory that runs ``build(directory, **options)`` once per distinct options and reuses the directory."""
    built: dict[str, Path] = {}

    def make(**options: Any) -> Path:
        key = repr(sorted(options.items()))
        if key not in built:
            built[key] = build(tmp_path_factory.mktemp(prefix), **options)
        return built[key]

    return make


@pytest.fixture(scope="session")
def make_tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Factory: ``make_tiny_bert(**options)`` builds (once per distinct options) a tiny model dir."""
    return _built_once(tmp_path_factory, build_tiny_bert, "tiny-bert")


@pytest.fixture(scope="session")
def tiny_bert_dir(make_tiny_bert: Callable[..., Path]) -> Path:
    """A tiny BERT (hidden 32, 2 layers, mean pooling, normalised, max_seq_length 64)."""
    return make_tiny_bert()


@pytest.fixture(scope="session")
def make_tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Factory: ``make_tiny_cross_encoder(**options)`` builds (once per distinct options) a tiny cross-encoder dir."""
    return _built_once(tmp_path_factory, build_tiny_cross_encoder, "tiny-ce")


@pytest.fixture(scope="session")
def tiny_cross_encoder_dir(make_tiny_cross_encoder: Callable[..., Path]) -> Path:
    """A tiny cross-encoder saved by sentence-transformers' CrossEncoder (one label, sigmoid, max_length 64)."""
    return make_tiny_cross_encoder()


@pytest.fixture(scope="session")
def default_model() -> Any:
    """The real packaged all-MiniLM-L6-v2 on the exact torch fp32 backend, loaded once per test session."""
    import embedlab

    return embedlab.load(backend="torch")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip with a reason when this checkout has none."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def dead_pid() -> int:
    """The PID of a process that has exited and been reaped: ``os.kill(pid, 0)`` finds no such process."""
    import subprocess

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture(scope="session")
def sts_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small STS file the tiny models tokenise (see :mod:`smalldata`)."""
    return write_sts_file(tmp_path_factory.mktemp("sts"))


@pytest.fixture(scope="session")
def beir_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small BEIR directory (see :mod:`smalldata`)."""
    return write_beir_dir(tmp_path_factory.mktemp("beir"))


@pytest.fixture(scope="session")
def texts_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 texts of known token lengths (see :mod:`smalldata`)."""
    return write_texts_file(tmp_path_factory.mktemp("texts"))
