from __future__ import annotations

from pathlib import Path

import pytest

from embedlab.errors import ModelNotFoundError
from embedlab.models.resolve import DEFAULT_MODEL, model_fingerprint, resolve_model


def test_default_model_resolves_offline_from_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    resolved = resolve_model(None)
    assert resolved.name == DEFAULT_MODEL
    assert resolved.source in {"package", "hf-cache"}
    assert (resolved.path / "config.json").is_file()
    assert (resolved.path / "model.safetensors").is_file()


def test_short_alias_of_default_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_model("all-MiniLM-L6-v2").name == DEFAULT_MODEL


def test_local_directory_wins(tiny_bert_dir: Path) -> None:
    resolved = resolve_model(str(tiny_bert_dir))
    assert resolved.source == "local"
    assert resolved.path == tiny_bert_dir.resolve()


def test_unknown_hub_name_offline_names_every_place_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError) as info:
        resolve_model("nobody/no-such-model-xyz")
    message = str(info.value)
    assert "nobody/no-such-model-xyz" in message
    assert "local directory" in message
    assert "Hugging Face cache" in message
    assert "HF_HUB_OFFLINE" in message


def test_directory_without_config_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"no config\.json"):
        resolve_model(str(tmp_path))


def test_fingerprint_changes_with_the_files(tmp_path: Path, tiny_bert_dir: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_bert_dir, copy)
    assert model_fingerprint(copy) == model_fingerprint(tiny_bert_dir)
    changed = tmp_path / "changed"
    shutil.copytree(tiny_bert_dir, changed)
    (changed / "sentence_bert_config.json").write_text('{"max_seq_length": 16}')
    assert model_fingerprint(changed) != model_fingerprint(tiny_bert_dir)
