"""The facts about a cross-encoder (reranker) that embedlab needs, read as sentence-transformers reads them.

A cross-encoder is a transformer with a sequence-classification head: a (query, document) pair goes in
as one sequence, ``num_labels`` logits come out. ``CrossEncoder(path).predict(pairs)`` then applies an
activation, which this module decides exactly as sentence-transformers 6 does
(``CrossEncoder.__init__`` / ``_parse_model_config`` / ``get_default_activation_fn``), first match wins:

1. ``activation_fn`` in ``config_sentence_transformers.json``, read (as sentence-transformers 6 reads it) only
   for a saved ``CrossEncoder``: a ``modules.json`` and ``model_type: CrossEncoder``;
2. ``sentence_transformers.activation_fn`` in ``config.json`` (sentence-transformers 4 and 5), else
   ``sbert_ce_default_activation_function`` in ``config.json`` (before 4);
3. the default: sigmoid for one label, identity for several.

A dotted path outside ``torch.`` is not trusted by sentence-transformers (it needs
``trust_remote_code``) and is skipped the same way here, with the skip recorded in
:attr:`CrossEncoderSpec.activation_source`. Truncation is sentence-transformers' too: ``longest_first``
to :attr:`CrossEncoderSpec.max_tokens`, the limit of :func:`~embedlab.models.config_files.token_limit`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from embedlab.errors import ModelLoadError
from embedlab.models.config_files import max_positions_of, read_config, read_json, read_optional, token_limit
from embedlab.models.kind import require_kind
from embedlab.models.resolve import ResolvedModel
from embedlab.models.spec import ModelOutput, spec_dict

Activation = Literal["sigmoid", "identity", "tanh", "softmax"]
#: torch activation classes sentence-transformers may name, by class name
_TORCH_ACTIVATIONS: dict[str, Activation] = {
    "Sigmoid": "sigmoid",
    "Identity": "identity",
    "Tanh": "tanh",
    "Softmax": "softmax",
}


@dataclass(frozen=True)
class CrossEncoderSpec:
    """What embedlab knows about a cross-encoder before running it.

    Attributes:
        name: canonical model name (hub id or directory).
        path: local directory of the model files.
        source: how the files were found (``local``, ``hf-cache``, ``package``, ``hub``).
        architecture: the transformers class, e.g. ``BertForSequenceClassification``.
        num_labels: logits per pair (1 for a reranker: one relevance score).
        labels: the label names in id order (``id2label``).
        activation: what ``CrossEncoder.predict`` applies to the logits by default.
        activation_source: where :attr:`activation` was read from (file and field, or the default rule).
        max_tokens: the token limit per pair, special tokens included (sentence-transformers' max_seq_length).
        max_position_embeddings: the architecture's position limit.
        hidden_size: transformer hidden size D.
        model_type: the transformers ``model_type`` (``bert``, ``xlm-roberta``...).
        tokenizer_file: path of ``tokenizer.json`` if the model ships one.
    """

    name: str
    path: Path
    source: str
    architecture: str
    num_labels: int
    labels: tuple[str, ...]
    activation: Activation
    activation_source: str
    max_tokens: int
    max_position_embeddings: int
    hidden_size: int
    model_type: str = ""
    tokenizer_file: Path | None = None

    @property
    def output(self) -> ModelOutput:
        """Backends compute the classification head's logits (batch, num_labels) for a cross-encoder."""
        return "logits"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the spec (paths as strings)."""
        return spec_dict(self)


def _activation_from_path(dotted: str, where: str) -> Activation | None:
    """The activation a dotted class path names; None for a path sentence-transformers does not trust.

    Raises:
        ModelLoadError: a torch activation embedlab does not implement.
    """
    if not dotted.startswith("torch."):
        return None
    class_name = dotted.rsplit(".", 1)[-1]
    if class_name not in _TORCH_ACTIVATIONS:
        raise ModelLoadError(
            f"{where} names the activation {dotted}, which embedlab does not implement "
            f"(supported: {', '.join(f'torch.nn.{c}' for c in _TORCH_ACTIVATIONS)})"
        )
    return _TORCH_ACTIVATIONS[class_name]


def resolve_activation(config: dict[str, Any], meta: dict[str, Any] | None, num_labels: int) -> tuple[Activation, str]:
    """The activation ``CrossEncoder(path)`` applies by default, and where it came from (see the module docstring).

    Args:
        config: ``config.json``.
        meta: ``config_sentence_transformers.json`` of a saved CrossEncoder, None when sentence-transformers
            does not read it (see :func:`saved_cross_encoder_meta`).
        num_labels: logits per pair.

    Raises:
        ModelLoadError: a torch activation embedlab does not implement.
    """
    skipped: list[str] = []
    saved = meta.get("activation_fn") if meta is not None else None
    if isinstance(saved, str):
        where = "config_sentence_transformers.json activation_fn"
        found = _activation_from_path(saved, where)
        if found is not None:
            return found, where
        skipped.append(f"{where} {saved} (not trusted)")
    st_config = config.get("sentence_transformers")
    legacy: tuple[str, Any] | None = None
    if isinstance(st_config, dict) and "activation_fn" in st_config:
        legacy = ("config.json sentence_transformers.activation_fn", st_config["activation_fn"])
    elif config.get("sbert_ce_default_activation_function") is not None:
        legacy = ("config.json sbert_ce_default_activation_function", config["sbert_ce_default_activation_function"])
    if legacy is not None and isinstance(legacy[1], str):
        found = _activation_from_path(legacy[1], legacy[0])
        if found is not None:
            return found, legacy[0]
        skipped.append(f"{legacy[0]} {legacy[1]} (not trusted)")
    default: Activation = "sigmoid" if num_labels == 1 else "identity"
    note = f"default for num_labels={num_labels}"
    return default, note + (f"; skipped {', '.join(skipped)}" if skipped else "")


def saved_cross_encoder_meta(path: Path) -> dict[str, Any] | None:
    """``config_sentence_transformers.json`` when sentence-transformers loads ``path`` from its own module files
    (a ``modules.json`` and ``model_type: CrossEncoder``), else None (it builds default modules instead).

    Raises:
        ModelLoadError: an unreadable file.
    """
    meta = read_optional(path / "config_sentence_transformers.json")
    return meta if (path / "modules.json").is_file() and meta.get("model_type") == "CrossEncoder" else None


def _check_modules(path: Path) -> None:
    """Refuse sentence-transformers modules beyond the one sequence-classification Transformer."""
    modules_file = path / "modules.json"
    if not modules_file.is_file():
        return
    modules: Any = read_json(modules_file)
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules] if isinstance(modules, list) else []
    if kinds != ["Transformer"]:
        raise ModelLoadError(
            f"{modules_file} lists the modules {kinds}; embedlab runs cross-encoders made of one "
            "sequence-classification Transformer module only"
        )


def _labels(config: dict[str, Any]) -> tuple[str, ...]:
    """Label names in id order: ``id2label``, else ``num_labels`` (transformers' default: 2) generic names."""
    id2label = config.get("id2label")
    if isinstance(id2label, dict) and id2label:
        return tuple(str(id2label[key]) for key in sorted(id2label, key=int))
    return tuple(f"LABEL_{i}" for i in range(int(config.get("num_labels") or 2)))


def read_cross_encoder_spec(resolved: ResolvedModel) -> CrossEncoderSpec:
    """Read a :class:`CrossEncoderSpec` from a resolved model directory.

    Raises:
        ModelKindError: the directory holds an embedding model.
        ModelLoadError: config.json is missing or unreadable, the head is not a sequence classifier
            (e.g. a causal-LM reranker), the model has sentence-transformers modules beyond its
            Transformer, or it names an activation embedlab does not implement.
    """
    path = resolved.path
    config = read_config(path)
    require_kind(path, resolved.name, "cross-encoder")
    architectures = [str(a) for a in config.get("architectures") or []]
    heads = [a for a in architectures if a.endswith("ForSequenceClassification")]
    if not heads:
        raise ModelLoadError(
            f"{path / 'config.json'} has no sequence-classification head (architectures: "
            f"{', '.join(architectures) or 'none'}); embedlab runs cross-encoders of *ForSequenceClassification"
        )
    _check_modules(path)
    labels = _labels(config)
    meta = saved_cross_encoder_meta(path)
    activation, source = resolve_activation(config, meta, len(labels))
    tokenizer_file = path / "tokenizer.json"
    return CrossEncoderSpec(
        name=resolved.name,
        path=path,
        source=resolved.source,
        architecture=heads[0],
        num_labels=len(labels),
        labels=labels,
        activation=activation,
        activation_source=source,
        max_tokens=token_limit(path, config, module_config=meta is not None),
        max_position_embeddings=max_positions_of(config),
        hidden_size=int(config.get("hidden_size") or config.get("d_model") or config.get("dim") or 0),
        model_type=str(config.get("model_type") or ""),
        tokenizer_file=tokenizer_file if tokenizer_file.is_file() else None,
    )
