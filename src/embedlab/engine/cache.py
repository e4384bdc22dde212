"""Exact-match caches of text vectors: an LRU in memory and an optional sqlite file.

What is cached is a text's *combined* vector before Matryoshka truncation and normalisation: shape
(hidden,) float32, plus the number of tokens embedded and whether the text was cut at the token limit.
Matryoshka truncation and normalisation are applied per request afterwards, so one entry serves every
``dimensions`` / ``normalize`` a caller asks for.

The key is a SHA-256 digest of everything else that changes that vector (see :func:`cache_key`): the
model's identity (name, file fingerprint, backend), the prompt text, the token limit, the long-input
policy (and chunk overlap under ``chunk``) and the text itself.

A sqlite file (:class:`SqliteVectorCache`) survives restarts. It is checked when opened and rebuilt
from empty if it is corrupt, of another schema, or holds rows of the wrong shape; it is never trusted
blindly. Disk eviction is first-in-first-out (reads do not write), memory eviction is LRU.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from embedlab.arrays import FloatArray
from embedlab.errors import ConfigError

log = logging.getLogger(__name__)

CACHE_FORMAT = "1"  # bump when what a cached vector means changes


@dataclass(frozen=True)
class CachedVector:
    """A cached text: its combined vector (hidden,) float32, the tokens embedded for it, and whether it was cut
    at the token limit (so a cache hit reports truncation as the first answer did)."""

    vector: FloatArray
    tokens: int
    truncated: bool = False


def cache_key(
    model_identity: str,
    text: str,
    *,
    prompt: str,
    max_tokens: int,
    long_input: str,
    chunk_overlap: int | None,
) -> bytes:
    """The 32-byte key of one text under one model and set of options.

    Args:
        model_identity: model name + file fingerprint + backend (see :func:`model_identity`).
        text: the caller's text, before the prompt is added.
        prompt: the prompt text prepended ("" for none).
        max_tokens: the token limit in force (special tokens included).
        long_input: ``truncate``, ``error`` or ``chunk``.
        chunk_overlap: tokens shared by chunk windows; only meaningful (and only keyed) under ``chunk``.
    """
    overlap = str(chunk_overlap) if long_input == "chunk" else "-"
    return _digest((CACHE_FORMAT, model_identity, prompt, str(max_tokens), long_input, overlap), text)


def pair_key(model_identity: str, query: str, document: str, *, max_tokens: int, truncate: bool) -> bytes:
    """The 32-byte key of one (query, document) pair of a cross-encoder: never equal to a text's :func:`cache_key`.

    The batcher uses it to share a pair computed for two requests at once; rerank results are not cached.
    """
    policy = "truncate" if truncate else "error"
    return _digest((CACHE_FORMAT, "pair", model_identity, str(max_tokens), policy, query), document)


def _digest(parts: Sequence[str], text: str) -> bytes:
    """SHA-256 of the length-prefixed ``parts``, then ``text``."""
    digest = hashlib.sha256()
    for part in parts:
        encoded = part.encode("utf-8", errors="surrogatepass")
        digest.update(len(encoded).to_bytes(8, "little"))
        digest.update(encoded)
    digest.update(text.encode("utf-8", errors="surrogatepass"))
    return digest.digest()


def model_identity(name: str, fingerprint: str, backend: str) -> str:
    """A string naming exactly which weights and runtime make the vectors (backends differ numerically)."""
    return f"{name}|{fingerprint}|{backend}"


class VectorCache(Protocol):
    """What the batcher needs from a cache. Implementations are thread-safe."""

    def get_many(self, keys: Sequence[bytes]) -> list[CachedVector | None]:
        """The cached entry of each key, or None where absent."""
        ...

    def put_many(self, items: Sequence[tuple[bytes, CachedVector]]) -> None:
        """Store entries (replacing any with the same key)."""
        ...

    def __len__(self) -> int:
        """Number of entries held."""
        ...

    def close(self) -> None:
        """Flush and release files (a memory cache has none)."""
        ...


class MemoryLRUCache:
    """A thread-safe LRU of at most ``max_entries`` vectors in memory (about dim × 4 + 200 bytes each).

    Raises:
        ConfigError: ``max_entries`` below 1.
    """

    def __init__(self, max_entries: int):
        if max_entries < 1:
            raise ConfigError(f"cache size must be at least 1 entry, got {max_entries}")
        self.max_entries = max_entries
        self._data: OrderedDict[bytes, CachedVector] = OrderedDict()
        self._lock = threading.Lock()

    def get_many(self, keys: Sequence[bytes]) -> list[CachedVector | None]:
        """The entry of each key, or None; hits become most recently used."""
        out: list[CachedVector | None] = []
        with self._lock:
            for key in keys:
                entry = self._data.get(key)
                if entry is not None:
                    self._data.move_to_end(key)
                out.append(entry)
        return out

    def put_many(self, items: Sequence[tuple[bytes, CachedVector]]) -> None:
        """Store entries, evicting the least recently used beyond ``max_entries``."""
        with self._lock:
            for key, entry in items:
                self._data[key] = entry
                self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    def close(self) -> None:
        """Nothing to release."""


class SqliteVectorCache:
    """A persistent cache in one sqlite file, for vectors of exactly ``dim`` float32 values.

    The file is checked when opened (``PRAGMA quick_check``, schema version, stored dimension); a file
    that fails any check is deleted and rebuilt empty, with a warning logged. A row whose blob has the
    wrong size or holds non-finite values is deleted when read, never returned. A database error while
    serving (e.g. the file was damaged underneath us) rebuilds the file once and carries on.

    Args:
        path: the sqlite file (created with its parent directory if missing).
        dim: floats per vector (the model's hidden size).
        max_entries: rows kept at most; the oldest rows are deleted beyond it.
    """

    SCHEMA_VERSION = 2  # 2: the truncated column

    def __init__(self, path: str | Path, dim: int, max_entries: int = 1_000_000):
        if max_entries < 1:
            raise ConfigError(f"disk cache size must be at least 1 entry, got {max_entries}")
        self.path = Path(path).expanduser()
        self.dim = int(dim)
        self.max_entries = max_entries
        self.rebuilds = 0
        self._lock = threading.Lock()
        self._puts_since_trim = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the cache directory {self.path.parent}: {exc}") from exc
        self._conn = self._open_checked()

    # -- opening and rebuilding -------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=5.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def _is_sound(self, conn: sqlite3.Connection) -> bool:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if version == 0 and not tables:
            conn.execute(
                "CREATE TABLE vectors (key BLOB PRIMARY KEY, tokens INTEGER NOT NULL, truncated INTEGER NOT NULL, "
                "vector BLOB NOT NULL, created REAL NOT NULL)"
            )
            conn.execute("CREATE INDEX vectors_created ON vectors(created)")
            conn.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
            conn.execute("INSERT INTO meta VALUES ('dim', ?)", (str(self.dim),))
            conn.execute(f"PRAGMA user_version={self.SCHEMA_VERSION}")
            return True
        if version != self.SCHEMA_VERSION or not {"vectors", "meta"} <= tables:
            log.warning("cache file %s has another schema (version %s); rebuilding it", self.path, version)
            return False
        if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            log.warning("cache file %s failed its integrity check; rebuilding it", self.path)
            return False
        row = conn.execute("SELECT value FROM meta WHERE name='dim'").fetchone()
        if row is None or row[0] != str(self.dim):
            log.warning("cache file %s holds vectors of another size; rebuilding it", self.path)
            return False
        return True

    def _remove_files(self) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def _open_checked(self) -> sqlite3.Connection:
        for attempt in range(2):
            conn: sqlite3.Connection | None = None
            try:
                conn = self._connect()
                if self._is_sound(conn):
                    return conn
            except sqlite3.DatabaseError as exc:
                log.warning("cache file %s is unreadable (%s); rebuilding it", self.path, exc)
            if conn is not None:
                conn.close()
            if attempt == 0:
                self.rebuilds += 1
                try:
                    self._remove_files()
                except OSError as exc:
                    raise ConfigError(f"cache file {self.path} is corrupt and cannot be removed: {exc}") from exc
        raise ConfigError(f"cannot create a sqlite cache at {self.path}")

    def _rebuild_locked(self, exc: sqlite3.Error) -> None:
        log.warning("cache file %s failed while serving (%s); rebuilding it", self.path, exc)
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()
        self.rebuilds += 1
        self._remove_files()
        self._conn = self._open_checked()

    # -- the cache protocol ------------------------------------------------------------------------

    def _decode(self, blob: bytes, tokens: int, truncated: int) -> CachedVector | None:
        if not isinstance(blob, bytes) or len(blob) != self.dim * 4 or tokens < 0 or truncated not in (0, 1):
            return None
        vector = np.frombuffer(blob, dtype="<f4").astype(np.float32)
        if not np.isfinite(vector).all():
            return None
        return CachedVector(vector, int(tokens), bool(truncated))

    def get_many(self, keys: Sequence[bytes]) -> list[CachedVector | None]:
        """The entry of each key, or None; malformed rows are deleted and reported as absent."""
        if not keys:
            return []
        found: dict[bytes, CachedVector] = {}
        bad: list[bytes] = []
        with self._lock:
            try:
                for start in range(0, len(keys), 500):
                    part = list(keys[start : start + 500])
                    marks = ",".join("?" * len(part))
                    rows = self._conn.execute(
                        f"SELECT key, tokens, truncated, vector FROM vectors WHERE key IN ({marks})", part
                    ).fetchall()
                    for key, tokens, truncated, blob in rows:
                        entry = self._decode(blob, tokens, truncated)
                        if entry is None:
                            bad.append(key)
                        else:
                            found[bytes(key)] = entry
                if bad:
                    log.warning("dropping %d malformed rows from cache file %s", len(bad), self.path)
                    self._conn.executemany("DELETE FROM vectors WHERE key = ?", [(k,) for k in bad])
            except sqlite3.DatabaseError as exc:
                self._rebuild_locked(exc)
                return [None] * len(keys)
        return [found.get(key) for key in keys]

    def put_many(self, items: Sequence[tuple[bytes, CachedVector]]) -> None:
        """Store entries in one transaction; delete the oldest rows beyond ``max_entries`` now and then."""
        rows = []
        now = time.time()
        for key, entry in items:
            vector = np.ascontiguousarray(entry.vector, dtype="<f4")
            if vector.shape != (self.dim,):
                raise ConfigError(f"cache holds vectors of {self.dim} floats, got shape {vector.shape}")
            rows.append((key, int(entry.tokens), int(entry.truncated), vector.tobytes(), now))
        if not rows:
            return
        with self._lock:
            try:
                self._conn.execute("BEGIN")
                self._conn.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?, ?)", rows)
                self._puts_since_trim += len(rows)
                if self._puts_since_trim >= max(64, self.max_entries // 100):
                    self._puts_since_trim = 0
                    self._conn.execute(
                        "DELETE FROM vectors WHERE key IN (SELECT key FROM vectors ORDER BY created DESC "
                        "LIMIT -1 OFFSET ?)",
                        (self.max_entries,),
                    )
                self._conn.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                self._rebuild_locked(exc)

    def __len__(self) -> int:
        with self._lock:
            try:
                return int(self._conn.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])
            except sqlite3.DatabaseError as exc:
                self._rebuild_locked(exc)
                return 0

    def close(self) -> None:
        """Checkpoint the write-ahead log into the file and close it (later calls fail)."""
        with self._lock:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.close()


class TieredCache:
    """Memory LRU in front of a persistent cache: reads fill memory, writes go to both."""

    def __init__(self, memory: MemoryLRUCache, disk: SqliteVectorCache):
        self.memory = memory
        self.disk = disk

    def get_many(self, keys: Sequence[bytes]) -> list[CachedVector | None]:
        """Look in memory first, then on disk for the rest."""
        found = self.memory.get_many(keys)
        missing = [i for i, entry in enumerate(found) if entry is None]
        if missing:
            from_disk = self.disk.get_many([keys[i] for i in missing])
            promote = []
            for i, entry in zip(missing, from_disk, strict=True):
                if entry is not None:
                    found[i] = entry
                    promote.append((keys[i], entry))
            if promote:
                self.memory.put_many(promote)
        return found

    def put_many(self, items: Sequence[tuple[bytes, CachedVector]]) -> None:
        """Store in memory and on disk."""
        self.memory.put_many(items)
        self.disk.put_many(items)

    def __len__(self) -> int:
        return len(self.memory)

    def close(self) -> None:
        """Close the disk cache."""
        self.disk.close()


def build_cache(entries: int, path: str | Path | None, dim: int, disk_entries: int = 1_000_000) -> VectorCache | None:
    """The cache the settings ask for: None when ``entries`` is 0 and no path, memory, disk, or both."""
    if entries < 0:
        raise ConfigError(f"cache size must be ≥ 0 entries, got {entries}")
    disk = SqliteVectorCache(path, dim, disk_entries) if path is not None else None
    if entries == 0:
        return disk
    memory = MemoryLRUCache(entries)
    return TieredCache(memory, disk) if disk is not None else memory
