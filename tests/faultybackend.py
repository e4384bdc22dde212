"""A real backend that wraps another one and can hold, fail or hang its batches, recording what it ran.

Tests use it to see exactly which token ids reached the model and in which batches, and to inject
the failures a server must survive (a runtime that raises, a forward pass that never returns).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from embedlab.arrays import FloatArray
from embedlab.backends.base import Backend, EncodedBatch


class FaultyBackend:
    """Runs ``inner`` unless told to fail; every batch's real token ids are recorded in ``batches``.

    ``fail = True`` makes batches raise RuntimeError, as a failing runtime would; ``die = True`` makes the
    next batch raise SystemExit, which ends the worker thread itself. :meth:`hold` makes
    every batch wait inside forward until :meth:`release` (held past the server's inference timeout,
    that is a hung worker).
    """

    def __init__(self, inner: Backend):
        self.inner = inner
        self.name = inner.name
        self.device = inner.device
        self.fail = False
        self.die = False
        self.batches: list[list[list[int]]] = []
        self._gate = threading.Event()
        self._gate.set()
        self._entered = threading.Condition()
        self._calls = 0

    def forward(self, batch: EncodedBatch) -> FloatArray:
        """Record the batch's sequences, then fail, or wait while held, then run."""
        rows = [
            [int(t) for t, m in zip(ids, mask, strict=True) if m]
            for ids, mask in zip(batch.input_ids, batch.attention_mask, strict=True)
        ]
        with self._entered:
            self.batches.append(rows)
            self._calls += 1
            self._entered.notify_all()
        if self.fail:
            raise RuntimeError("injected backend failure")
        if self.die:  # once: a BaseException that ends the calling thread, as a crashing extension might
            self.die = False
            raise SystemExit("injected worker death")
        self._gate.wait()
        return np.asarray(self.inner.forward(batch), dtype=np.float32)

    def hold(self) -> None:
        """Make batches wait inside forward until :meth:`release`."""
        self._gate.clear()

    def release(self) -> None:
        """Let waiting (or hanging) batches go on."""
        self._gate.set()

    def wait_for_calls(self, n: int, timeout: float = 10.0) -> bool:
        """Block until ``forward`` has been entered ``n`` times in total; False on timeout."""
        with self._entered:
            return self._entered.wait_for(lambda: self._calls >= n, timeout)

    @property
    def calls(self) -> int:
        """Batches received so far."""
        return self._calls

    def sequences(self) -> list[list[int]]:
        """Every sequence run so far, in order."""
        return [row for batch in self.batches for row in batch]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
