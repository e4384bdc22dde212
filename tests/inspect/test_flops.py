"""FLOP and activation-memory formulas, checked against hand formulas and torch's own FLOP counter."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import embedlab
from embedlab.engine.tokenize import find_pad_id, load_tokenizer
from embedlab.inspect.anatomy import load_module
from embedlab.inspect.flops import (
    ModelDims,
    estimate_activations,
    estimate_flops,
    linear_flops,
    model_dims,
)
from embedlab.inspect.trace import make_batch, parse_head, trace_forward

MINILM = ModelDims(layers=6, hidden=384, heads=12, head_dim=32, intermediate=1536, vocab=30522, max_positions=512)


def test_bert_formula_by_hand() -> None:
    d, i, n = 384, 1536, 6
    from embedlab.inspect.flops import LinearFlops

    linear = LinearFlops(per_token=n * (8 * d * d + 4 * d * i), per_sequence=2 * d * d)
    estimate = estimate_flops(MINILM, linear, batch=2, seq_len=16)
    assert estimate.attention_per_token == n * 4 * 16 * d
    assert estimate.per_sequence == 16 * (n * (8 * d * d + 4 * d * i) + n * 4 * 16 * d) + 2 * d * d
    assert estimate.total == 2 * estimate.per_sequence == 684_785_664


def test_attention_share_grows_with_length() -> None:
    from embedlab.inspect.flops import LinearFlops

    linear = LinearFlops(per_token=6 * (8 * 384 * 384 + 4 * 384 * 1536), per_sequence=0)
    short, long = estimate_flops(MINILM, linear, 1, 16), estimate_flops(MINILM, linear, 1, 512)
    assert long.attention_per_token == 32 * short.attention_per_token
    assert long.per_token > short.per_token


def test_activation_estimate_terms() -> None:
    a = estimate_activations(MINILM, batch=2, seq_len=16)
    assert a.attention_scores == 2 * 12 * 16 * 16 * 4
    assert a.hidden_state == 2 * 16 * 384 * 4
    assert a.ffn_intermediate == 2 * 16 * 1536 * 4
    assert a.all_attention_scores == 6 * a.attention_scores
    assert a.all_hidden_states == 7 * a.hidden_state
    attention_step = 4 * a.hidden_state + 2 * a.attention_scores
    ffn_step = 2 * a.hidden_state + 2 * a.ffn_intermediate
    assert a.inference_peak == a.attention_mask + a.hidden_state + max(attention_step, ffn_step)
    # at long L the quadratic score tensors dominate
    long = estimate_activations(MINILM, batch=1, seq_len=512)
    assert (
        long.inference_peak
        == long.attention_mask + long.hidden_state + 4 * long.hidden_state + 2 * long.attention_scores
    )


@pytest.mark.parametrize(
    ("shape", "head", "batch", "seq_len"),
    [
        ({"hidden": 128, "layers": 4, "heads": 4, "intermediate": 512}, None, 3, 40),
        ({"hidden": 64, "layers": 2, "heads": 8, "intermediate": 96}, "classification:3", 2, 17),
        ({"hidden": 64, "layers": 2, "heads": 8, "intermediate": 96}, "token-classification:4", 2, 9),
    ],
)
def test_estimate_equals_torch_flop_count(
    make_tiny_bert: Callable[..., Path], shape: dict[str, int], head: str | None, batch: int, seq_len: int
) -> None:
    spec = embedlab.load_spec(str(make_tiny_bert(**shape)))
    head_spec = parse_head(head) if head else None
    module = load_module(spec, head=head_spec)
    tokenizer = load_tokenizer(spec)
    trace = trace_forward(module, spec, make_batch(tokenizer, find_pad_id(spec, tokenizer), batch, seq_len), head_spec)
    linear = linear_flops(module, token_level_head=bool(head_spec and head_spec.kind == "token-classification"))
    assert trace.flops_counted == estimate_flops(model_dims(module.config), linear, batch, seq_len).total
