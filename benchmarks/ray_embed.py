"""Throughput of `embedlab embed --ray` with 1 and 2 workers next to the local path, on the same texts.

Run (as root, inside a loopback-only namespace so Ray stays on 127.0.0.1):

    flock /tmp/embedlab-heavy.lock unshare -n sh -c \
        "ip link set lo up && .venv/bin/python benchmarks/ray_embed.py --texts 20000"

Prints one line per configuration: texts, tokens, wall seconds, tokens/s, and the ratio to the local path.
"Wall" for Ray includes the actors' model loads; "steady" is tokens over the summed embedding seconds of
the workers divided by the number of workers (what a long job approaches).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from pathlib import Path

import embedlab
from embedlab.distributed import RayJobSettings, run_ray_embed
from embedlab.distributed.cluster import ensure_ray
from embedlab.settings import EngineSettings


def make_corpus(directory: Path, n: int, shards: int, seed: int = 0) -> list[str]:
    """Mixed-length English-like texts (5-120 words) in ``shards`` jsonl files; returns the texts in order."""
    rng = random.Random(seed)
    words = [
        "the",
        "of",
        "and",
        "a",
        "to",
        "in",
        "is",
        "was",
        "for",
        "on",
        "that",
        "with",
        "as",
        "by",
        "it",
        "at",
        "from",
        "his",
        "an",
        "were",
        "are",
        "which",
        "this",
        "be",
        "has",
        "or",
        "model",
        "text",
        "embedding",
        "vector",
        "search",
        "query",
        "document",
        "cluster",
        "worker",
        "token",
        "batch",
        "throughput",
        "latency",
    ]
    texts = [" ".join(rng.choices(words, k=rng.randint(5, 120))) for _ in range(n)]
    per = (n + shards - 1) // shards
    for s in range(shards):
        with (directory / f"shard-{s:03d}.jsonl").open("w", encoding="utf-8") as handle:
            for i in range(s * per, min(n, (s + 1) * per)):
                handle.write(json.dumps({"id": f"t{i}", "text": texts[i]}) + "\n")
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="model (default: the packaged all-MiniLM-L6-v2)")
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--texts", type=int, default=20000)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--rows-per-part", type=int, default=1000)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ray-bench-"))
    try:
        corpus = work / "corpus"
        corpus.mkdir()
        texts = make_corpus(corpus, args.texts, args.shards)
        cores = 2  # this machine; the local path gets every core, each Ray worker one
        settings = EngineSettings(model=args.model, backend=args.backend)

        started = time.perf_counter()
        local = embedlab.load(settings=settings.model_copy(update={"threads": cores}))
        load_s = time.perf_counter() - started
        result = local.embed_with_report(texts)
        local_wall = time.perf_counter() - started
        local_tps = result.total_tokens / local_wall
        print(
            f"local  {cores} threads: {len(texts)} texts, {result.total_tokens} tokens, "
            f"{local_wall:6.2f} s wall (model load {load_s:.2f} s): {local_tps:9,.0f} tokens/s  (1.00x)"
        )

        ensure_ray(None, num_cpus=cores)
        for workers in (1, 2):
            job = RayJobSettings(num_workers=workers, cpus_per_worker=cores / workers, rows_per_part=args.rows_per_part)
            started = time.perf_counter()
            report = run_ray_embed(corpus, work / f"out-{workers}", settings, job)
            wall = time.perf_counter() - started
            busy = sum(w.seconds for w in report.workers.values()) / max(1, len(report.workers))
            steady = report.tokens / busy if busy else 0.0
            print(
                f"ray    {workers} worker(s) x {cores // workers} CPU: {report.texts} texts, {report.tokens} tokens, "
                f"{wall:6.2f} s wall: {report.tokens / wall:9,.0f} tokens/s ({report.tokens / wall / local_tps:.2f}x); "
                f"steady {steady:9,.0f} tokens/s ({steady / local_tps:.2f}x)"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
