"""Parameter anatomy on the real default model and on tiny random BERTs of other shapes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

import embedlab
from embedlab.inspect.anatomy import classify_parameter, load_module, parameter_anatomy


def bert_parameter_count(vocab: int, positions: int, hidden: int, layers: int, intermediate: int) -> int:
    """BERT's parameter count written out by hand (with pooler), to check the anatomy independently."""
    d, i = hidden, intermediate
    embeddings = vocab * d + positions * d + 2 * d + 2 * d
    layer = 4 * (d * d + d) + 2 * d + (d * i + i) + (i * d + d) + 2 * d
    return embeddings + layers * layer + (d * d + d)


@pytest.mark.slow
def test_default_model_total_and_word_embeddings() -> None:
    anatomy = parameter_anatomy(load_module(embedlab.load_spec()))
    assert anatomy.total == 22_713_216
    assert anatomy.word_embedding_shape == (30522, 384)
    assert anatomy.embedding_parts()["word"] == 30522 * 384 == 11_720_448
    assert anatomy.embedding_parts()["position"] == 512 * 384
    assert anatomy.num_layers == 6 and anatomy.layers_identical
    assert anatomy.layer_parts(0)["attention_q"] == 384 * 384 + 384
    assert anatomy.layer_parts(0)["ffn_up"] == 384 * 1536 + 1536
    assert anatomy.section_total("pooler") == 384 * 384 + 384
    assert sum(anatomy.sections().values()) == anatomy.total
    assert anatomy.total == bert_parameter_count(30522, 512, 384, 6, 1536)
    assert anatomy.weight_bytes() == {
        "float32": 4 * 22_713_216,
        "float16": 2 * 22_713_216,
        "bfloat16": 2 * 22_713_216,
        "int8": 22_713_216,
    }


@pytest.mark.parametrize(
    "shape",
    [
        {"hidden": 128, "layers": 4, "heads": 4, "intermediate": 512},
        {"hidden": 768, "layers": 2, "heads": 12, "intermediate": 1024},
        {"hidden": 32, "layers": 2, "heads": 2, "intermediate": 64},
    ],
)
def test_tiny_models_of_other_shapes_sum_exactly(make_tiny_bert: Callable[..., Path], shape: dict[str, int]) -> None:
    spec = embedlab.load_spec(str(make_tiny_bert(**shape)))
    module = load_module(spec)
    anatomy = parameter_anatomy(module)
    d, n, i = shape["hidden"], shape["layers"], shape["intermediate"]
    assert anatomy.total == sum(p.numel() for p in module.parameters())
    assert anatomy.total == bert_parameter_count(spec.vocab_size, 128, d, n, i)
    assert anatomy.word_embedding_shape == (spec.vocab_size, d)
    assert anatomy.num_layers == n
    assert anatomy.layer_totals() == [anatomy.layer_totals()[0]] * n
    parts = anatomy.layer_parts(n - 1)
    assert parts["attention_k"] == d * d + d
    assert parts["attention_out"] == d * d + d
    assert parts["ffn_down"] == i * d + d
    assert parts["ffn_norm"] == parts["attention_norm"] == 2 * d
    assert "other" not in parts and anatomy.section_total("other") == 0


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("embeddings.word_embeddings.weight", ("embeddings", "word", None)),
        ("bert.encoder.layer.3.attention.self.query.bias", ("layer", "attention_q", 3)),
        ("encoder.layer.0.attention.output.dense.weight", ("layer", "attention_out", 0)),
        ("encoder.layer.0.attention.output.LayerNorm.weight", ("layer", "attention_norm", 0)),
        ("encoder.layer.1.output.dense.weight", ("layer", "ffn_down", 1)),
        ("transformer.layer.2.attention.k_lin.weight", ("layer", "attention_k", 2)),
        ("transformer.layer.2.ffn.lin1.weight", ("layer", "ffn_up", 2)),
        ("encoder.layer.4.attention.attn.o.weight", ("layer", "attention_out", 4)),
        ("layers.7.self_attn.v_proj.weight", ("layer", "attention_v", 7)),
        ("layers.7.mlp.down_proj.weight", ("layer", "ffn_down", 7)),
        ("pooler.dense.weight", ("pooler", "pooler", None)),
        ("classifier.bias", ("head", "head", None)),
        ("encoder.relative_attention_bias.weight", ("other", "other", None)),
    ],
)
def test_parameter_names_are_bucketed(name: str, expected: tuple[str, str, int | None]) -> None:
    assert classify_parameter(name) == expected


def test_unknown_parameters_land_in_other_and_the_sum_stays_exact() -> None:
    class Odd(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mystery = torch.nn.Parameter(torch.zeros(7, 3))
            self.encoder = torch.nn.ModuleDict({"layer": torch.nn.ModuleList([torch.nn.Linear(4, 5)])})

    anatomy = parameter_anatomy(Odd())
    assert anatomy.total == 21 + 25
    assert anatomy.sections()["other"] == 21
    assert anatomy.layer_parts(0) == {"other": 25}


def test_tied_weights_are_counted_once(make_tiny_bert: Callable[..., Path]) -> None:
    module: Any = load_module(embedlab.load_spec(str(make_tiny_bert())))
    module.pooler.dense.weight = module.encoder.layer[0].attention.self.query.weight  # share one tensor
    anatomy = parameter_anatomy(module)
    assert anatomy.total == sum(p.numel() for p in module.parameters())
    assert sum(anatomy.sections().values()) == anatomy.total
