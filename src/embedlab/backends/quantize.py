"""Low-precision variants of an exported ONNX graph, made with ONNX Runtime's own quantisation tools.

``int8``: dynamic quantisation (weights int8 per output channel, activations uint8 scaled per batch at
run time) of the MatMul nodes only. Embedding tables (Gather) stay fp32: quantising them costs quality
and buys no speed. On CPUs with AVX512-VNNI the int8 MatMuls run several times faster than fp32.
Measured quality cost for all-MiniLM-L6-v2: see ``embedlab eval --compare`` and the README table.

Files are cached next to the fp32 graph they come from (graph + external data, see :mod:`graph_files`),
keyed by a recipe version, and written atomically.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

from embedlab.backends.graph_files import rewrite_graph
from embedlab.errors import BackendUnavailableError, ExportError
from embedlab.partials import partial_prefix, sweep_stale_partials

QUANT_RECIPE = "2"  # 2: weights in an external-data file (see graph_files)
VARIANTS = ("int8",)


def quantized_graph(fp32_graph: Path, variant: str = "int8") -> Path:
    """Path of the ``variant`` graph made from ``fp32_graph``, quantising it first if not cached.

    Raises:
        BackendUnavailableError: the onnx package (needed by ORT's quantiser) is missing.
        ExportError: quantisation failed or the variant is unknown.
    """
    if variant not in VARIANTS:
        raise ExportError(f"unknown quantisation variant {variant!r}; known: {VARIANTS}")
    target = fp32_graph.with_name(f"model.{variant}.r{QUANT_RECIPE}.onnx")
    meta = target.with_suffix(".json")
    if target.is_file() and meta.is_file():
        return target
    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise BackendUnavailableError("int8 quantisation needs the onnx package: pip install onnx") from exc
    sweep_stale_partials(target.parent, target.name)
    fd, tmp = tempfile.mkstemp(prefix=partial_prefix(target.name), suffix=".onnx", dir=target.parent)
    os.close(fd)
    try:
        logging.disable(logging.WARNING)  # the quantiser logs advice on the root logger on every call
        quantize_dynamic(
            str(fp32_graph),
            tmp,
            per_channel=True,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul"],
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        rewrite_graph(Path(tmp), target)
    except Exception as exc:
        raise ExportError(f"int8 quantisation of {fp32_graph} failed: {exc}") from exc
    finally:
        logging.disable(logging.NOTSET)
        Path(tmp).unlink(missing_ok=True)
    meta.write_text(json.dumps({"variant": variant, "recipe": QUANT_RECIPE, "source": fp32_graph.name}))
    return target
