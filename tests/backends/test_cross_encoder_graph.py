"""A cross-encoder's ONNX graph: the classification head's logits, cached apart from the folder's embedding graph."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embedlab.backends import create_backend
from embedlab.backends.onnx_export import EXPORT_RECIPE, OPSET, cached_or_export, export_dir, export_key
from embedlab.engine.batch_plan import pad_segments
from embedlab.engine.pairs import PairTokenizer
from embedlab.engine.tokenize import load_tokenizer
from embedlab.models.cross_encoder import CrossEncoderSpec, read_cross_encoder_spec
from embedlab.models.resolve import ResolvedModel, model_fingerprint
from embedlab.models.spec import ModelOutput


@dataclass(frozen=True)
class Files:
    """The same folder seen as an embedding model's files (what a ModelSpec of it would key by)."""

    name: str
    path: Path
    tokenizer_file: Path | None = None
    output: ModelOutput = "token_embeddings"


def _spec(path: Path) -> CrossEncoderSpec:
    return read_cross_encoder_spec(ResolvedModel(str(path), path, "local"))


def test_logits_graph_has_its_own_cache_key(tiny_cross_encoder_dir: Path, tmp_path: Path) -> None:
    spec = _spec(tiny_cross_encoder_dir)
    as_embedding = Files(spec.name, spec.path)
    assert export_dir(spec, tmp_path) != export_dir(as_embedding, tmp_path)
    # the embedding graph's key is the one it had before cross-encoders existed: cached graphs stay valid
    text = f"{model_fingerprint(spec.path)}|recipe={EXPORT_RECIPE}|opset={OPSET}"
    assert export_key(as_embedding) == hashlib.sha256(text.encode()).hexdigest()[:20]


def test_exported_graph_returns_the_logits_of_torch(
    make_tiny_cross_encoder: Callable[..., Path], tmp_path: Path
) -> None:
    import onnx

    spec = _spec(make_tiny_cross_encoder(num_labels=3))
    graph = cached_or_export(spec, tmp_path)
    meta = json.loads((graph.parent / "meta.json").read_text())
    assert (meta["output"], meta["inputs"]) == ("logits", ["input_ids", "attention_mask", "token_type_ids"])
    (output,) = onnx.load(str(graph), load_external_data=False).graph.output
    assert output.name == "logits"
    assert [d.dim_param or d.dim_value for d in output.type.tensor_type.shape.dim] == ["batch", 3]

    tokenized = PairTokenizer(load_tokenizer(spec)).tokenize([("the cat", "sat on the mat"), ("a", "b c")], 64)
    batch = pad_segments(tokenized.segments, 0)
    onnx_logits = create_backend("onnx", spec, threads=1).forward(batch)
    torch_logits = create_backend("torch", spec, threads=1).forward(batch)
    assert onnx_logits.shape == (2, 3) and onnx_logits.dtype == np.float32
    np.testing.assert_allclose(onnx_logits, torch_logits, atol=1e-5, rtol=0)
