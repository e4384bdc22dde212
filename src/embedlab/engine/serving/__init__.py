"""The serving engine: dynamic batching of concurrent requests onto shared inference workers.

The batcher serves one model of either kind through :mod:`.model` (:class:`BatchModel`): an
:class:`~embedlab.engine.embedder.Embedder` (``embed``) or a :class:`~embedlab.engine.rerank.Reranker`
(``rerank``, ``predict``). Modules, in the order a request meets them:

- :mod:`.model` — what the batcher needs of a model;
- :mod:`.admission` — the gate that bounds requests in flight (429 + Retry-After beyond it);
- :mod:`.jobs` — an item (a text, or a pair) being computed (:class:`TextJob`), its queued segments, a request's claim,
  and the in-flight table that de-duplicates items requested twice at once;
- :mod:`.queue` — the pure token-budget queue: enqueue, cancel, compact, assemble a batch;
- :mod:`.workers` — inference worker threads by slot, and the watchdog that replaces a stuck or dead one;
- :mod:`.bridge` — one asyncio future for many thread futures;
- :mod:`.health` — health snapshots and the probe behind ``/health``;
- :mod:`.observer` — the events the server turns into metrics;
- :mod:`.batcher` — :class:`DynamicBatcher`, which wires them together.
"""

from embedlab.engine.serving.batcher import DynamicBatcher, EmbedOutcome
from embedlab.engine.serving.health import HealthStatus, WorkerHealth
from embedlab.engine.serving.model import BatchModel
from embedlab.engine.serving.observer import BatcherObserver

__all__ = ["BatchModel", "BatcherObserver", "DynamicBatcher", "EmbedOutcome", "HealthStatus", "WorkerHealth"]
