from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from embedlab.errors import ModelLoadError
from embedlab.models.resolve import ResolvedModel, resolve_model
from embedlab.models.spec import read_spec


def _spec(path: Path):  # type: ignore[no-untyped-def]
    return read_spec(ResolvedModel(name=str(path), path=path, source="local"))


def test_default_model_spec_matches_what_its_authors_shipped() -> None:
    spec = read_spec(resolve_model(None))
    assert (spec.dim, spec.max_tokens, spec.pooling, spec.normalize) == (384, 256, "mean", True)
    assert (spec.vocab_size, spec.num_layers, spec.num_heads, spec.intermediate_size) == (30522, 6, 12, 1536)
    assert spec.max_position_embeddings == 512
    assert spec.model_type == "bert"
    assert spec.tokenizer_file is not None
    assert spec.to_dict()["dim"] == 384


@pytest.mark.parametrize("mode", ["mean", "cls", "max", "mean_sqrt_len", "weighted_mean", "last_token"])
def test_pooling_mode_read_from_pooling_config(make_tiny_bert: Callable[..., Path], mode: str) -> None:
    assert _spec(make_tiny_bert(pooling=mode)).pooling == mode


def test_plain_hf_model_gets_sentence_transformers_defaults(make_tiny_bert: Callable[..., Path]) -> None:
    spec = _spec(make_tiny_bert(pooling=None, max_positions=100))
    assert spec.pooling == "mean"
    assert spec.normalize is False
    assert spec.max_tokens == 100  # min(max_position_embeddings, tokenizer model_max_length=512)
    assert spec.prompts == {}


def test_prompts_and_normalize_flag(make_tiny_bert: Callable[..., Path]) -> None:
    spec = _spec(
        make_tiny_bert(
            prompts={"query": "query: ", "passage": "passage: "}, default_prompt_name="query", normalize=False
        )
    )
    assert spec.prompts == {"query": "query: ", "passage": "passage: "}
    assert spec.default_prompt_name == "query"
    assert spec.normalize is False


def test_unsupported_module_is_a_clear_error(tmp_path: Path, tiny_bert_dir: Path) -> None:
    model = tmp_path / "m"
    shutil.copytree(tiny_bert_dir, model)
    modules = json.loads((model / "modules.json").read_text())
    modules.append({"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"})
    (model / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ModelLoadError, match="Dense"):
        _spec(model)


def test_two_pooling_modes_at_once_are_rejected(tmp_path: Path, tiny_bert_dir: Path) -> None:
    model = tmp_path / "m"
    shutil.copytree(tiny_bert_dir, model)
    config = json.loads((model / "1_Pooling" / "config.json").read_text())
    config["pooling_mode_cls_token"] = True
    (model / "1_Pooling" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="exactly one pooling mode"):
        _spec(model)


def test_broken_config_json_is_a_clear_error(tmp_path: Path, tiny_bert_dir: Path) -> None:
    model = tmp_path / "m"
    shutil.copytree(tiny_bert_dir, model)
    (model / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match=r"config\.json"):
        _spec(model)
