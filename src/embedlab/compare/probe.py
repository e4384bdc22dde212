"""The measuring half of ``compare``, run in a FRESH process per model (``python -m embedlab.compare.probe``).

One process per (model, backend) keeps their memory and speed apart: the resident peak is this model's
alone (interpreter, runtime, weights, the batches it ran), and no other model's threads or caches run
beside it. The parent writes a JSON job on stdin and reads one JSON object from stdout; on an embedlab
error the object is ``{"error": message}`` and the exit code 3.

In order, on the loaded model (the ``auto`` backend unless the job names another):

1. lengths: every text's full token length → the share over the model's max tokens and the tokens lost;
2. throughput: one warm-up call, then ``rounds`` timed ``embed`` calls of the speed texts (the engine's
   own batching, sorted by length) → real tokens (special tokens in, padding out) per second, median;
3. latency: ``queries`` single-text calls, one after another → p50 / p95 milliseconds;
4. quality (a data set given): the eval's headline score for each output dimension and precision asked;
5. memory: the process's resident high-water mark (``VmHWM``) after all of it.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from typing import Any


def _lengths(embedder: Any, texts: list[str]) -> dict[str, Any]:
    lengths = embedder.count_tokens(texts)
    limit = embedder.spec.max_tokens
    over = lengths > limit
    return {
        "texts": len(texts),
        "tokens": int(lengths.sum()),
        "truncated_texts": int(over.sum()),
        "truncated_share": float(over.mean()) if len(texts) else 0.0,
        "tokens_lost": int((lengths[over] - limit).sum()),
        "tokens_lost_share": float((lengths[over] - limit).sum() / max(1, int(lengths.sum()))),
    }


def _throughput(embedder: Any, texts: list[str], rounds: int) -> dict[str, Any]:
    embedder.embed(texts[: min(len(texts), 64)])  # warm-up: runtime kernels, thread pools
    rates: list[float] = []
    tokens = 0
    for _ in range(rounds):
        started = time.perf_counter()
        report = embedder.embed_with_report(texts)
        seconds = time.perf_counter() - started
        tokens = report.total_tokens
        rates.append(tokens / seconds if seconds > 0 else 0.0)
    return {"tokens_per_s": statistics.median(rates), "rounds_tokens_per_s": rates, "speed_tokens": tokens}


def _latency(embedder: Any, queries: list[str]) -> dict[str, Any]:
    embedder.embed(queries[:1])
    times: list[float] = []
    for query in queries:
        started = time.perf_counter()
        embedder.embed([query])
        times.append((time.perf_counter() - started) * 1000.0)
    ordered = sorted(times)
    return {
        "query_p50_ms": statistics.median(ordered),
        "query_p95_ms": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))],
        "queries": len(ordered),
    }


def _quality(embedder: Any, job: dict[str, Any]) -> list[dict[str, Any]]:
    from embedlab.eval.task import load_eval_task, score_grid

    task = load_eval_task(job["data"], job.get("data_limit"))
    points = score_grid(embedder, task, job["dimensions"], job["precisions"], int(job.get("rescore", 0)))
    return [point.to_dict() for point in points]


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Measure one model; see the module docstring for the steps and what each field means."""
    from embedlab.engine.loader import load
    from embedlab.inspect.memory import peak_rss_bytes, rss_bytes
    from embedlab.settings import EngineSettings

    settings = EngineSettings(**job["settings"])
    started = time.perf_counter()
    embedder = load(settings=settings)
    out: dict[str, Any] = {
        "backend": embedder.backend.name,
        "backend_auto": embedder.calibration.summary() if embedder.calibration is not None else None,
        "load_s": time.perf_counter() - started,
        "rss_after_load_bytes": rss_bytes(),
    }
    out.update(_lengths(embedder, job["texts"]))
    out.update(_throughput(embedder, job["speed_texts"], int(job["rounds"])))
    out.update(_latency(embedder, job["query_texts"]))
    out["quality"] = _quality(embedder, job) if job.get("data") else []
    out["peak_rss_bytes"] = peak_rss_bytes()
    return out


def main() -> None:
    """Read a job from stdin, print the result as JSON on stdout (exit 3 with ``{"error": ...}`` on failure)."""
    from embedlab.errors import EmbedlabError

    job = json.loads(sys.stdin.read())
    try:
        result = run_job(job)
    except EmbedlabError as exc:
        sys.stdout.write(json.dumps({"error": str(exc), "type": type(exc).__name__}) + "\n")
        sys.exit(3)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
