"""embedlab vs sentence-transformers on one fixed corpus, measured side by side in one run.

Every contender embeds the same texts: a deterministic 2,000-text corpus of mixed lengths (about 30
tokens per text with all-MiniLM-L6-v2, some beyond its 256-token limit; see
``embedlab.sample_texts.generate_corpus``) or the texts of ``--corpus FILE``. The reference is
sentence-transformers on PyTorch fp32 at its best batch size: each of ``--st-batches`` runs as a
contender in the same rounds, and the fastest by median is the reference. Runs alternate between
contenders, and the order rotates every round, so machine noise hits all of them equally.

Printed per configuration: texts/s and real (non-padding) tokens/s as the median over ``--repeat``
runs with min-max, padded/real token ratio, throughput ratio vs sentence-transformers, batch-1
latency p50 of a short query and its speed-up vs sentence-transformers, the share of time embedlab
spends tokenising / in the model / pooling, and the cosine agreement of every text's vector with
sentence-transformers' (mean, worst, and how many texts fall below 0.9999).

    .venv/bin/python benchmarks/vs_sentence_transformers.py --backends torch,onnx --repeat 5
    flock /tmp/embedlab-heavy.lock .venv/bin/python benchmarks/vs_sentence_transformers.py --json out.json

The machine is whatever runs it: numbers from a shared or busy machine are noisy, ratios less so.
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import embedlab
from embedlab.backends import BACKENDS
from embedlab.cpu import available_cores
from embedlab.errors import EmbedlabError
from embedlab.sample_texts import corpus_lengths, generate_corpus, short_queries

EXACT_COSINE = 0.9999


@dataclass
class Contender:
    """One configuration under test.

    ``embed_corpus`` returns (vectors (n, dim) float32, padded tokens, timings in seconds or {}).
    ``embed_one`` embeds a single short text (batch-1 latency).
    """

    name: str
    detail: str
    embed_corpus: Callable[[], tuple[np.ndarray, int, dict[str, float]]]
    embed_one: Callable[[str], object]
    corpus_seconds: list[float] = field(default_factory=list)
    query_seconds: list[float] = field(default_factory=list)
    padded_tokens: int = 0
    timings: list[dict[str, float]] = field(default_factory=list)
    vectors: np.ndarray | None = None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model name or path (default: the packaged all-MiniLM-L6-v2)")
    parser.add_argument(
        "--backends", default="torch,onnx", help=f"embedlab backends, comma-separated, from: {', '.join(BACKENDS)}"
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds per contender (median, min-max shown)")
    parser.add_argument("--corpus", type=Path, default=None, help="texts file (.txt/.jsonl/.csv/.tsv/.parquet)")
    parser.add_argument("--text-field", default=None, help="field holding the text in --corpus (jsonl/csv/parquet)")
    parser.add_argument("--texts", type=int, default=2000, help="size of the generated corpus (no --corpus)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated corpus")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads for all (default: cores)")
    parser.add_argument(
        "--st-batches",
        default="16,32,64",
        help="sentence-transformers batch sizes (all timed; the best is the reference)",
    )
    parser.add_argument("--queries", type=int, default=40, help="short queries per round for batch-1 latency")
    parser.add_argument("--max-batch-tokens", type=int, default=None, help="embedlab token budget (default: engine's)")
    parser.add_argument("--json", type=Path, default=None, help="also write every measurement to this JSON file")
    args = parser.parse_args(argv)
    names = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in names if b not in BACKENDS]
    if not names or unknown:
        parser.error(f"unknown backend(s) {unknown or names}; choose from {', '.join(BACKENDS)}")
    args.backend_names = names
    try:
        args.st_batch_sizes = [int(b) for b in args.st_batches.split(",") if b.strip()]
    except ValueError:
        parser.error(f"--st-batches must be integers, got {args.st_batches!r}")
    if not args.st_batch_sizes or min(args.st_batch_sizes) < 1:
        parser.error("--st-batches must be positive integers")
    if args.repeat < 1 or args.queries < 1 or args.texts < 1:
        parser.error("--repeat, --queries and --texts must be at least 1")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    return args


def load_corpus(args: argparse.Namespace) -> tuple[list[str], str]:
    if args.corpus is None:
        return generate_corpus(args.texts, seed=args.seed), f"generated (n={args.texts}, seed={args.seed})"
    from embedlab.io.readers import read_texts

    table = read_texts(args.corpus, text_field=args.text_field, skip_empty=True)
    return table.texts, f"{args.corpus} (skipped {table.skipped} empty)"


def st_padded_tokens(texts: Sequence[str], lengths: Sequence[int], batch_size: int) -> int:
    """Padded tokens sentence-transformers computes: it sorts by -character length, batches, pads per batch."""
    order = np.argsort([-len(t) for t in texts], kind="stable")
    padded = 0
    for start in range(0, len(order), batch_size):
        chunk = [lengths[i] for i in order[start : start + batch_size]]
        padded += len(chunk) * max(chunk)
    return padded


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two (n, dim) arrays, in float64."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    return (a64 * b64).sum(1) / (np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1))


def machine_info(threads: int) -> dict[str, Any]:
    import onnxruntime
    import sentence_transformers
    import torch

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "cpu": cpu,
        "cores_available": available_cores(),
        "threads": threads,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "embedlab": embedlab.__version__,
        "commit": commit,
    }


def make_st(model_path: str, batch_size: int, st: Any, texts: list[str], lengths: list[int]) -> Contender:
    padded = st_padded_tokens(texts, lengths, batch_size)

    def run_corpus() -> tuple[np.ndarray, int, dict[str, float]]:
        vectors = st.encode(texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32), padded, {}

    def run_one(text: str) -> object:
        return st.encode([text], convert_to_numpy=True, show_progress_bar=False)

    return Contender(
        "sentence-transformers", f"torch fp32, batch {batch_size}", run_corpus, run_one, padded_tokens=padded
    )


def make_embedlab(args: argparse.Namespace, backend: str, texts: list[str]) -> Contender:
    overrides: dict[str, Any] = {}
    if args.max_batch_tokens is not None:
        overrides["max_batch_tokens"] = args.max_batch_tokens
    model = embedlab.load(args.model, backend=backend, threads=args.threads_used, **overrides)

    def run_corpus() -> tuple[np.ndarray, int, dict[str, float]]:
        report = model.embed_with_report(texts)
        return report.vectors, report.padded_tokens, dict(report.timings)

    def run_one(text: str) -> object:
        return model.embed([text])

    budget = model.settings.max_batch_tokens
    return Contender(f"embedlab {backend}", f"token budget {budget}", run_corpus, run_one)


def rounds(contenders: list[Contender], repeat: int, step: Callable[[Contender], None]) -> None:
    """``repeat`` rounds; in each, every contender runs once, the starting contender rotating."""
    for r in range(repeat):
        shift = r % len(contenders)
        for contender in contenders[shift:] + contenders[:shift]:
            step(contender)


def summarise(c: Contender, n_texts: int, real_tokens: int, ref: dict[str, float] | None) -> dict[str, Any]:
    tps = [n_texts / s for s in c.corpus_seconds]
    tok = [real_tokens / s for s in c.corpus_seconds]
    p50 = percentile(c.query_seconds, 50) * 1000
    row: dict[str, Any] = {
        "name": c.name,
        "detail": c.detail,
        "texts_per_s": {"median": statistics.median(tps), "min": min(tps), "max": max(tps)},
        "real_tokens_per_s": {"median": statistics.median(tok), "min": min(tok), "max": max(tok)},
        "padded_tokens": c.padded_tokens,
        "padded_over_real": c.padded_tokens / real_tokens,
        "corpus_seconds": c.corpus_seconds,
        "latency_ms": {
            "p50": p50,
            "p95": percentile(c.query_seconds, 95) * 1000,
            "p99": percentile(c.query_seconds, 99) * 1000,
            "samples": len(c.query_seconds),
        },
    }
    if c.timings:
        totals = {k: sum(t.get(k, 0.0) for t in c.timings) for k in ("tokenize", "model", "pool")}
        whole = sum(totals.values()) or 1.0
        row["time_share"] = {k: v / whole for k, v in totals.items()}
    if ref is not None:
        row["throughput_ratio"] = row["real_tokens_per_s"]["median"] / ref["tokens_per_s"]
        row["latency_speedup"] = ref["p50_ms"] / p50
    return row


def render(rows: list[dict[str, Any]], ref_name: str) -> str:
    head = (
        f"{'configuration':<24} {'detail':<20} {'texts/s (min-max)':>24} {'real tok/s':>10} {'pad/real':>8} "
        f"{'vs ST':>6} {'b1 p50 ms':>9} {'vs ST':>6} {'tok/model/pool %':>17} {'cos mean':>9} {'cos worst':>9} "
        f"{'<0.9999':>7}"
    )
    lines = [head, "-" * len(head)]
    for row in rows:
        t = row["texts_per_s"]
        share = row.get("time_share")
        shares = "/".join(f"{100 * share[k]:.0f}" for k in ("tokenize", "model", "pool")) if share else "-"
        cos = row.get("cosine")
        lines.append(
            f"{row['name']:<24} {row['detail']:<20} "
            f"{t['median']:>8.1f} ({t['min']:>6.1f}-{t['max']:>6.1f}) "
            f"{row['real_tokens_per_s']['median']:>10.0f} {row['padded_over_real']:>8.3f} "
            f"{row.get('throughput_ratio', 1.0):>5.2f}x {row['latency_ms']['p50']:>9.2f} "
            f"{row.get('latency_speedup', 1.0):>5.2f}x {shares:>17} "
            + (
                f"{cos['mean']:>9.6f} {cos['worst']:>9.6f} {cos['below_exact']:>7d}"
                if cos
                else f"{'(ref)' if 'throughput_ratio' not in row else '-':>9} {'':>9} {'':>7}"
            )
        )
    lines.append(f"ratios are against {ref_name}; 'vs ST' latency is its p50 / this p50 (higher is faster)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    import torch
    from sentence_transformers import SentenceTransformer

    args.threads_used = args.threads or available_cores()
    torch.set_num_threads(args.threads_used)
    spec = embedlab.load_spec(args.model)
    args.model_path = str(spec.path)
    texts, source = load_corpus(args)
    queries = short_queries(args.queries, seed=args.seed + 1)

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    log(f"loading {spec.name} for sentence-transformers and embedlab ({', '.join(args.backend_names)})")
    st = SentenceTransformer(args.model_path, device="cpu")
    st.max_seq_length = spec.max_tokens
    first = embedlab.load(args.model, backend="torch", threads=args.threads_used)
    full_lengths = corpus_lengths(first.tokenizer, texts)
    lengths = [min(n, spec.max_tokens) for n in full_lengths]
    real_tokens = int(sum(lengths))
    query_tokens = corpus_lengths(first.tokenizer, queries)
    del first

    log(f"corpus: {source}: {len(texts)} texts, {real_tokens} tokens after truncation to {spec.max_tokens}")
    # Every sentence-transformers batch size is a contender in the same alternating rounds, so the
    # "best batch" is picked under the same noise as everything it is compared with.
    st_contenders = [make_st(args.model_path, b, st, texts, lengths) for b in args.st_batch_sizes]
    ours: list[Contender] = []
    skipped: dict[str, str] = {}
    for name in args.backend_names:
        try:
            ours.append(make_embedlab(args, name, texts))
        except EmbedlabError as exc:
            skipped[name] = str(exc)
            log(f"skipping backend {name}: {exc}")
    contenders = st_contenders + ours

    log("warm-up (not timed)")
    for c in contenders:
        vectors, padded, _ = c.embed_corpus()
        c.vectors, c.padded_tokens = vectors, padded
    for c in [st_contenders[0], *ours]:
        for q in queries[:5]:
            c.embed_one(q)

    def corpus_step(c: Contender) -> None:
        (_vectors, padded, timings), seconds = timed(c.embed_corpus)
        c.corpus_seconds.append(seconds)
        c.padded_tokens = padded
        if timings:
            c.timings.append(timings)
        log(f"  {c.name:<24} {c.detail:<20} {len(texts) / seconds:8.1f} texts/s")

    log(f"timing the corpus: {args.repeat} alternating rounds")
    rounds(contenders, args.repeat, corpus_step)
    reference = min(st_contenders, key=lambda c: statistics.median(c.corpus_seconds))
    best = args.st_batch_sizes[st_contenders.index(reference)]

    def query_step(c: Contender) -> None:
        for q in queries:
            _, seconds = timed(functools.partial(c.embed_one, q))
            c.query_seconds.append(seconds)

    # A single query is one batch whatever the batch size, so one sentence-transformers contender suffices.
    log(f"timing batch-1 latency: {args.repeat} alternating rounds of {len(queries)} queries")
    rounds([reference, *ours], args.repeat, query_step)
    for c in st_contenders:
        if c is not reference:
            c.query_seconds = reference.query_seconds

    ref_row = summarise(reference, len(texts), real_tokens, None)
    ref = {"tokens_per_s": ref_row["real_tokens_per_s"]["median"], "p50_ms": ref_row["latency_ms"]["p50"]}
    rows = [ref_row]
    for c in st_contenders:
        if c is not reference:
            row = summarise(c, len(texts), real_tokens, ref)
            rows.append(row)
    assert reference.vectors is not None
    for c in ours:
        row = summarise(c, len(texts), real_tokens, ref)
        assert c.vectors is not None
        cos = cosines(c.vectors, reference.vectors)
        row["cosine"] = {
            "mean": float(cos.mean()),
            "worst": float(cos.min()),
            "below_exact": int((cos < EXACT_COSINE).sum()),
        }
        rows.append(row)

    info = machine_info(args.threads_used)
    print(
        f"embedlab vs sentence-transformers: {spec.name}, {info['cpu']}, {info['threads']} threads "
        f"({info['cores_available']} cores available); torch {info['torch']}, onnxruntime {info['onnxruntime']}, "
        f"sentence-transformers {info['sentence_transformers']}, embedlab {info['embedlab']} {info['commit']}"
    )
    print(
        f"corpus: {source}: {len(texts)} texts, {real_tokens} real tokens "
        f"({real_tokens / len(texts):.1f}/text after truncation to {spec.max_tokens}; "
        f"{sum(n > spec.max_tokens for n in full_lengths)} texts over the limit); "
        f"batch-1 queries: {len(queries)} of {np.mean(query_tokens):.1f} tokens on average; "
        f"{args.repeat} alternating rounds"
    )
    sweep_text = ", ".join(
        f"{b}: {len(texts) / statistics.median(c.corpus_seconds):.1f}"
        for b, c in zip(args.st_batch_sizes, st_contenders, strict=True)
    )
    print(f"sentence-transformers texts/s by batch size (median, same rounds): {sweep_text} -> best {best}")
    print()
    print(render(rows, f"sentence-transformers (batch {best})"))
    for name, reason in skipped.items():
        print(f"skipped backend {name}: {reason}")

    if args.json is not None:
        out = {
            "machine": info,
            "model": spec.name,
            "corpus": {
                "source": source,
                "texts": len(texts),
                "real_tokens": real_tokens,
                "max_tokens": spec.max_tokens,
                "over_limit": int(sum(n > spec.max_tokens for n in full_lengths)),
            },
            "repeat": args.repeat,
            "st_batch_sweep": {
                str(b): c.corpus_seconds for b, c in zip(args.st_batch_sizes, st_contenders, strict=True)
            },
            "st_best_batch": best,
            "rows": rows,
            "skipped": skipped,
        }
        args.json.write_text(json.dumps(out, indent=2))
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except EmbedlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
