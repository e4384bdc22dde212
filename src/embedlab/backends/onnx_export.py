"""Export a model's transformer to ONNX once, and find the cached file on later runs.

The graph takes ``input_ids``, ``attention_mask`` (and ``token_type_ids`` when the model uses them),
each (batch, seq_len) int64 with both axes dynamic, and returns the spec's ``output``: for an embedding
model ``token_embeddings`` of shape (batch, seq_len, hidden) float32 (pooling stays outside the graph,
shared with every backend); for a cross-encoder the classification head's ``logits`` (batch, num_labels)
float32 (the activation stays outside, in the engine).

Files are cached under ``<cache root>/onnx/<model name>/<key>/model.onnx`` (weights in ``model.onnx.data``
next to it, see :mod:`graph_files`) where the key hashes the
model's files (config, tokenizer, weights), the export recipe version, the opset and, for a
classification graph, its output, so a changed model or recipe never reuses a stale graph and the
``logits`` graph of a folder never takes the place of its ``token_embeddings`` graph.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from embedlab.backends.graph_files import rewrite_graph
from embedlab.errors import BackendUnavailableError, ExportError
from embedlab.models.resolve import model_fingerprint
from embedlab.models.spec import ModelFiles
from embedlab.partials import partial_prefix, sweep_stale_partials
from embedlab.paths import cache_root

EXPORT_RECIPE = "4"  # bump when the export code changes what the graph computes or how it is stored
OPSET = 17
GRAPH_FILE = "model.onnx"
#: the field of the transformers model output that each graph output is
_RESULT_FIELDS = {"token_embeddings": "last_hidden_state", "logits": "logits"}


def export_key(spec: ModelFiles) -> str:
    """A short hex key for the exported graph of this model, output and recipe."""
    text = f"{model_fingerprint(spec.path)}|recipe={EXPORT_RECIPE}|opset={OPSET}"
    if spec.output != "token_embeddings":  # the embedding graph's key predates the output: keep it as it was
        text += f"|output={spec.output}"
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def export_dir(spec: ModelFiles, root: Path | None = None) -> Path:
    """Directory that holds (or will hold) the exported graph of ``spec``."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "--", spec.name).strip("-")[-80:] or "model"
    return (root or cache_root()) / "onnx" / safe / export_key(spec)


def _uses_token_types(model: Any) -> bool:
    config = model.config
    accepts = "token_type_ids" in inspect.signature(model.forward).parameters
    return bool(accepts and int(getattr(config, "type_vocab_size", 0) or 0) > 0)


def export_onnx(spec: ModelFiles, target_dir: Path) -> Path:
    """Export the transformer of ``spec`` (with its classification head for ``logits``) to
    ``target_dir/model.onnx`` atomically; return its path.

    Raises:
        BackendUnavailableError: PyTorch is not installed (it is needed once, to export).
        ExportError: the export itself failed.
    """
    try:
        import torch
        from transformers import AutoModel, AutoModelForSequenceClassification
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise BackendUnavailableError(
            "exporting to ONNX needs PyTorch once (pip install torch); later runs reuse the cached graph"
        ) from exc

    hf_logging.disable_progress_bar()
    output = spec.output
    auto = AutoModelForSequenceClassification if output == "logits" else AutoModel
    model = auto.from_pretrained(str(spec.path), attn_implementation="eager").eval()
    with_types = _uses_token_types(model)
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if with_types else [])

    class _Transformer(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *inputs: Any) -> Any:
            return getattr(self.inner(**dict(zip(names, inputs, strict=True))), _RESULT_FIELDS[output])

    sample = torch.ones((2, 8), dtype=torch.long)
    args = tuple(sample if n != "token_type_ids" else torch.zeros_like(sample) for n in names)
    axes: dict[str, dict[int, str]] = {n: {0: "batch", 1: "sequence"} for n in names}
    axes[output] = {0: "batch"} if output == "logits" else {0: "batch", 1: "sequence"}
    target_dir.mkdir(parents=True, exist_ok=True)
    sweep_stale_partials(target_dir, GRAPH_FILE)  # scratch folders of exports that were killed
    scratch = Path(tempfile.mkdtemp(prefix=partial_prefix(GRAPH_FILE), dir=target_dir))  # torch may add data here
    tmp_name = str(scratch / GRAPH_FILE)
    started = time.perf_counter()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Transformer(model),
                args,
                tmp_name,
                input_names=names,
                output_names=[output],
                dynamic_axes=axes,
                opset_version=OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
        final = rewrite_graph(Path(tmp_name), target_dir / GRAPH_FILE)
    except Exception as exc:
        raise ExportError(f"exporting {spec.name} to ONNX failed: {exc}") from exc
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    meta = {
        "model": spec.name,
        "model_fingerprint": model_fingerprint(spec.path),
        "recipe": EXPORT_RECIPE,
        "opset": OPSET,
        "inputs": names,
        "output": output,
        "torch": torch.__version__,
        "export_seconds": round(time.perf_counter() - started, 2),
    }
    (target_dir / "meta.json").write_text(json.dumps(meta, indent=2))
    return final


def cached_or_export(spec: ModelFiles, root: Path | None = None) -> Path:
    """Path of the exported graph of ``spec``, exporting it first if no valid cached copy exists."""
    directory = export_dir(spec, root)
    graph = directory / GRAPH_FILE
    if graph.is_file() and (directory / "meta.json").is_file():
        return graph
    return export_onnx(spec, directory)
