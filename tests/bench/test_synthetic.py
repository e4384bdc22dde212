from __future__ import annotations

from pathlib import Path

import pytest

import embedlab
from embedlab.bench.synthetic import (
    SyntheticShape,
    _local_flops,
    build_synthetic_bert,
    measure_matmul_peak,
    model_flops,
    parse_synthetic,
)
from embedlab.errors import ConfigError, ModelLoadError


def test_parse_synthetic_crosses_values() -> None:
    shapes = parse_synthetic("hidden=128,384,768 layers=6")
    assert [(s.hidden, s.layers, s.heads, s.intermediate) for s in shapes] == [
        (128, 6, 2, 512),
        (384, 6, 6, 1536),
        (768, 6, 12, 3072),
    ]
    assert len(parse_synthetic("hidden=64;layers=1,2 heads=4 intermediate=100")) == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hidden=128", "needs layers"),
        ("hidden=128 layers=0", "positive integers"),
        ("hidden=128 layers=x", "must be integers"),
        ("width=3 layers=2", "key one of hidden"),
        ("hidden=100 layers=1 heads=3", "not divisible by heads=3"),
    ],
)
def test_parse_synthetic_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_synthetic(text)


def test_built_model_has_the_shape_and_runs(tmp_path: Path, tiny_bert_dir: Path) -> None:
    shape = SyntheticShape.of(hidden=24, layers=3, heads=4)
    directory = build_synthetic_bert(tmp_path / "m", shape, tokenizer_dir=tiny_bert_dir, max_seq_length=40)
    spec = embedlab.load_spec(str(directory))
    assert (spec.hidden_size, spec.num_layers, spec.num_heads, spec.intermediate_size) == (24, 3, 4, 96)
    assert spec.max_tokens == 40 and spec.pooling == "mean" and spec.normalize
    vectors = embedlab.load(str(directory)).embed(["a b c"])
    assert vectors.shape == (1, 24)
    flops = model_flops(spec)
    assert flops.linear_per_token == _local_flops(spec, flops.params).linear_per_token
    assert flops.layers == 3 and flops.attention_width == 24
    assert flops.batch_flops(2, 10) == 2 * (10 * (flops.linear_per_token + 3 * 4 * 10 * 24) + flops.per_sequence)
    assert flops.params > shape.encoder_params  # embeddings on top of the encoder layers


def test_default_model_flops_per_token() -> None:
    flops = model_flops(embedlab.load_spec(None))
    assert flops.linear_per_token == 6 * 2 * (4 * 384 * 384 + 2 * 384 * 1536)
    assert 21e6 < flops.per_token(30) < 22e6  # ~21 MFLOP per token at 30 tokens


def test_builder_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"no tokenizer\.json"):
        build_synthetic_bert(tmp_path / "m", SyntheticShape.of(16, 1), tokenizer_dir=tmp_path)
    with pytest.raises(ConfigError, match="above max_positions"):
        build_synthetic_bert(tmp_path / "m", SyntheticShape.of(16, 1), max_positions=64, max_seq_length=65)


def test_matmul_peak_is_positive_and_restores_threads() -> None:
    import torch

    before = torch.get_num_threads()
    assert measure_matmul_peak(1, size=128, seconds=0.05) > 0
    assert torch.get_num_threads() == before
    with pytest.raises(ConfigError):
        measure_matmul_peak(0)
