"""A real traced forward pass: shapes, task heads, measured memory, and clear errors for bad requests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from embedlab.errors import ConfigError
from embedlab.inspect import inspect_model, parse_head
from embedlab.inspect.trace import HeadSpec


@pytest.mark.slow
def test_default_model_traced_at_b2_l16() -> None:
    report = inspect_model(batch=2, seq_len=16, threads=1)
    trace = report.trace
    assert trace.attention_implementation == "eager"
    assert trace.shape_of("input ids") == (2, 16)
    assert trace.shape_of("embeddings") == (2, 16, 384)
    for layer in range(6):
        assert trace.shape_of(f"layer {layer} output") == (2, 16, 384)
        assert trace.shape_of(f"layer {layer} attention scores") == (2, 12, 16, 16)
    assert trace.shape_of("last hidden state") == (2, 16, 384)
    assert trace.shape_of("pooled (mean)") == (2, 384)
    assert trace.shape_of("normalised embedding") == (2, 384)
    assert report.anatomy.total == 22_713_216
    assert trace.flops_counted == report.flops.total == 684_785_664
    assert report.activations.attention_scores == 2 * 12 * 16 * 16 * 4
    assert report.facts["max position embeddings"] == 512
    assert report.facts["max tokens used (sentence-transformers max_seq_length)"] == 256
    assert report.facts["tokenizer"].startswith("WordPiece")
    assert [f.seq_len for f in report.flops_by_length] == [16, 32, 64, 128, 256, 512]


def test_tiny_model_shapes_follow_its_config(make_tiny_bert: Callable[..., Path]) -> None:
    model = make_tiny_bert(hidden=128, layers=4, heads=4, intermediate=512)
    report = inspect_model(str(model), batch=3, seq_len=20, threads=1)
    assert report.trace.shape_of("layer 3 attention scores") == (3, 4, 20, 20)
    assert report.trace.shape_of("layer 3 output") == (3, 20, 128)
    assert report.trace.shape_of("pooled (mean)") == (3, 128)
    assert not any(t.name.startswith("layer 4") for t in report.trace.tensors)
    assert report.trace.flops_counted == report.flops.total


@pytest.mark.parametrize(
    ("head", "logits"),
    [("classification:3", (2, 3)), ("token-classification:5", (2, 12, 5)), ("classification:1", (2, 1))],
)
def test_task_heads(make_tiny_bert: Callable[..., Path], head: str, logits: tuple[int, ...]) -> None:
    report = inspect_model(
        str(make_tiny_bert(hidden=128, layers=4, heads=4, intermediate=512)), batch=2, seq_len=12, head=head, threads=1
    )
    assert report.trace.shape_of(f"head logits ({head})") == logits
    assert report.head_anatomy is not None
    labels = logits[-1]
    assert report.head_anatomy.section_total("head") == 128 * labels + labels
    assert report.trace.flops_counted == report.flops.total


def test_measured_peak_memory_is_reported(make_tiny_bert: Callable[..., Path]) -> None:
    model = make_tiny_bert(hidden=128, layers=4, heads=4, intermediate=512)
    report = inspect_model(str(model), batch=8, seq_len=64, count_flops=False, threads=1)
    assert report.trace.rss_before_bytes is not None and report.trace.rss_before_bytes > 0
    assert report.trace.peak_added_bytes is not None and report.trace.flops_counted is None
    # one 8 × 4 × 64 × 64 float32 score tensor is 512 KiB; the pass must add at least that
    assert report.trace.peak_added_bytes >= report.activations.attention_scores


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("regression:2", "unknown head spec 'regression:2'"),
        ("classification", "unknown head spec 'classification'"),
        ("classification:x", "is not a whole number"),
        ("token-classification:0", "at least 1"),
    ],
)
def test_bad_head_specs(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_head(text)


def test_head_spec_parses() -> None:
    assert parse_head(" token-classification:7 ") == HeadSpec("token-classification", 7)
    assert parse_head("classification:2").auto_class == "AutoModelForSequenceClassification"


@pytest.mark.parametrize(
    ("batch", "seq_len", "message"),
    [
        (0, 16, "batch size B must be at least 1, got 0"),
        (-3, 16, "batch size B must be at least 1, got -3"),
        (2, 0, "sequence length L must be at least 1, got 0"),
        (2, -1, "sequence length L must be at least 1"),
        (2, 2, "leaves no room beside the 2 special tokens"),
        (2, 129, "L=129 is above the model limit of 128 positions"),
    ],
)
def test_bad_shapes(tiny_bert_dir: Path, batch: int, seq_len: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        inspect_model(str(tiny_bert_dir), batch=batch, seq_len=seq_len)


def test_bad_head_fails_before_loading(tiny_bert_dir: Path) -> None:
    with pytest.raises(ConfigError, match="unknown head spec"):
        inspect_model(str(tiny_bert_dir), head="qa:2")


def test_length_above_max_tokens_but_within_positions_is_noted(make_tiny_bert: Callable[..., Path]) -> None:
    report = inspect_model(str(make_tiny_bert()), batch=1, seq_len=100, threads=1)  # max_seq_length 64, positions 128
    assert any("above the 64 tokens" in note for note in report.notes)
