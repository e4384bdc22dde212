"""Which kind of model a directory holds: an embedding model or a cross-encoder (reranker).

Read from the model's own files, first match wins:

1. ``config_sentence_transformers.json`` ``model_type``: ``CrossEncoder`` or ``SentenceTransformer``
   (sentence-transformers 5 and later write it);
2. a ``Pooling`` module in ``modules.json``: an embedding model;
3. ``config.json``: a sequence-classification head (``architectures`` ending in
   ``ForSequenceClassification``), or the cross-encoder keys older sentence-transformers wrote
   (``sentence_transformers.activation_fn``, ``sbert_ce_default_activation_function``): a cross-encoder;
4. anything else is an embedding model (a plain transformer, mean-pooled as sentence-transformers would).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from embedlab.errors import ModelKindError
from embedlab.models.config_files import read_config, read_json, read_optional

ModelKind = Literal["embedding", "cross-encoder"]
_ST_MODEL_TYPES: dict[str, ModelKind] = {"CrossEncoder": "cross-encoder", "SentenceTransformer": "embedding"}


def _has_pooling_module(path: Path) -> bool:
    modules_file = path / "modules.json"
    if not modules_file.is_file():
        return False
    modules: Any = read_json(modules_file)
    return isinstance(modules, list) and any(str(m.get("type", "")).endswith("Pooling") for m in modules)


def model_kind(path: Path) -> tuple[ModelKind, str]:
    """The kind of model in ``path`` and the evidence for it (file and field, for error messages).

    Raises:
        ModelLoadError: config.json is missing, or a file is unreadable.
    """
    config = read_config(path)
    st_type = read_optional(path / "config_sentence_transformers.json").get("model_type")
    if isinstance(st_type, str) and st_type in _ST_MODEL_TYPES:
        return _ST_MODEL_TYPES[st_type], f"config_sentence_transformers.json says model_type {st_type}"
    if _has_pooling_module(path):
        return "embedding", "modules.json has a Pooling module"
    heads = [a for a in config.get("architectures") or [] if str(a).endswith("ForSequenceClassification")]
    if heads:
        return "cross-encoder", f"config.json architectures {heads[0]}"
    st_config = config.get("sentence_transformers")
    if isinstance(st_config, dict) and "activation_fn" in st_config:
        return "cross-encoder", "config.json has sentence_transformers.activation_fn"
    if config.get("sbert_ce_default_activation_function") is not None:
        return "cross-encoder", "config.json has sbert_ce_default_activation_function"
    return "embedding", "no sequence-classification head in config.json"


def require_kind(path: Path, name: str, expected: ModelKind) -> None:
    """Check that ``path`` holds a model of the ``expected`` kind.

    Raises:
        ModelKindError: it holds the other kind (the message names the model, what it is, and why).
        ModelLoadError: config.json is missing, or a file is unreadable.
    """
    kind, evidence = model_kind(path)
    if kind != expected:
        raise ModelKindError(name, kind, evidence)
