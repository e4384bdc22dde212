"""A vector cache in Redis, shared by every server replica (:class:`embedlab.engine.cache.VectorCache`).

Entries are the same as the local caches' (a text's combined vector before truncation / normalisation,
its token count and whether it was cut) under the same 32-byte keys (:func:`embedlab.engine.cache.cache_key`),
so replicas of one model and options share hits. A Redis value is ``tokens`` (uint32 little-endian), one byte
``truncated`` (0 or 1) and ``dim`` float32 little-endian values; a value of the wrong size or with non-finite
numbers is treated as absent, never returned. Size is bounded by Redis itself: run it with ``maxmemory`` and
``maxmemory-policy allkeys-lru`` (each entry is about dim × 4 + 100 bytes), and optionally a TTL here.

A Redis that fails while serving never fails a request: look-ups count as misses and writes are
dropped, with a warning logged (rate-limited to one per ``warn_every_s``).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from embedlab.engine.cache import CachedVector
from embedlab.errors import BackendUnavailableError, ConfigError

log = logging.getLogger(__name__)

KEY_PREFIX = b"embedlab:v2:"  # v2: the truncated byte
_HEADER_BYTES = 5  # tokens (4) and truncated (1) before the vector


class RedisVectorCache:
    """Vectors of exactly ``dim`` float32 values in Redis at ``url`` (``redis://HOST:PORT/DB``).

    Args:
        url: the Redis URL.
        dim: floats per vector (the model's hidden size).
        ttl_s: seconds an entry lives (None: until Redis evicts it).
        timeout_s: socket connect / read timeout in seconds.
        warn_every_s: at most one warning per this many seconds while Redis fails.

    Raises:
        BackendUnavailableError: the redis client is not installed.
        ConfigError: a malformed URL, or Redis does not answer PING within ``timeout_s``.
    """

    def __init__(
        self,
        url: str,
        dim: int,
        ttl_s: int | None = None,
        timeout_s: float = 2.0,
        warn_every_s: float = 30.0,
    ) -> None:
        try:
            import redis
        except ImportError as exc:
            raise BackendUnavailableError(f"the Redis cache needs: pip install 'embedlab[ray]' ({exc})") from exc
        self.url = url
        self.dim = int(dim)
        self.ttl_s = ttl_s
        self.warn_every_s = warn_every_s
        self._last_warning = 0.0
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        try:
            self._client: Any = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
            self._client.ping()
        except ValueError as exc:
            raise ConfigError(f"malformed Redis URL {url!r}: {exc}") from exc
        except self._errors as exc:
            raise ConfigError(f"cannot reach Redis at {url}: {exc}") from exc

    def _warn(self, what: str, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._last_warning >= self.warn_every_s:
            self._last_warning = now
            log.warning("Redis cache at %s failed to %s (%s); carrying on without it", self.url, what, exc)

    def _decode(self, value: bytes | None) -> CachedVector | None:
        if value is None or len(value) != _HEADER_BYTES + self.dim * 4 or value[4] not in (0, 1):
            return None
        vector = np.frombuffer(value, dtype="<f4", offset=_HEADER_BYTES).astype(np.float32)
        if not np.isfinite(vector).all():
            return None
        return CachedVector(vector, int.from_bytes(value[:4], "little"), bool(value[4]))

    def get_many(self, keys: Sequence[bytes]) -> list[CachedVector | None]:
        """The entry of each key, or None (absent, malformed, or Redis failing)."""
        if not keys:
            return []
        try:
            values = self._client.mget([KEY_PREFIX + key for key in keys])
        except self._errors as exc:
            self._warn("read", exc)
            return [None] * len(keys)
        return [self._decode(value) for value in values]

    def put_many(self, items: Sequence[tuple[bytes, CachedVector]]) -> None:
        """Store entries in one round trip (dropped, with a warning, if Redis fails).

        Raises:
            ConfigError: a vector of the wrong shape (a programming error, not a Redis failure).
        """
        payload = []
        for key, entry in items:
            vector = np.ascontiguousarray(entry.vector, dtype="<f4")
            if vector.shape != (self.dim,):
                raise ConfigError(f"cache holds vectors of {self.dim} floats, got shape {vector.shape}")
            header = int(entry.tokens).to_bytes(4, "little") + bytes([int(entry.truncated)])
            payload.append((KEY_PREFIX + key, header + vector.tobytes()))
        if not payload:
            return
        try:
            pipe = self._client.pipeline(transaction=False)
            for key, value in payload:
                pipe.set(key, value, ex=self.ttl_s)
            pipe.execute()
        except self._errors as exc:
            self._warn("write", exc)

    def __len__(self) -> int:
        """Entries under embedlab's prefix (a SCAN: O(keys in the database); for tests and dashboards)."""
        try:
            return sum(1 for _ in self._client.scan_iter(match=KEY_PREFIX + b"*", count=1000))
        except self._errors as exc:
            self._warn("count", exc)
            return 0

    def close(self) -> None:
        """Close the connection pool."""
        with contextlib.suppress(*self._errors):
            self._client.close()
