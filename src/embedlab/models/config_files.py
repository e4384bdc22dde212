"""Reading a model directory's JSON files, and the token limit sentence-transformers derives from them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from embedlab.errors import ModelLoadError

# Hugging Face uses huge sentinels for "no limit" in tokenizer_config.model_max_length.
_NO_LIMIT = 1_000_000


def read_json(path: Path) -> Any:
    """The JSON object or list in ``path``.

    Raises:
        ModelLoadError: the file cannot be read, is not JSON, or holds neither an object nor a list.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict | list):
        raise ModelLoadError(f"{path} does not hold a JSON object")
    return data


def read_optional(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``, or {} when the file does not exist.

    Raises:
        ModelLoadError: the file exists but cannot be read or holds no JSON object.
    """
    if not path.is_file():
        return {}
    data = read_json(path)
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path} should hold a JSON object")
    return data


def read_config(path: Path) -> dict[str, Any]:
    """The model's ``config.json`` (the transformers config).

    Raises:
        ModelLoadError: it is missing or unreadable.
    """
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ModelLoadError(f"{path} has no config.json")
    return read_optional(config_file)


def max_positions_of(config: dict[str, Any]) -> int:
    """The architecture's position limit from ``config.json`` (512 when it states none)."""
    return int(config.get("max_position_embeddings") or config.get("n_positions") or 512)


def token_limit(path: Path, config: dict[str, Any], module_config: bool = True) -> int:
    """The token limit sentence-transformers uses for the model in ``path``, special tokens included.

    ``max_seq_length`` of ``sentence_bert_config.json`` when given (as is) and ``module_config``, else the
    tokenizer's ``model_max_length`` capped at the architecture's ``max_position_embeddings``.

    Args:
        module_config: whether sentence-transformers reads ``sentence_bert_config.json`` for this model
            (a cross-encoder's only when it has ``modules.json``).

    Raises:
        ModelLoadError: one of the files is unreadable.
    """
    stated = int(read_optional(path / "sentence_bert_config.json").get("max_seq_length") or 0) if module_config else 0
    if stated > 0:
        return stated
    max_positions = max_positions_of(config)
    tok_max = int(read_optional(path / "tokenizer_config.json").get("model_max_length") or _NO_LIMIT)
    return min(max_positions, tok_max if tok_max < _NO_LIMIT else max_positions)
