"""The vector caches: LRU in memory, sqlite on disk (persistent, rebuilt when corrupt)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from embedlab.engine.cache import (
    CachedVector,
    MemoryLRUCache,
    SqliteVectorCache,
    TieredCache,
    build_cache,
    cache_key,
    model_identity,
)
from embedlab.errors import ConfigError

DIM = 8


def entry(seed: int, tokens: int = 5) -> CachedVector:
    return CachedVector(np.random.default_rng(seed).standard_normal(DIM).astype(np.float32), tokens)


def key(text: str, **options: object) -> bytes:
    base: dict[str, object] = {"prompt": "", "max_tokens": 64, "long_input": "truncate", "chunk_overlap": 32}
    base.update(options)
    return cache_key(model_identity("m", "abc", "onnx"), text, **base)  # type: ignore[arg-type]


def test_key_changes_with_every_option_that_changes_the_vector() -> None:
    reference = key("a text")
    assert key("a text") == reference and len(reference) == 32
    variants = [
        key("a text "),
        key("a text", prompt="query: "),
        key("a text", max_tokens=32),
        key("a text", long_input="chunk"),
        cache_key(
            model_identity("m", "abd", "onnx"),
            "a text",
            prompt="",
            max_tokens=64,
            long_input="truncate",
            chunk_overlap=32,
        ),
        cache_key(
            model_identity("m", "abc", "torch"),
            "a text",
            prompt="",
            max_tokens=64,
            long_input="truncate",
            chunk_overlap=32,
        ),
    ]
    assert len({reference, *variants}) == len(variants) + 1
    # the overlap only matters under chunk
    assert key("a text", chunk_overlap=8) == reference
    assert key("a text", long_input="chunk", chunk_overlap=8) != key("a text", long_input="chunk")
    # fields cannot bleed into each other
    assert key("b", prompt="a") != key("ab", prompt="")


def test_memory_lru_evicts_least_recently_used() -> None:
    cache = MemoryLRUCache(2)
    cache.put_many([(b"a", entry(1)), (b"b", entry(2))])
    assert cache.get_many([b"a"])[0] is not None  # a is now the most recent
    cache.put_many([(b"c", entry(3))])
    got = cache.get_many([b"a", b"b", b"c"])
    assert got[0] is not None and got[1] is None and got[2] is not None
    assert len(cache) == 2
    with pytest.raises(ConfigError, match="at least 1"):
        MemoryLRUCache(0)


def test_sqlite_cache_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "cache.sqlite"
    first = SqliteVectorCache(path, DIM)
    cut = CachedVector(entry(1).vector, 7, truncated=True)
    first.put_many([(b"k1", cut), (b"k2", entry(2))])
    first.close()
    second = SqliteVectorCache(path, DIM)
    got = second.get_many([b"k1", b"k2", b"missing"])
    assert got[0] is not None and (got[0].tokens, got[0].truncated) == (7, True)
    assert got[1] is not None and got[1].truncated is False
    np.testing.assert_array_equal(got[0].vector, entry(1).vector)
    assert got[2] is None and len(second) == 2 and second.rebuilds == 0


def test_corrupt_sqlite_file_is_rebuilt_never_trusted(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    cache = SqliteVectorCache(path, DIM)
    assert cache.rebuilds == 1 and len(cache) == 0
    cache.put_many([(b"k", entry(3))])
    assert cache.get_many([b"k"])[0] is not None


def test_sqlite_file_of_the_schema_before_the_truncated_column_is_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    raw = sqlite3.connect(path)
    raw.execute(
        "CREATE TABLE vectors (key BLOB PRIMARY KEY, tokens INTEGER NOT NULL, vector BLOB NOT NULL, created REAL)"
    )
    raw.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
    raw.execute("INSERT INTO meta VALUES ('dim', ?)", (str(DIM),))
    raw.execute("PRAGMA user_version=1")
    raw.commit()
    raw.close()
    cache = SqliteVectorCache(path, DIM)
    assert cache.rebuilds == 1
    cache.put_many([(b"k", entry(1))])
    assert cache.get_many([b"k"])[0] is not None


def test_sqlite_file_of_another_dimension_is_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    SqliteVectorCache(path, DIM).put_many([(b"k", entry(1))])
    other = SqliteVectorCache(path, DIM * 2)
    assert other.rebuilds == 1 and other.get_many([b"k"]) == [None]


def test_malformed_rows_are_dropped_not_returned(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    cache = SqliteVectorCache(path, DIM)
    cache.put_many([(b"good", entry(1))])
    raw = sqlite3.connect(path)
    raw.execute("INSERT INTO vectors VALUES (?, 3, 0, ?, 0)", (b"short", b"\x00" * 5))
    raw.execute("INSERT INTO vectors VALUES (?, 3, 0, ?, 0)", (b"nan", np.full(DIM, np.nan, dtype="<f4").tobytes()))
    raw.execute("INSERT INTO vectors VALUES (?, 3, 7, ?, 0)", (b"flag", np.zeros(DIM, dtype="<f4").tobytes()))
    raw.commit()
    raw.close()
    assert cache.get_many([b"short", b"nan", b"flag", b"good"])[:3] == [None, None, None]
    assert len(cache) == 1


def test_sqlite_cache_keeps_at_most_max_entries(tmp_path: Path) -> None:
    cache = SqliteVectorCache(tmp_path / "c.sqlite", DIM, max_entries=10)
    for batch in range(5):
        cache.put_many([(f"{batch}-{i}".encode(), entry(i)) for i in range(40)])
    assert len(cache) <= 10 + 40


def test_tiered_cache_promotes_disk_hits_to_memory(tmp_path: Path) -> None:
    disk = SqliteVectorCache(tmp_path / "c.sqlite", DIM)
    disk.put_many([(b"k", entry(1))])
    tiered = TieredCache(MemoryLRUCache(4), disk)
    assert len(tiered.memory) == 0
    assert tiered.get_many([b"k"])[0] is not None
    assert len(tiered.memory) == 1


def test_build_cache_follows_settings(tmp_path: Path) -> None:
    assert build_cache(0, None, DIM) is None
    assert isinstance(build_cache(5, None, DIM), MemoryLRUCache)
    assert isinstance(build_cache(0, tmp_path / "a.sqlite", DIM), SqliteVectorCache)
    assert isinstance(build_cache(5, tmp_path / "b.sqlite", DIM), TieredCache)
    with pytest.raises(ConfigError):
        build_cache(-1, None, DIM)
