"""The facts about a model that the rest of embedlab needs, read from its own files.

Sentence-transformers files are honoured when present (``modules.json``, ``1_Pooling/config.json``,
``sentence_bert_config.json``, the Normalize module, prompts in ``config_sentence_transformers.json``)
so pooling, normalisation, max tokens and prompts match what the model's authors shipped. A plain
Hugging Face model gets what sentence-transformers would give it: mean pooling, no normalisation.
A cross-encoder is refused here (:class:`~embedlab.errors.ModelKindError`); its spec is
:class:`~embedlab.models.cross_encoder.CrossEncoderSpec`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from embedlab.errors import ModelLoadError
from embedlab.models.config_files import max_positions_of, read_config, read_json, read_optional, token_limit
from embedlab.models.kind import require_kind
from embedlab.models.resolve import ResolvedModel

PoolingMode = Literal["mean", "cls", "max", "mean_sqrt_len", "weighted_mean", "last_token"]
POOLING_MODES: tuple[PoolingMode, ...] = (
    "mean",
    "cls",
    "max",
    "mean_sqrt_len",
    "weighted_mean",
    "last_token",
)

_ST_POOLING_KEYS: dict[str, PoolingMode] = {
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len",
    "pooling_mode_weightedmean_tokens": "weighted_mean",
    "pooling_mode_lasttoken": "last_token",
}
_SUPPORTED_MODULES = ("Transformer", "Pooling", "Normalize")

#: what a backend computes for a model: token vectors (batch, seq_len, hidden) of an embedding model's
#: transformer, or the classification head's logits (batch, num_labels) of a cross-encoder
ModelOutput = Literal["token_embeddings", "logits"]


class ModelFiles(Protocol):
    """What the runtimes and the tokenizer loader need of a model spec, whatever its kind."""

    @property
    def name(self) -> str:
        """Canonical model name."""
        ...

    @property
    def path(self) -> Path:
        """Local directory of the model files."""
        ...

    @property
    def tokenizer_file(self) -> Path | None:
        """``tokenizer.json`` if the model ships one."""
        ...

    @property
    def output(self) -> ModelOutput:
        """What a backend's forward returns for this model."""
        ...


@dataclass(frozen=True)
class ModelSpec:
    """What embedlab knows about a model before running it.

    Attributes:
        name: canonical model name (hub id or directory).
        path: local directory of the model files.
        source: how the files were found (``local``, ``hf-cache``, ``package``, ``hub``).
        dim: output embedding dimension (floats per vector).
        hidden_size: transformer hidden size D.
        max_tokens: the token limit used when embedding (sentence-transformers' max_seq_length),
            counting special tokens.
        max_position_embeddings: the architecture's position limit.
        pooling: how token vectors become one vector.
        include_prompt: whether prompt tokens take part in pooling.
        normalize: whether vectors are L2-normalised (a Normalize module is present).
        prompts: named prompts, e.g. ``{"query": "query: "}``.
        default_prompt_name: the prompt applied when the caller names none.
        vocab_size, num_layers, num_heads, intermediate_size: architecture facts.
        model_type: the transformers ``model_type`` (``bert``, ``xlm-roberta``...).
        tokenizer_file: path of ``tokenizer.json`` if the model ships one.
    """

    name: str
    path: Path
    source: str
    dim: int
    hidden_size: int
    max_tokens: int
    max_position_embeddings: int
    pooling: PoolingMode
    include_prompt: bool
    normalize: bool
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None
    vocab_size: int = 0
    num_layers: int = 0
    num_heads: int = 0
    intermediate_size: int = 0
    model_type: str = ""
    tokenizer_file: Path | None = None

    @property
    def output(self) -> ModelOutput:
        """Backends compute the transformer's token vectors for an embedding model."""
        return "token_embeddings"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the spec (paths as strings)."""
        return spec_dict(self)


def spec_dict(spec: Any) -> dict[str, Any]:
    """A JSON-ready dict of a spec dataclass's fields (paths as strings)."""
    out: dict[str, Any] = {}
    for key, value in spec.__dict__.items():
        out[key] = str(value) if isinstance(value, Path) else value
    return out


def _read_modules(path: Path) -> list[dict[str, Any]] | None:
    modules_file = path / "modules.json"
    if not modules_file.is_file():
        return None
    data: Any = read_json(modules_file)
    if not isinstance(data, list):
        raise ModelLoadError(f"{modules_file} should hold a list of modules")
    for module in data:
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        if kind not in _SUPPORTED_MODULES:
            raise ModelLoadError(
                f"{path} uses a sentence-transformers module {module.get('type')!r} that embedlab does not "
                f"run yet (supported: {', '.join(_SUPPORTED_MODULES)})"
            )
    return data


def _pooling_from_config(config: dict[str, Any], where: Path) -> tuple[PoolingMode, bool]:
    if isinstance(config.get("pooling_mode"), str):  # newer sentence-transformers spell it out
        named = config["pooling_mode"].replace("lasttoken", "last_token").replace("weightedmean", "weighted_mean")
        named = {"mean_tokens": "mean", "cls_token": "cls", "max_tokens": "max"}.get(named, named)
        if named not in POOLING_MODES:
            raise ModelLoadError(f"{where}: unknown pooling_mode {config['pooling_mode']!r}")
        return named, bool(config.get("include_prompt", True))
    chosen = [mode for key, mode in _ST_POOLING_KEYS.items() if config.get(key)]
    if len(chosen) != 1:
        raise ModelLoadError(
            f"{where}: exactly one pooling mode must be on, found {chosen or 'none'} "
            "(concatenated pooling is not supported)"
        )
    return chosen[0], bool(config.get("include_prompt", True))


def read_spec(resolved: ResolvedModel) -> ModelSpec:
    """Read a :class:`ModelSpec` from a resolved model directory.

    Raises:
        ModelKindError: the directory holds a cross-encoder.
        ModelLoadError: config.json is missing or unreadable, or the model uses a module embedlab
            cannot run.
    """
    path = resolved.path
    config = read_config(path)
    require_kind(path, resolved.name, "embedding")
    hidden = int(config.get("hidden_size") or config.get("d_model") or config.get("dim") or 0)
    if hidden <= 0:
        raise ModelLoadError(f"{path / 'config.json'} does not state hidden_size")
    max_positions = max_positions_of(config)

    modules = _read_modules(path)
    pooling: PoolingMode = "mean"
    include_prompt = True
    normalize = False
    if modules is not None:
        kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
        normalize = "Normalize" in kinds
        for module in modules:
            if str(module.get("type", "")).endswith("Pooling"):
                pooling_file = path / str(module.get("path", "1_Pooling")) / "config.json"
                if pooling_file.is_file():
                    pooling, include_prompt = _pooling_from_config(read_json(pooling_file), pooling_file)

    meta = read_optional(path / "config_sentence_transformers.json")
    prompts = {str(k): str(v) for k, v in (meta.get("prompts") or {}).items()}
    default_prompt_name: str | None = meta.get("default_prompt_name") or None

    tokenizer_file = path / "tokenizer.json"
    return ModelSpec(
        name=resolved.name,
        path=path,
        source=resolved.source,
        dim=hidden,
        hidden_size=hidden,
        max_tokens=token_limit(path, config),
        max_position_embeddings=max_positions,
        pooling=pooling,
        include_prompt=include_prompt,
        normalize=normalize,
        prompts=prompts,
        default_prompt_name=default_prompt_name,
        vocab_size=int(config.get("vocab_size") or 0),
        num_layers=int(config.get("num_hidden_layers") or config.get("n_layers") or 0),
        num_heads=int(config.get("num_attention_heads") or config.get("n_heads") or 0),
        intermediate_size=int(config.get("intermediate_size") or 0),
        model_type=str(config.get("model_type") or ""),
        tokenizer_file=tokenizer_file if tokenizer_file.is_file() else None,
    )
