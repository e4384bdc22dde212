"""embedlab vs sentence-transformers on one fixed corpus, measured side by side in one run.

Contenders: sentence-transformers fp32 (the reference), sentence-transformers with bfloat16 weights
(``model_kwargs={"torch_dtype": torch.bfloat16}``), sentence-transformers ``backend="openvino"``
(optimum-intel; in this process when importable, else in a peer process given by ``--peer-python``, a
venv where it is installed, else skipped with the reason), raw OpenVINO on embedlab's own cached graph
(bf16, 2 streams, texts pre-tokenised and sorted by length; tokenising and pooling not timed for it),
and every embedlab backend, ``auto`` included.

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

    .venv/bin/python benchmarks/vs_sentence_transformers.py --backends auto,onnx --repeat 5
    flock /tmp/embedlab-heavy.lock .venv/bin/python benchmarks/vs_sentence_transformers.py --json out.json \
        --peer-python /path/to/venv-with-optimum-intel/bin/python

The machine is whatever runs it: numbers from a shared or busy machine are noisy, ratios less so.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
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
    measured_seconds: list[float] | None = None  # the contender's own clock, when it is not the caller's
    query_seconds: list[float] = field(default_factory=list)
    padded_tokens: int = 0
    timings: list[dict[str, float]] = field(default_factory=list)
    vectors: np.ndarray | None = None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model name or path (default: the packaged all-MiniLM-L6-v2)")
    parser.add_argument(
        "--backends",
        default="auto," + ",".join(BACKENDS),
        help=f"embedlab backends, comma-separated, from: auto, {', '.join(BACKENDS)}",
    )
    parser.add_argument(
        "--peer-python",
        default=None,
        help="python of a venv with optimum-intel, for sentence-transformers backend='openvino' when it is not "
        "importable here",
    )
    parser.add_argument("--no-peers", action="store_true", help="only sentence-transformers fp32 and embedlab")
    parser.add_argument("--raw-batches", default="32,64", help="batch sizes of the raw OpenVINO contender")
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
    unknown = [b for b in names if b not in ("auto", *BACKENDS)]
    if not names or unknown:
        parser.error(f"unknown backend(s) {unknown or names}; choose from auto, {', '.join(BACKENDS)}")
    args.backend_names = names
    try:
        args.st_batch_sizes = [int(b) for b in args.st_batches.split(",") if b.strip()]
    except ValueError:
        parser.error(f"--st-batches must be integers, got {args.st_batches!r}")
    if not args.st_batch_sizes or min(args.st_batch_sizes) < 1:
        parser.error("--st-batches must be positive integers")
    try:
        args.raw_batch_sizes = [int(b) for b in args.raw_batches.split(",") if b.strip()]
    except ValueError:
        parser.error(f"--raw-batches must be integers, got {args.raw_batches!r}")
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
    import torch

    padded = st_padded_tokens(texts, lengths, batch_size)

    threads = torch.get_num_threads()  # the run's: embedlab's torch backends may set other counts meanwhile

    def run_corpus() -> tuple[np.ndarray, int, dict[str, float]]:
        torch.set_num_threads(threads)
        vectors = st.encode(texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32), padded, {}

    def run_one(text: str) -> object:
        torch.set_num_threads(threads)
        return st.encode([text], convert_to_numpy=True, show_progress_bar=False)

    return Contender(
        "sentence-transformers", f"torch fp32, batch {batch_size}", run_corpus, run_one, padded_tokens=padded
    )


def make_st_variant(
    name: str, detail: str, st: Any, batch_size: int, texts: list[str], lengths: list[int]
) -> Contender:
    """A sentence-transformers model loaded another way (bf16 weights, OpenVINO), at one batch size."""
    contender = make_st("", batch_size, st, texts, lengths)
    contender.name, contender.detail = name, detail
    return contender


class PeerProcess:
    """sentence-transformers ``backend="openvino"`` in another venv's python, driven over a pipe.

    The peer is ``st_openvino_peer.py`` beside this script; it loads the model once, then embeds the corpus
    (``corpus B``: prints seconds), times single queries (``queries``: prints a JSON list of seconds) or
    saves vectors (``vectors B PATH``) when told, so it takes part in the same alternating rounds.
    """

    def __init__(self, python: str, model_path: str, corpus_file: Path, queries_file: Path, threads: int):
        script = Path(__file__).with_name("st_openvino_peer.py")
        command = [python, str(script), model_path, str(corpus_file), str(queries_file), str(threads)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}
        )
        ready = self._read()
        if ready != "ready":
            raise RuntimeError(f"the peer process did not start: {ready!r}")

    def _read(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the peer process ended (exit code {self.process.poll()})")
        return line.strip()

    def ask(self, command: str) -> str:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ask("quit")
        self.process.wait(timeout=30)


def make_peer(peer: PeerProcess, batch_size: int, texts: list[str], lengths: list[int]) -> Contender:
    padded = st_padded_tokens(texts, lengths, batch_size)
    vectors: list[np.ndarray] = []

    def run_corpus() -> tuple[np.ndarray, int, dict[str, float]]:
        seconds = float(peer.ask(f"corpus {batch_size}"))
        if not vectors:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "vectors.npy"
                peer.ask(f"vectors {batch_size} {path}")
                vectors.append(np.load(path))
        peer_seconds.append(seconds)
        return vectors[0], padded, {}

    peer_seconds: list[float] = []
    contender = Contender(
        "sentence-transformers", f"openvino, batch {batch_size}", run_corpus, lambda text: None, padded_tokens=padded
    )
    contender.measured_seconds = peer_seconds  # the peer's own clock, without the pipe's round trip
    return contender


def make_raw_openvino(model_spec: Any, batch_size: int, texts: list[str], threads: int) -> Contender:
    """Raw OpenVINO bf16 on embedlab's cached graph: 2 streams, batches of sorted pre-tokenised texts.

    Only inference is timed (tokenising happens once, up front; mean pooling after the clock stops).
    """
    import openvino as ov

    from embedlab.backends.onnx_export import cached_or_export
    from embedlab.backends.openvino_backend import cached_or_convert_ir
    from embedlab.engine.tokenize import find_pad_id, load_tokenizer

    tokenizer = load_tokenizer(model_spec)
    tokenizer.enable_truncation(model_spec.max_tokens)
    pad = find_pad_id(model_spec, tokenizer)
    tokenizer.enable_padding(pad_id=pad)
    order = np.argsort([-len(t) for t in texts], kind="stable")
    feeds = []
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        encoded = tokenizer.encode_batch([texts[i] for i in rows])
        ids = np.asarray([e.ids for e in encoded], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in encoded], dtype=np.int64)
        feeds.append((rows, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}))
    core = ov.Core()
    model = core.read_model(str(cached_or_convert_ir(cached_or_export(model_spec))))
    inputs = {port.get_any_name() for port in model.inputs}
    config = {"INFERENCE_PRECISION_HINT": "bf16", "NUM_STREAMS": 2, "INFERENCE_NUM_THREADS": threads}
    compiled = core.compile_model(model, "CPU", config)
    padded = sum(int(f["input_ids"].size) for _, f in feeds)
    hidden = compiled.outputs[0].get_partial_shape()[2].get_length()

    def run_corpus() -> tuple[np.ndarray, int, dict[str, float]]:
        results: dict[int, np.ndarray] = {}
        queue = ov.AsyncInferQueue(compiled, 2)
        queue.set_callback(lambda request, index: results.__setitem__(index, request.get_output_tensor().data.copy()))
        t0 = time.perf_counter()
        for index, (_, feed) in enumerate(feeds):
            queue.start_async({k: v for k, v in feed.items() if k in inputs}, index)
        queue.wait_all()
        seconds = time.perf_counter() - t0
        vectors = np.zeros((len(texts), hidden), dtype=np.float32)
        for index, (rows, feed) in enumerate(feeds):
            mask = feed["attention_mask"][..., None].astype(np.float32)
            pooled = (results[index] * mask).sum(1) / mask.sum(1)
            vectors[rows] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        raw_seconds.append(seconds)
        return vectors, padded, {}

    raw_seconds: list[float] = []
    request = compiled.create_infer_request()

    def run_one(text: str) -> object:
        encoded = tokenizer.encode(text)
        ids = np.asarray([encoded.ids], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        return request.infer({k: v for k, v in feed.items() if k in inputs})

    contender = Contender("raw openvino", f"bf16 2 streams, b{batch_size}", run_corpus, run_one, padded_tokens=padded)
    contender.measured_seconds = raw_seconds
    return contender


def make_peers(
    args: argparse.Namespace,
    spec: Any,
    st: Any,
    texts: list[str],
    lengths: list[int],
    queries: list[str],
    skipped: dict[str, str],
    log: Callable[[str], None],
) -> tuple[list[Contender], PeerProcess | None]:
    """The peers a user of this hardware would pick: sentence-transformers bf16 and OpenVINO, raw OpenVINO."""
    if args.no_peers:
        return [], None
    import torch
    from sentence_transformers import SentenceTransformer

    peers: list[Contender] = []
    st_bf16 = SentenceTransformer(args.model_path, device="cpu", model_kwargs={"torch_dtype": torch.bfloat16})
    st_bf16.max_seq_length = st.max_seq_length
    for b in args.st_batch_sizes:
        peers.append(make_st_variant("sentence-transformers", f"bf16 weights, b{b}", st_bf16, b, texts, lengths))
    process: PeerProcess | None = None
    try:
        import optimum.intel  # noqa: F401

        st_ov = SentenceTransformer(args.model_path, device="cpu", backend="openvino")
        st_ov.max_seq_length = st.max_seq_length
        for b in args.st_batch_sizes:
            peers.append(make_st_variant("sentence-transformers", f"openvino, b{b}", st_ov, b, texts, lengths))
    except Exception as exc:  # ImportError, or optimum-intel too old / new for this transformers
        if args.peer_python:
            work = Path(tempfile.mkdtemp(prefix="vs-st-peer-"))
            (work / "corpus.json").write_text(json.dumps(texts))
            (work / "queries.json").write_text(json.dumps(queries))
            log(f"sentence-transformers openvino: in a peer process ({args.peer_python})")
            process = PeerProcess(
                args.peer_python, args.model_path, work / "corpus.json", work / "queries.json", args.threads_used
            )
            peers += [make_peer(process, b, texts, lengths) for b in args.st_batch_sizes]
        else:
            reason = f"optimum-intel is not usable here ({type(exc).__name__}: {str(exc)[:120]}); give --peer-python"
            skipped["sentence-transformers openvino"] = reason
            log(f"skipping sentence-transformers openvino: {reason}")
    try:
        peers += [make_raw_openvino(spec, b, texts, args.threads_used) for b in args.raw_batch_sizes]
    except ImportError as exc:
        skipped["raw openvino"] = f"openvino is not installed ({exc})"
    return peers, process


def targets(rows: list[dict[str, Any]]) -> str:
    """The issue's targets, each as the ratio measured in this run."""

    def best(predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
        found = [r for r in rows if predicate(r)]
        return max(found, key=lambda r: r["real_tokens_per_s"]["median"]) if found else None

    auto = best(lambda r: r["name"].startswith("embedlab auto"))
    st_ov = best(lambda r: r["detail"].startswith("openvino"))
    raw = best(lambda r: r["name"] == "raw openvino")
    lines = ["targets (throughput ratios of this run):"]
    if auto is None:
        return "targets: no embedlab auto row"
    speed = auto["real_tokens_per_s"]["median"]
    lines.append(f"  embedlab auto vs sentence-transformers fp32: {auto['throughput_ratio']:.2f}x (target >= 4.5x)")
    if st_ov is not None:
        ratio = speed / st_ov["real_tokens_per_s"]["median"]
        lines.append(f"  embedlab auto vs sentence-transformers openvino ({st_ov['detail']}): {ratio:.2f}x (>= 1.5x)")
    if raw is not None:
        ratio = speed / raw["real_tokens_per_s"]["median"]
        lines.append(f"  embedlab auto vs raw openvino bf16 ({raw['detail']}): {ratio:.2f}x (>= 1.1x)")
    lines.append(f"  embedlab auto single short query p50: {auto['latency_ms']['p50']:.2f} ms (<= 2.5 ms)")
    cos = auto.get("cosine")
    if cos:
        lines.append(f"  embedlab auto worst cosine vs sentence-transformers: {cos['worst']:.6f} (>= 0.9999)")
    low = [r for r in rows if r["name"].startswith("embedlab") and r.get("cosine") and r["cosine"]["worst"] < 0.9999]
    for r in low:
        lines.append(f"  low precision {r['name']}: {r['throughput_ratio']:.2f}x (target >= 6x with STS drop <= 0.005)")
    return "\n".join(lines)


def make_embedlab(args: argparse.Namespace, backend: str, texts: list[str]) -> Contender:
    overrides: dict[str, Any] = {}
    if args.max_batch_tokens is not None:
        overrides["max_batch_tokens"] = args.max_batch_tokens
    if args.threads is not None:
        overrides["threads"] = args.threads
    model = embedlab.load(args.model, backend=backend, **overrides)

    def run_corpus() -> tuple[np.ndarray, int, dict[str, float]]:
        report = model.embed_with_report(texts)
        return report.vectors, report.padded_tokens, dict(report.timings)

    def run_one(text: str) -> object:
        return model.embed([text])

    budget = model.settings.max_batch_tokens
    chosen = f" = {model.backend.name}" if backend == "auto" else ""
    workers, threads = model.settings.worker_layout()
    return Contender(f"embedlab {backend}{chosen}", f"{budget} tok, {workers}x{threads} thr", run_corpus, run_one)


def rounds(contenders: list[Contender], repeat: int, step: Callable[[Contender], None]) -> None:
    """``repeat`` rounds; in each, every contender runs once, the starting contender rotating."""
    for r in range(repeat):
        shift = r % len(contenders)
        for contender in contenders[shift:] + contenders[:shift]:
            step(contender)


def summarise(c: Contender, n_texts: int, real_tokens: int, ref: dict[str, float] | None) -> dict[str, Any]:
    tps = [n_texts / s for s in c.corpus_seconds]
    tok = [real_tokens / s for s in c.corpus_seconds]
    p50 = percentile(c.query_seconds, 50) * 1000 if c.query_seconds else float("nan")
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
            "p95": percentile(c.query_seconds, 95) * 1000 if c.query_seconds else float("nan"),
            "p99": percentile(c.query_seconds, 99) * 1000 if c.query_seconds else float("nan"),
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
        f"{'configuration':<30} {'detail':<24} {'texts/s (min-max)':>24} {'real tok/s':>10} {'pad/real':>8} "
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
            f"{row['name']:<30} {row['detail']:<24} "
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
    peers, peer_process = make_peers(args, spec, st, texts, lengths, queries, skipped, log)
    contenders = st_contenders + peers + ours
    with_latency = [st_contenders[0], *[p for p in peers if p.name == "raw openvino"], *ours]

    log("warm-up (not timed)")
    for c in contenders:
        vectors, padded, _ = c.embed_corpus()
        c.vectors, c.padded_tokens = vectors, padded
    for c in with_latency:
        for q in queries[:5]:
            c.embed_one(q)

    def corpus_step(c: Contender) -> None:
        (_vectors, padded, timings), seconds = timed(c.embed_corpus)
        if c.measured_seconds is not None:
            seconds = c.measured_seconds[-1]
        c.corpus_seconds.append(seconds)
        c.padded_tokens = padded
        if timings:
            c.timings.append(timings)
        log(f"  {c.name:<30} {c.detail:<24} {len(texts) / seconds:8.1f} texts/s")

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
    rounds([reference, *with_latency[1:]], args.repeat, query_step)
    if peer_process is not None:
        peer_process.close()
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
    for c in peers + ours:
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
    print()
    print(targets(rows))
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
