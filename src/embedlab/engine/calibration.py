"""``auto`` decided by measurement: time every quality-proven backend on this machine, cache the choice.

The first time a model is loaded with ``backend="auto"`` on a machine, a short calibration runs (in a
child process, so the caller never maps runtimes it will not use):

1. every candidate backend that is installed is loaded (:data:`CANDIDATES`: exact or bfloat16
   runtimes; never int8, whose quality cost is measured separately and only ever opted into);
2. each embeds a fixed sample of texts (:data:`QUALITY_TEXTS` of mixed lengths); a candidate is
   *quality-proven* when every text's vector has cosine ≥ :data:`MIN_COSINE` with the exact
   reference (``torch`` float32, else ``onnx``);
3. the proven ones are timed at a ladder of batch shapes (:data:`SHAPES`: one short query up to a
   4,096-token batch, long texts included), rounds alternating between backends;
4. :func:`decide` picks the backend fastest over all shapes, or, when it pays by more than
   :data:`SPLIT_GAIN`, a split: one backend for batches up to some padded-token size, another above.

The result is cached under ``<cache>/calibration/<key>.json``; the key hashes what the speeds depend
on (:func:`calibration_facts`: the model's files, library versions, CPU model and flags, threads,
device). Where no calibration can run (a read-only cache, a failing child), :func:`auto_choice`
falls back to an exact backend and says why.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from embedlab.backends.base import Backend, EncodedBatch
from embedlab.cpu import available_cores, cpu_flags, cpu_model
from embedlab.errors import EmbedlabError
from embedlab.models.pooling import l2_normalize, pool
from embedlab.models.resolve import model_fingerprint
from embedlab.models.spec import ModelSpec
from embedlab.partials import partial_prefix, sweep_stale_partials
from embedlab.paths import cache_root

log = logging.getLogger(__name__)

CALIBRATION_RECIPE = "1"  # bump when what is measured or how it is decided changes
#: backends ``auto`` may choose, in order of preference on a tie: exact ones first
CANDIDATES: tuple[str, ...] = ("onnx", "openvino-f32", "torch", "openvino", "torch-bf16")
REFERENCES: tuple[str, ...] = ("torch", "onnx")  # exact float32 backends, the first available is the reference
MIN_COSINE = 0.9999
QUALITY_TEXTS = 48
SPLIT_GAIN = 0.05  # a split must cut the summed relative time by more than this share
CALIBRATION_TIMEOUT_S = 120.0
ROUNDS = 4
SETTLE_S = 0.02  # pause before a backend's block of timings, for the last runtime's threads to stop spinning
PRUNE_FACTOR = 1.5
RELEVANT_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_int8", "amx_tile")


@dataclass(frozen=True)
class Shape:
    """A batch shape timed by the calibration: ``batch`` sequences of ``seq`` tokens."""

    label: str
    batch: int
    seq: int

    @property
    def padded_tokens(self) -> int:
        """Tokens the model computes on (batch × seq)."""
        return self.batch * self.seq


SHAPES: tuple[Shape, ...] = (
    Shape("query", 1, 12),
    Shape("4 short", 4, 16),
    Shape("8 sentences", 8, 32),
    Shape("~1k-token batch", 32, 32),
    Shape("long texts", 4, 256),
    Shape("4k-token batch", 64, 64),
)


@dataclass
class Decision:
    """What ``auto`` runs: ``small`` for batches of at most ``split_tokens`` padded tokens, ``large`` above.

    Without a split, ``small == large`` and ``split_tokens`` is None.
    """

    small: str
    large: str
    split_tokens: int | None
    reason: str

    @property
    def name(self) -> str:
        """The backend name ``auto`` reports: one backend's, or ``small<=N+large``."""
        return self.small if self.split_tokens is None else f"{self.small}<={self.split_tokens}+{self.large}"


@dataclass
class CandidateReport:
    """One candidate backend in a calibration: loaded or not, its worst cosine, its time per shape."""

    name: str
    available: bool
    reason: str = ""
    load_seconds: float = 0.0
    cosine_min: float | None = None
    proven: bool = False
    ms: dict[str, float] = field(default_factory=dict)


@dataclass
class Calibration:
    """A calibration's record: the facts it is keyed by, every candidate, and the decision.

    Attributes:
        key: the hash of ``facts`` (the cache file's name).
        facts: what the speeds depend on (see :func:`calibration_facts`).
        reference: the exact backend the cosines are measured against.
        candidates: every candidate, measured or not (with why not).
        shapes: the shapes timed, as (label, batch, seq).
        decision: what ``auto`` runs.
        seconds: how long the calibration took (loading included).
        created: when it ran (seconds since the epoch).
        fallback: True when no calibration could run and ``decision`` is the safe exact backend.
    """

    key: str
    facts: dict[str, Any]
    reference: str
    candidates: list[CandidateReport]
    shapes: list[tuple[str, int, int]]
    decision: Decision
    seconds: float
    created: float
    fallback: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (what the cache file holds)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        """The record of :meth:`to_dict`."""
        values = dict(data)
        values["candidates"] = [CandidateReport(**c) for c in data["candidates"]]
        values["shapes"] = [tuple(s) for s in data["shapes"]]
        values["decision"] = Decision(**data["decision"])
        return cls(**values)

    def summary(self) -> dict[str, Any]:
        """What ``auto`` chose and why, for ``/info``, ``inspect`` and start-up lines."""
        return {
            "chosen": self.decision.name,
            "reason": self.decision.reason,
            "fallback": self.fallback,
            "reference": self.reference,
            "proven": [c.name for c in self.candidates if c.proven],
            "calibration_seconds": round(self.seconds, 2),
            "calibrated_at": self.created,
            "key": self.key,
        }

    def table(self) -> list[dict[str, Any]]:
        """One row per candidate: name, proven, worst cosine, load s, then ms per shape label (None: not timed)."""
        rows = []
        for candidate in self.candidates:
            row: dict[str, Any] = {
                "backend": candidate.name,
                "available": candidate.available,
                "proven": candidate.proven,
                "cosine_min": candidate.cosine_min,
                "load_s": round(candidate.load_seconds, 2),
                "note": candidate.reason,
            }
            for label, _, _ in self.shapes:
                row[label] = candidate.ms.get(label)
            rows.append(row)
        return rows


# -- the key ------------------------------------------------------------------------------------------


def _cpu_facts() -> dict[str, Any]:
    return {"cpu": cpu_model(), "flags": sorted(cpu_flags() & set(RELEVANT_FLAGS))}


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def calibration_facts(spec: ModelSpec, device: str, threads: int | None) -> dict[str, Any]:
    """What a calibration's speeds depend on: model files, runtimes' versions, CPU, threads, device."""
    return {
        "recipe": CALIBRATION_RECIPE,
        "model_fingerprint": model_fingerprint(spec.path),
        "device": device,
        "threads": threads or available_cores(),
        "versions": {p: _version(p) for p in ("embedlab", "torch", "onnxruntime", "openvino", "numpy")},
        **_cpu_facts(),
    }


def calibration_key(facts: dict[str, Any]) -> str:
    """A short hex digest of ``facts``."""
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:20]


def calibration_path(key: str, root: Path | None = None) -> Path:
    """Where the calibration of ``key`` is cached."""
    return (root or cache_root()) / "calibration" / f"{key}.json"


# -- deciding -----------------------------------------------------------------------------------------


def decide(ms: dict[str, dict[str, float]], shapes: Sequence[Shape]) -> Decision:
    """The backend (or split of two) with the least summed relative time over ``shapes``.

    Args:
        ms: per proven backend (in order of preference on ties), milliseconds per shape label.
        shapes: the shapes timed; each counts equally (relative to the best backend at that shape).

    Returns:
        One backend, or a split at a padded-token size when it cuts the summed relative time by more
        than :data:`SPLIT_GAIN`.
    """
    names = list(ms)
    if not names:
        raise ValueError("no backend to decide between")
    best = {s.label: min(ms[n][s.label] for n in names) for s in shapes}

    def cost(name: str, subset: Sequence[Shape]) -> float:
        return sum(ms[name][s.label] / best[s.label] for s in subset)

    single = min(names, key=lambda n: cost(n, shapes))  # min keeps the first of equals: preference order
    single_cost = cost(single, shapes)
    chosen = Decision(single, single, None, "")
    chosen_cost = single_cost
    for size in sorted({s.padded_tokens for s in shapes})[:-1]:
        low = [s for s in shapes if s.padded_tokens <= size]
        high = [s for s in shapes if s.padded_tokens > size]
        small = min(names, key=lambda n, part=low: cost(n, part))  # type: ignore[misc]
        large = min(names, key=lambda n, part=high: cost(n, part))  # type: ignore[misc]
        split_cost = cost(small, low) + cost(large, high)
        if small != large and split_cost < chosen_cost and split_cost < single_cost * (1 - SPLIT_GAIN):
            chosen, chosen_cost = Decision(small, large, size, ""), split_cost
    worst = max(
        ms[chosen.small if s.padded_tokens <= (chosen.split_tokens or 0) else chosen.large][s.label] / best[s.label]
        for s in shapes
    )
    if chosen.split_tokens is None:
        chosen.reason = (
            f"{single}: the least summed time over {len(shapes)} shapes (within {worst:.2f}x of the best at each)"
        )
    else:
        chosen.reason = (
            f"{chosen.small} for batches of ≤ {chosen.split_tokens} padded tokens, {chosen.large} above: "
            f"{(1 - chosen_cost / single_cost) * 100:.0f}% less summed time than {single} alone"
        )
    return chosen


# -- measuring (in the child process) -------------------------------------------------------------------


def _batch(tokenizer: Any, shape: Shape, pad_id: int) -> EncodedBatch:
    from embedlab.engine.batch_plan import pad_segments
    from embedlab.engine.tokenize import tokenize_texts
    from embedlab.sample_texts import texts_of_length

    texts = texts_of_length(tokenizer, shape.seq, shape.batch, seed=shape.batch)
    segments = tokenize_texts(tokenizer, texts, shape.seq, "truncate").segments
    return pad_segments(segments, pad_id)


def _embed_sample(backend: Backend, batches: Sequence[EncodedBatch], spec: ModelSpec) -> np.ndarray:
    return np.concatenate([l2_normalize(pool(backend.forward(b), b.attention_mask, spec.pooling)) for b in batches])


def _time_shapes(
    loaded: dict[str, Backend], shapes: Sequence[Shape], batches: dict[str, EncodedBatch]
) -> dict[str, dict[str, list[float]]]:
    """Milliseconds of each backend at each shape: a warm-up round, then :data:`ROUNDS` counted ones.

    Within a round each backend runs all its shapes in one block (after a pause and an uncounted call,
    so the previous runtime's spinning threads have gone idle), backends in an order that rotates every
    round. A backend over :data:`PRUNE_FACTOR` times the best at every shape in the first counted round
    cannot win and is not timed again.
    """
    runs: dict[str, dict[str, list[float]]] = {name: {s.label: [] for s in shapes} for name in loaded}
    active = list(loaded)
    for round_number in range(ROUNDS + 1):  # round 0 warms every shape up, uncounted
        shift = round_number % len(active)
        for name in active[shift:] + active[:shift]:
            backend = loaded[name]
            time.sleep(SETTLE_S)
            backend.forward(batches[shapes[0].label])
            for shape in shapes:
                t0 = time.perf_counter()
                backend.forward(batches[shape.label])
                if round_number:
                    runs[name][shape.label].append((time.perf_counter() - t0) * 1000)
        if round_number == 1:
            best = {s.label: min(runs[n][s.label][0] for n in active) for s in shapes}
            active = [n for n in active if any(runs[n][s.label][0] <= PRUNE_FACTOR * best[s.label] for s in shapes)]
    return runs


def measure(spec: ModelSpec, device: str, threads: int | None, candidates: Sequence[str] = CANDIDATES) -> Calibration:
    """Load, prove and time every candidate; decide. Runs in the calibration's child process.

    Raises:
        EmbedlabError: the tokenizer cannot load, or no candidate is available and proven.
    """
    from embedlab.backends import create_backend
    from embedlab.engine.batch_plan import pad_segments, plan_batches
    from embedlab.engine.tokenize import find_pad_id, load_tokenizer, tokenize_texts
    from embedlab.sample_texts import generate_corpus

    started = time.perf_counter()
    facts = calibration_facts(spec, device, threads)
    tokenizer = load_tokenizer(spec)
    pad_id = find_pad_id(spec, tokenizer)
    sample = tokenize_texts(tokenizer, generate_corpus(QUALITY_TEXTS, seed=11), spec.max_tokens, "truncate").segments
    plan = plan_batches([len(s.ids) for s in sample], 2048, 64, 1.05)
    sample_batches = [pad_segments([sample[i] for i in batch], pad_id) for batch in plan]
    shapes = [Shape(s.label, s.batch, min(s.seq, spec.max_tokens)) for s in SHAPES]
    timing_batches = {s.label: _batch(tokenizer, s, pad_id) for s in shapes}

    reports: list[CandidateReport] = []
    loaded: dict[str, Backend] = {}
    reference_name = ""
    reference: np.ndarray | None = None
    for name in ("torch", *[c for c in candidates if c != "torch"]):  # the exact reference first
        report = CandidateReport(name, available=False)
        t0 = time.perf_counter()
        try:
            backend = create_backend(name, spec, device=device, threads=threads)
            vectors = _embed_sample(backend, sample_batches, spec)
        except (EmbedlabError, ImportError, RuntimeError, OSError) as exc:
            report.reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            if name in candidates:
                reports.append(report)
            continue
        report.available = True
        report.load_seconds = time.perf_counter() - t0
        if reference is None and name in REFERENCES:
            reference_name, reference = name, vectors
        if reference is not None:
            report.cosine_min = float(np.min(np.sum(vectors * reference, axis=1)))
            report.proven = report.cosine_min >= MIN_COSINE
            if not report.proven:
                report.reason = f"cosine {report.cosine_min:.6f} < {MIN_COSINE} vs {reference_name}"
        if name in candidates:
            reports.append(report)
            if report.proven:
                loaded[name] = backend
        del backend
    if not loaded:
        raise EmbedlabError("no candidate backend loaded and matched the exact reference; cannot calibrate")

    runs = _time_shapes(loaded, shapes, timing_batches)
    for report in reports:
        if report.name in runs:
            report.ms = {label: float(np.median(times)) for label, times in runs[report.name].items()}
            if len(runs[report.name][shapes[0].label]) == 1:
                report.reason = f"left after one round: over {PRUNE_FACTOR:g}x the best at every shape"
    loaded.clear()
    gc.collect()
    ms = {r.name: r.ms for r in reports if r.proven and r.ms}
    decision = decide(ms, shapes)
    return Calibration(
        key=calibration_key(facts),
        facts=facts,
        reference=reference_name,
        candidates=reports,
        shapes=[(s.label, s.batch, s.seq) for s in shapes],
        decision=decision,
        seconds=time.perf_counter() - started,
        created=time.time(),
    )


# -- the parent's side: cache, child process, fallback --------------------------------------------------


def _fallback(spec: ModelSpec, device: str, threads: int | None, why: str) -> Calibration:
    facts = calibration_facts(spec, device, threads)
    name = "onnx" if _version("onnxruntime") else "torch"
    reason = f"{name}, exact: no calibration could run ({why})"
    return Calibration(
        calibration_key(facts), facts, name, [], [], Decision(name, name, None, reason), 0.0, time.time(), fallback=True
    )


def _write_atomic(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_partials(path.parent)  # the calibration folder holds only embedlab's files
    fd, tmp = tempfile.mkstemp(prefix=partial_prefix(path.name), dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cached_calibration(spec: ModelSpec, device: str, threads: int | None) -> Calibration | None:
    """The cached calibration for this model, machine and layout, or None."""
    path = calibration_path(calibration_key(calibration_facts(spec, device, threads)))
    try:
        return Calibration.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def auto_choice(
    spec: ModelSpec, device: str = "cpu", threads: int | None = None, *, rerun: bool = False
) -> Calibration:
    """The calibration ``auto`` decides from: cached, else measured now in a child process, else a fallback.

    Args:
        spec: the model.
        device: ``cpu`` or ``cuda[:N]``.
        threads: intra-op threads the backends will run with (None: the cores available).
        rerun: measure again even when a cached calibration exists.

    Never raises for a calibration that cannot run: the fallback (an exact backend) says why, with a warning.
    """
    if not rerun:
        cached = cached_calibration(spec, device, threads)
        if cached is not None:
            return cached
    key = calibration_key(calibration_facts(spec, device, threads))
    path = calibration_path(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(path.parent, os.W_OK):
            raise PermissionError(f"{path.parent} is not writable")
    except OSError as exc:
        log.warning("backend auto: cannot cache a calibration (%s); using an exact backend", exc)
        return _fallback(spec, device, threads, f"cache not writable: {exc}")
    command = [
        sys.executable,
        "-m",
        "embedlab.engine.calibration",
        str(spec.path),
        "--name",
        spec.name,
        "--device",
        device,
        "--out",
        str(path),
    ]
    if threads is not None:
        command += ["--threads", str(threads)]
    log.info("backend auto: calibrating %s on this machine (once; cached in %s)", spec.name, path)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=CALIBRATION_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("backend auto: the calibration did not finish (%s); using an exact backend", exc)
        return _fallback(spec, device, threads, str(exc))
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        log.warning("backend auto: the calibration failed (%s); using an exact backend", last)
        return _fallback(spec, device, threads, last)
    cached = cached_calibration(spec, device, threads)
    if cached is None:
        return _fallback(spec, device, threads, f"the calibration wrote no readable {path}")
    return cached


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m embedlab.engine.calibration MODEL_DIR --out FILE``: measure and write one calibration."""
    from embedlab.models.resolve import resolve_model
    from embedlab.models.spec import read_spec

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("model", type=Path)
    parser.add_argument("--name", default=None, help="the model's name in the parent (keys the exported graph)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        resolved = resolve_model(str(args.model))
        if args.name:  # the parent's name: the graph it exports is then the one the parent's backends find
            resolved = replace(resolved, name=args.name)
        calibration = measure(read_spec(resolved), args.device, args.threads)
        _write_atomic(args.out, calibration.to_dict())
    except EmbedlabError as exc:
        print(f"calibration failed: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
