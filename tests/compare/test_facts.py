"""Static model facts: parameter counts from shapes alone equal the loaded model's, disk size, Matryoshka sizes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import embedlab
from embedlab.compare.facts import matryoshka_dims, read_facts


def test_counts_equal_the_loaded_modules_parameters(make_tiny_bert: Callable[..., Path]) -> None:
    from transformers import AutoModel

    path = make_tiny_bert(hidden=48, layers=3, heads=4, intermediate=96)
    spec = embedlab.load_spec(str(path))
    facts = read_facts(spec)
    module = AutoModel.from_pretrained(str(path))
    assert facts.params == sum(p.numel() for p in module.parameters())
    assert facts.embedding_params == spec.vocab_size * 48 == module.embeddings.word_embeddings.weight.numel()
    assert facts.encoder_params == sum(p.numel() for p in module.encoder.parameters())
    assert (facts.layers, facts.hidden, facts.dim, facts.max_tokens) == (3, 48, 48, 64)
    files = [p for p in path.rglob("*") if p.is_file()]
    assert facts.disk_bytes == sum(p.stat().st_size for p in files)
    assert facts.matryoshka_dims == ()


@pytest.mark.slow
def test_the_two_real_models_have_their_published_parameter_counts() -> None:
    minilm = read_facts(embedlab.load_spec("all-MiniLM-L6-v2"))
    mpnet = read_facts(embedlab.load_spec("all-mpnet-base-v2"))
    assert (minilm.params, minilm.embedding_params) == (22_713_216, 30522 * 384)
    assert (mpnet.params, mpnet.embedding_params) == (109_486_464, 30527 * 768)
    assert (mpnet.layers, mpnet.hidden, mpnet.max_tokens, mpnet.model_type) == (12, 768, 384, "mpnet")


def test_matryoshka_sizes_come_from_the_model_card(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text(
        "---\ntags: [sentence-transformers]\n---\n## Training\n"
        '```json\n{\n    "loss": "MultipleNegativesRankingLoss",\n    "matryoshka_dims": [\n        768,\n'
        "        512,\n        256,\n        128,\n        64\n    ],\n}\n```\n"
    )
    assert matryoshka_dims(tmp_path, 768) == (512, 256, 128, 64)
    assert matryoshka_dims(tmp_path, 256) == (128, 64)
    (tmp_path / "README.md").write_text("# a model card that says nothing of Matryoshka\n")
    assert matryoshka_dims(tmp_path, 768) == ()
    assert matryoshka_dims(tmp_path / "missing", 768) == ()
