"""Cross-encoder specs read as sentence-transformers' CrossEncoder reads them, and models of the wrong kind refused."""

from __future__ import annotations

import json
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from embedlab.errors import ModelKindError, ModelLoadError
from embedlab.models.cross_encoder import CrossEncoderSpec, read_cross_encoder_spec
from embedlab.models.kind import model_kind
from embedlab.models.resolve import ResolvedModel
from embedlab.models.spec import read_spec

_ST_ACTIVATIONS = {"Sigmoid": "sigmoid", "Identity": "identity", "Tanh": "tanh", "Softmax": "softmax"}


def _resolved(path: Path) -> ResolvedModel:
    return ResolvedModel(name=str(path), path=path, source="local")


def _spec(path: Path) -> CrossEncoderSpec:
    return read_cross_encoder_spec(_resolved(path))


def _theirs(path: Path) -> tuple[str, int, int]:
    """(activation, num_labels, max_seq_length) as sentence-transformers' CrossEncoder loads them."""
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(str(path), device="cpu")
    return _ST_ACTIVATIONS[type(model.activation_fn).__name__], model.num_labels, int(model.max_seq_length)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"num_labels": 3},
        {"activation": "Tanh"},
        {"num_labels": 3, "activation": "Softmax"},
        {"max_length": None},
        {"layout": "legacy"},
        {"layout": "legacy", "num_labels": 2},
        {"layout": "legacy", "activation": "Identity"},
    ],
    ids=repr,
)
def test_spec_matches_what_cross_encoder_loads(make_tiny_cross_encoder: Callable[..., Path], options: Any) -> None:
    path = make_tiny_cross_encoder(**options)
    spec = _spec(path)
    assert (spec.activation, spec.num_labels, spec.max_tokens) == _theirs(path)
    assert spec.architecture == "BertForSequenceClassification"
    assert len(spec.labels) == spec.num_labels
    assert spec.output == "logits"
    assert spec.to_dict()["path"] == str(path)


def test_activation_source_names_the_file_and_field(make_tiny_cross_encoder: Callable[..., Path]) -> None:
    assert _spec(make_tiny_cross_encoder()).activation_source == "config_sentence_transformers.json activation_fn"
    legacy = _spec(make_tiny_cross_encoder(layout="legacy", activation="Identity"))
    assert legacy.activation_source == "config.json sentence_transformers.activation_fn"
    assert _spec(make_tiny_cross_encoder(layout="legacy")).activation_source == "default for num_labels=1"


def _copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def _edit_json(path: Path, **changes: Any) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_oldest_activation_key_is_read(tmp_path: Path, make_tiny_cross_encoder: Callable[..., Path]) -> None:
    model = _copy(make_tiny_cross_encoder(layout="legacy"), tmp_path / "m")
    _edit_json(model / "config.json", sbert_ce_default_activation_function="torch.nn.modules.activation.Tanh")
    spec = _spec(model)
    assert (spec.activation, spec.activation_source) == ("tanh", "config.json sbert_ce_default_activation_function")
    assert spec.activation == _theirs(model)[0]


def test_untrusted_activation_is_skipped_as_cross_encoder_skips_it(
    tmp_path: Path, make_tiny_cross_encoder: Callable[..., Path]
) -> None:
    model = _copy(make_tiny_cross_encoder(), tmp_path / "m")
    _edit_json(model / "config_sentence_transformers.json", activation_fn="mypackage.activations.Cube")
    spec = _spec(model)
    assert spec.activation == "sigmoid" == _theirs(model)[0]
    skipped = "skipped config_sentence_transformers.json activation_fn mypackage.activations.Cube (not trusted)"
    assert skipped in spec.activation_source


def test_activation_embedlab_lacks_is_a_clear_error(
    tmp_path: Path, make_tiny_cross_encoder: Callable[..., Path]
) -> None:
    model = _copy(make_tiny_cross_encoder(), tmp_path / "m")
    _edit_json(model / "config_sentence_transformers.json", activation_fn="torch.nn.modules.activation.ReLU")
    with pytest.raises(ModelLoadError, match=r"activation torch\.nn\.modules\.activation\.ReLU.*supported: torch\.nn"):
        _spec(model)


def test_extra_modules_are_refused(tmp_path: Path, make_tiny_cross_encoder: Callable[..., Path]) -> None:
    model = _copy(make_tiny_cross_encoder(), tmp_path / "m")
    modules = json.loads((model / "modules.json").read_text())
    modules.append({"idx": 1, "name": "1", "path": "1_Dense", "type": "sentence_transformers.base.modules.Dense"})
    (model / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ModelLoadError, match=r"\['Transformer', 'Dense'\].*one sequence-classification Transformer"):
        _spec(model)


def test_causal_lm_reranker_is_refused(tmp_path: Path, make_tiny_cross_encoder: Callable[..., Path]) -> None:
    model = _copy(make_tiny_cross_encoder(), tmp_path / "m")
    _edit_json(model / "config.json", architectures=["Qwen3ForCausalLM"])
    with pytest.raises(ModelLoadError, match=r"no sequence-classification head \(architectures: Qwen3ForCausalLM"):
        _spec(model)


def test_embedding_model_is_refused_as_cross_encoder(tiny_bert_dir: Path, make_tiny_bert: Callable[..., Path]) -> None:
    with pytest.raises(ModelKindError, match=r"is an embedding model, not a cross-encoder.*embedlab\.load") as caught:
        _spec(tiny_bert_dir)
    assert caught.value.kind == "embedding"
    assert str(tiny_bert_dir) in str(caught.value)
    assert "Pooling" in caught.value.evidence
    with pytest.raises(ModelKindError, match="no sequence-classification head"):
        _spec(make_tiny_bert(pooling=None))  # a plain BertModel, no sentence-transformers files


@pytest.mark.parametrize("options", [{}, {"layout": "legacy"}], ids=repr)
def test_cross_encoder_is_refused_as_embedding_model(
    make_tiny_cross_encoder: Callable[..., Path], options: Any
) -> None:
    path = make_tiny_cross_encoder(**options)
    with pytest.raises(ModelKindError, match=r"is a cross-encoder \(reranker\), not an embedding model.*load_reranker"):
        read_spec(_resolved(path))


def test_kind_follows_the_sentence_transformers_model_type(
    tmp_path: Path, make_tiny_cross_encoder: Callable[..., Path], tiny_bert_dir: Path
) -> None:
    assert model_kind(tiny_bert_dir)[0] == "embedding"
    assert model_kind(make_tiny_cross_encoder())[0] == "cross-encoder"
    model = _copy(tiny_bert_dir, tmp_path / "m")
    _edit_json(model / "config_sentence_transformers.json", model_type="CrossEncoder")
    assert model_kind(model) == ("cross-encoder", "config_sentence_transformers.json says model_type CrossEncoder")


def test_kind_error_survives_pickling(make_tiny_cross_encoder: Callable[..., Path]) -> None:
    with pytest.raises(ModelKindError) as caught:
        read_spec(_resolved(make_tiny_cross_encoder()))
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (type(copy), str(copy), copy.kind) == (ModelKindError, str(caught.value), "cross-encoder")
