"""The measuring half of ``plan``'s batch-size sweep, run in a FRESH process (``python -m embedlab.plan.probe``).

A fresh process is what ``embedlab embed`` or ``serve`` will be, so its resident memory is an honest
stand-in: interpreter, torch, the loaded model, and the batch being computed. The parent writes a JSON
job on stdin and reads one JSON object from stdout.

For each batch size b (ascending), the probe:

1. measures the worst case the plan's settings allow, a batch of b sequences of exactly
   ``max_tokens`` tokens: heap trimmed, ``VmHWM`` reset, one ``encode_segments`` call (forward pass and
   pooling), then ``VmHWM`` is the process's peak resident memory and the call's time the worst-case
   latency (see :mod:`embedlab.inspect.memory`);
2. measures throughput on the sample texts (cycled to at least b of them), batched the way the engine
   batches them with ``max_batch_size=b``, ``max_batch_tokens=b × max_tokens``, after one warm-up batch.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Run one sweep; see the module docstring. Returns ``{"baseline_rss": .., "results": [...]}``."""
    from embedlab.engine.batch_plan import plan_batches
    from embedlab.engine.loader import load
    from embedlab.engine.tokenize import tokenize_texts
    from embedlab.inspect.memory import PeakMemory, rss_bytes, trim_heap
    from embedlab.settings import EngineSettings

    settings = EngineSettings(**job["settings"])
    embedder = load(settings=settings)
    texts: list[str] = list(job["texts"])
    max_tokens = int(job["max_tokens"])
    long_input = job.get("long_input", "truncate")
    filler = "the cat sat on the mat . " * max_tokens
    trim_heap()
    baseline = rss_bytes()
    results: list[dict[str, Any]] = []
    for size in sorted({int(b) for b in job["batch_sizes"]}):
        worst = tokenize_texts(embedder.tokenizer, [filler] * size, max_tokens, "truncate").segments
        embedder.encode(worst[:1])  # warm the kernels for this shape family
        with PeakMemory() as memory:
            started = time.perf_counter()
            embedder.encode(worst)
            latency = time.perf_counter() - started
        del worst

        run_texts = [texts[i % len(texts)] for i in range(max(len(texts), size))]
        prepared = embedder.prepare(run_texts, embedder.resolve(max_tokens=max_tokens, long_input=long_input))
        segments = prepared.segments
        batches = plan_batches([len(s.ids) for s in segments], size * max_tokens, size)
        embedder.encode([segments[i] for i in batches[0]])  # warm-up, not timed
        started = time.perf_counter()
        for batch in batches:
            embedder.encode([segments[i] for i in batch])
        seconds = time.perf_counter() - started
        tokens = sum(len(s.ids) for s in segments)
        results.append(
            {
                "batch_size": size,
                "texts": len(run_texts),
                "tokens": tokens,
                "batches": len(batches),
                "seconds": seconds,
                "texts_per_second": len(run_texts) / seconds if seconds > 0 else 0.0,
                "tokens_per_second": tokens / seconds if seconds > 0 else 0.0,
                "worst_case_seq_len": max_tokens,
                "worst_case_latency_s": latency,
                "rss_before_bytes": memory.before,
                "peak_rss_bytes": memory.peak,
                "memory_method": memory.method,
            }
        )
    return {"baseline_rss_bytes": baseline, "backend": embedder.backend.name, "results": results}


def main() -> None:
    """Read a job from stdin, write the result (or ``{"error": ...}`` and exit 3) as JSON on stdout."""
    from embedlab.errors import EmbedlabError

    job = json.loads(sys.stdin.read())
    try:
        result = run_job(job)
    except EmbedlabError as exc:
        print(json.dumps({"error": str(exc), "type": type(exc).__name__}))
        sys.exit(3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
