"""OpenVINO backend: runs the exported transformer graph with OpenVINO's CPU plugin, bf16 or exact fp32.

The ONNX graph from :mod:`onnx_export` is converted once to OpenVINO IR (``model.xml`` + ``model.bin``,
weights kept fp32) and cached beside it, in a folder keyed by the OpenVINO version and a recipe number::

    <onnx dir>/<graph stem>.openvino-<version>-r<recipe>/model.xml

The IR is precision-independent: the precision is chosen when the model is compiled
(``INFERENCE_PRECISION_HINT``), so ``bf16`` and ``f32`` share one cached file. ``f32`` is exact
(the hint forces fp32 kernels even on CPUs whose default would be bf16); ``bf16`` uses the CPU's
AMX / AVX512-BF16 matrix units.

Layouts (``mode``):

``latency``
    one stream with every thread; concurrent callers queue on it. Best for single queries.
``throughput``
    several streams (default: OpenVINO's choice for the throughput hint, at least 2 where there are 2
    cores), each with a share of the threads. A call with a batch of at least ``split_min_rows`` rows is
    cut into one slice per stream, run at once, so one ``embed()`` call still uses every core; concurrent
    callers' slices interleave on the streams.

Thread safety: one compiled model is shared; every calling thread gets its own infer requests
(``threading.local``), so ``forward`` may be called from several threads at once.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np

from embedlab.arrays import FloatArray
from embedlab.backends.base import EncodedBatch
from embedlab.cpu import available_cores
from embedlab.errors import BackendUnavailableError, ConfigError, InferenceError, ModelLoadError
from embedlab.models.spec import ModelSpec
from embedlab.partials import partial_prefix, sweep_stale_partials

IR_RECIPE = "1"  # bump when the conversion changes what the IR holds or how it is written
IR_FILE = "model.xml"
Precision = Literal["bf16", "f32"]
Mode = Literal["throughput", "latency"]
_PRECISIONS = ("bf16", "f32")
_MODES = ("throughput", "latency")
_OUTPUT = "token_embeddings"


def _import_openvino() -> Any:
    try:
        import openvino
    except ImportError as exc:
        raise BackendUnavailableError("the openvino backend needs the OpenVINO runtime: pip install openvino") from exc
    return openvino


def _version_tag(ov: Any) -> str:
    """A file-name-safe tag of the OpenVINO build, e.g. ``2026.4.1-22982``."""
    full = str(getattr(ov, "__version__", "") or ov.get_version())
    parts = full.split("-")
    tag = "-".join(parts[:2]) if len(parts) >= 2 else full
    return re.sub(r"[^A-Za-z0-9._-]+", "_", tag) or "unknown"


def ir_dir(graph: Path, ov: Any | None = None) -> Path:
    """The folder that holds (or will hold) the OpenVINO IR converted from ``graph``."""
    ov = ov or _import_openvino()
    return graph.parent / f"{graph.stem}.openvino-{_version_tag(ov)}-r{IR_RECIPE}"


def cached_or_convert_ir(graph: Path, ov: Any | None = None) -> Path:
    """Path of the IR (``model.xml``) of the ONNX ``graph``, converting it first if no cached copy exists.

    The IR is written in a scratch folder beside its final place and renamed into place in one step,
    so a reader never sees half an IR; when two processes convert at once, the first rename wins.

    Raises:
        BackendUnavailableError: OpenVINO is missing.
        ModelLoadError: the ONNX graph cannot be read or converted.
        OSError: the folder beside the graph is not writable (callers fall back to the ONNX graph).
    """
    ov = ov or _import_openvino()
    target = ir_dir(graph, ov)
    xml = target / IR_FILE
    if xml.is_file() and xml.with_suffix(".bin").is_file() and (target / "meta.json").is_file():
        return xml
    try:
        model = ov.Core().read_model(str(graph))
    except Exception as exc:
        raise ModelLoadError(f"OpenVINO cannot read {graph}: {exc}") from exc
    sweep_stale_partials(graph.parent, target.name)  # scratch folders of conversions that were killed
    scratch = Path(tempfile.mkdtemp(prefix=partial_prefix(target.name), dir=graph.parent))
    try:
        try:
            # keep fp32 weights: the precision is a compile-time choice, and f32 must stay exact
            ov.save_model(model, str(scratch / IR_FILE), compress_to_fp16=False)
        except Exception as exc:
            raise ModelLoadError(f"OpenVINO cannot convert {graph} to IR: {exc}") from exc
        meta = {"source": graph.name, "openvino": str(ov.get_version()), "recipe": IR_RECIPE}
        (scratch / "meta.json").write_text(json.dumps(meta, indent=2))
        os.chmod(scratch, 0o755)  # mkdtemp makes it private; the cache is as readable as the graph beside it
        if target.exists():  # an incomplete earlier attempt (a complete one returned above)
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.rename(scratch, target)
        except OSError:
            if not (target / IR_FILE).is_file():  # not another process winning the race
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return xml


def _pad_to(batch: EncodedBatch, seq_len: int) -> EncodedBatch:
    """``batch`` right-padded with masked positions (id 0, mask 0, segment 0) to ``seq_len`` columns."""
    extra = ((0, 0), (0, seq_len - batch.shape[1]))
    types = batch.token_type_ids
    return EncodedBatch(
        input_ids=np.pad(batch.input_ids, extra),
        attention_mask=np.pad(batch.attention_mask, extra),
        token_type_ids=None if types is None else np.pad(types, extra),
    )


class OpenVinoBackend:
    """Runs a model's exported ONNX graph with OpenVINO on CPU.

    Args:
        spec: the model; its ONNX graph is exported once and cached (see :mod:`onnx_export`).
        device: only ``cpu``.
        threads: inference threads in all (``INFERENCE_NUM_THREADS``); default: the physical cores
            available to the process.
        precision: ``bf16`` (fast where the CPU has AMX / AVX512-BF16) or ``f32`` (exact).
        mode: ``throughput`` (several streams, large batches split across them) or ``latency``
            (one stream with every thread).
        graph: an explicit ONNX graph to run instead of the cached export, or an OpenVINO IR ``.xml`` file.
        name: the registry name to report.
        streams: streams of the throughput layout (default: OpenVINO's choice); ignored for latency.
        split_min_rows: in the throughput layout, a batch with at least this many rows is split across
            the streams; smaller ones run whole on one stream. None: never split (the streams serve
            concurrent callers instead). The backend holds one infer request per stream; a caller
            waits for a free one, so callers beyond the streams queue rather than oversubscribe.
        pin_threads: ``ENABLE_CPU_PINNING``; None leaves OpenVINO's default.
        seq_bucket: a batch of at most ``bucket_max_tokens`` padded tokens (a single query, a few short
            texts) is padded further, with masked positions, to a sequence length that is a multiple of
            ``seq_bucket``: OpenVINO re-prepares every kernel when the input shape changes (about 0.5 ms
            of a 1.3 ms query on the default model), so consecutive queries of similar length then share
            one shape. Masked positions change no real token's vector; they are cut off again before
            returning. ``seq_bucket=1`` or ``bucket_max_tokens=0`` turns this off.
        bucket_max_tokens: the size limit, in padded tokens (batch × seq_len), of such a small batch.
        runtime_cache: kernels kept per operator for input shapes seen (``CPU_RUNTIME_CACHE_CAPACITY``;
            None: OpenVINO's default of 5,000). Every new batch shape adds entries; in the server
            benchmark a cap of 200 saved ~24 MB of ~460 (fewer shapes, via ``seq_bucket``, saved ~90).
        cache_dir: root of the ONNX export cache (default: :func:`embedlab.paths.cache_root`).

    Attributes:
        precision: the precision the compiled model really runs (``bf16`` or ``f32``).
        streams: streams of the compiled model.
        threads: inference threads of the compiled model.
        ir: the IR file compiled, or the ONNX graph when the IR could not be cached.

    Raises:
        BackendUnavailableError: OpenVINO is missing, or a device other than CPU is asked for.
        ConfigError: an unknown precision or mode, or a thread / stream count below 1.
        ModelLoadError: the graph cannot be read, converted or compiled.
    """

    def __init__(
        self,
        spec: ModelSpec,
        device: str = "cpu",
        threads: int | None = None,
        precision: Precision = "bf16",
        mode: Mode = "throughput",
        graph: Path | None = None,
        name: str = "openvino",
        *,
        streams: int | None = None,
        split_min_rows: int | None = 2,
        pin_threads: bool | None = None,
        seq_bucket: int = 16,
        bucket_max_tokens: int = 128,
        runtime_cache: int | None = None,
        cache_dir: Path | None = None,
    ):
        ov = _import_openvino()
        if device != "cpu":
            raise BackendUnavailableError(f"the openvino backend runs on cpu only, not {device!r}")
        if precision not in _PRECISIONS:
            raise ConfigError(f"unknown OpenVINO precision {precision!r}; choose one of {_PRECISIONS}")
        if mode not in _MODES:
            raise ConfigError(f"unknown OpenVINO mode {mode!r}; choose one of {_MODES}")
        if (threads is not None and threads < 1) or (streams is not None and streams < 1) or (split_min_rows or 1) < 1:
            raise ConfigError("threads, streams and split_min_rows must be at least 1")
        if seq_bucket < 1 or bucket_max_tokens < 0:
            raise ConfigError("seq_bucket must be at least 1 and bucket_max_tokens at least 0")
        if graph is None:
            from embedlab.backends.onnx_export import cached_or_export

            graph = cached_or_export(spec, cache_dir)
        self.name = name
        self.device = device
        self.graph = graph
        self.mode: Mode = mode
        self.split_min_rows = split_min_rows
        self.seq_bucket = seq_bucket
        self.bucket_max_tokens = bucket_max_tokens
        if graph.suffix == ".xml":  # already OpenVINO IR (e.g. quantised with NNCF)
            self.ir = graph
        else:
            try:
                self.ir = cached_or_convert_ir(graph, ov)
            except OSError:  # a read-only cache: compile the ONNX graph directly (converted in memory each time)
                self.ir = graph
        config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": precision,
            "PERFORMANCE_HINT": mode.upper(),
            "INFERENCE_NUM_THREADS": threads or available_cores(),
        }
        if mode == "latency":
            config["NUM_STREAMS"] = 1
        elif streams is not None:
            config["NUM_STREAMS"] = streams
        if pin_threads is not None:
            config["ENABLE_CPU_PINNING"] = pin_threads
        if runtime_cache is not None:
            config["CPU_RUNTIME_CACHE_CAPACITY"] = runtime_cache
        core = ov.Core()
        try:
            model = core.read_model(str(self.ir))
            self._inputs = {port.get_any_name() for port in model.inputs}
            self.compiled: Any = core.compile_model(model, "CPU", config)
        except Exception as exc:
            raise ModelLoadError(f"OpenVINO cannot compile {self.ir} for CPU: {exc}") from exc
        runs = str(self.compiled.get_property("INFERENCE_PRECISION_HINT"))
        self.precision: Precision = "bf16" if "bf" in runs.lower() else "f32"
        self.streams = int(self.compiled.get_property("NUM_STREAMS"))
        self.threads = int(self.compiled.get_property("INFERENCE_NUM_THREADS"))
        # A fixed pool of infer requests, made here on one thread (not lazily by concurrent callers): each
        # keeps buffers for the largest shape it ran, so the pool, not the callers' threads, bounds memory.
        self._pool: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for _ in range(max(1, self.streams)):
            self._pool.put(self.compiled.create_infer_request())
        self._taking = threading.Lock()  # a call taking several requests takes them all or waits
        # One inference here, on the constructing thread: the Python binding sets up its numpy API lazily on
        # first use, and two threads doing that at once deadlock (pybind11's call_once against a static guard
        # while holding the GIL; seen as a server whose two workers hung in their first ``infer``).
        ids = np.ones((1, max(2, self.seq_bucket)), dtype=np.int64)
        self.forward(EncodedBatch(input_ids=ids, attention_mask=np.ones_like(ids), token_type_ids=None))

    @contextlib.contextmanager
    def _requests(self, count: int) -> Iterator[list[Any]]:
        """``count`` infer requests from the pool for one call (blocks while others hold them)."""
        with self._taking:
            requests = [self._pool.get() for _ in range(count)]
        try:
            yield requests
        finally:
            for request in requests:
                self._pool.put(request)

    def _feed(self, batch: EncodedBatch, rows: slice) -> dict[str, np.ndarray]:
        feed = {
            "input_ids": np.ascontiguousarray(batch.input_ids[rows], dtype=np.int64),
            "attention_mask": np.ascontiguousarray(batch.attention_mask[rows], dtype=np.int64),
        }
        if "token_type_ids" in self._inputs:
            types = batch.token_type_ids
            feed["token_type_ids"] = (
                np.ascontiguousarray(types[rows], dtype=np.int64)
                if types is not None
                else np.zeros_like(feed["input_ids"])
            )
        return feed

    def forward(self, batch: EncodedBatch) -> FloatArray:
        """Token vectors (batch, seq_len, hidden) float32 for a padded batch of (batch, seq_len) int64 ids.

        In the throughput layout a batch of at least ``split_min_rows`` rows runs as one slice of rows
        per stream, at once. A small batch runs padded to a ``seq_bucket`` multiple (see the class).
        The result is a fresh array: nothing returned aliases the infer requests' buffers.

        Raises:
            InferenceError: OpenVINO failed on the batch.
        """
        rows, seq_len = batch.shape
        run_len = seq_len
        if self.seq_bucket > 1 and rows * seq_len <= self.bucket_max_tokens:
            run_len = -(-seq_len // self.seq_bucket) * self.seq_bucket
            if run_len != seq_len:
                batch = _pad_to(batch, run_len)
        hidden = self._run(batch)
        return hidden if run_len == seq_len else np.ascontiguousarray(hidden[:, :seq_len])

    def _run(self, batch: EncodedBatch) -> FloatArray:
        """Token vectors (batch, seq_len, hidden) float32 of ``batch`` as given, whole or split across streams."""
        rows, seq_len = batch.shape
        parts = 1
        if (
            self.mode == "throughput"
            and self.streams > 1
            and self.split_min_rows is not None
            and rows >= self.split_min_rows
        ):
            parts = min(self.streams, rows)
        with self._requests(parts) as requests:
            try:
                if parts == 1:
                    request = requests[0]
                    request.infer(self._feed(batch, slice(None)), share_inputs=True)
                    return np.array(request.get_tensor(_OUTPUT).data, dtype=np.float32, copy=True)
                bounds = np.linspace(0, rows, parts + 1).round().astype(int)
                feeds = [self._feed(batch, slice(int(a), int(b))) for a, b in itertools.pairwise(bounds)]
                for request, feed in zip(requests, feeds, strict=True):
                    request.start_async(feed, share_inputs=True)
                out: FloatArray | None = None
                for request, a, b in zip(requests, bounds[:-1], bounds[1:], strict=True):
                    request.wait()
                    part = request.get_tensor(_OUTPUT).data
                    if out is None:
                        out = np.empty((rows, seq_len, part.shape[-1]), dtype=np.float32)
                    out[a:b] = part
                assert out is not None
                return out
            except Exception as exc:
                for request in requests:  # leave no request running with this call's inputs
                    with contextlib.suppress(Exception):
                        request.wait()
                raise InferenceError(f"OpenVINO failed on a batch of shape {batch.shape}: {exc}") from exc
