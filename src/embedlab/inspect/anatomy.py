"""Parameter anatomy: where a transformer's parameters live, read from the real torch module.

Every named parameter is put in exactly one bucket: an embedding table, a component of one encoder
layer (attention Q / K / V / output, feed-forward up / down, layer norms), the pooler, a task head,
or ``other``. The buckets therefore add up to the model's parameter count by construction, and
:func:`parameter_anatomy` still checks that sum against ``sum(p.numel() for p in model.parameters())``
and raises if they differ (tied or shared weights are counted once on both sides).

Names follow BERT / RoBERTa / XLM-R (``attention.self.query``), DistilBERT (``q_lin``), MPNet
(``attn.q``) and LLaMA-style (``q_proj``) conventions; anything else lands in ``other`` by name, so
the total stays exact for any architecture.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from embedlab.errors import ModelLoadError

EMBEDDING_PARTS: tuple[str, ...] = ("word", "position", "token_type", "norm", "other")
LAYER_PARTS: tuple[str, ...] = (
    "attention_q",
    "attention_k",
    "attention_v",
    "attention_qkv",
    "attention_out",
    "attention_norm",
    "ffn_up",
    "ffn_down",
    "ffn_norm",
    "other",
)
PART_LABELS: dict[str, str] = {
    "word": "word embeddings (V × D)",
    "position": "position embeddings",
    "token_type": "token-type embeddings",
    "norm": "layer norm",
    "other": "other",
    "attention_q": "attention Q",
    "attention_k": "attention K",
    "attention_v": "attention V",
    "attention_qkv": "attention fused QKV",
    "attention_out": "attention output",
    "attention_norm": "attention layer norm",
    "ffn_up": "feed-forward up (D → I)",
    "ffn_down": "feed-forward down (I → D)",
    "ffn_norm": "feed-forward layer norm",
}
# Bytes per parameter when the weights are stored in each precision (int8 ignores quantisation scales).
WEIGHT_BYTES: dict[str, float] = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1}

_LAYER_RE = re.compile(r"(?:^|\.)(?:layer|layers|h|block|blocks)\.(\d+)\.(.+)$")
_EMBEDDING_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("word", re.compile(r"(?:^|\.)(?:word_embeddings|embed_tokens|wte|tok_embeddings)\.")),
    ("position", re.compile(r"(?:^|\.)(?:position_embeddings|embed_positions|wpe)\.")),
    ("token_type", re.compile(r"(?:^|\.)token_type_embeddings\.")),
    ("norm", re.compile(r"(?:^|\.)embeddings\.(?:LayerNorm|layer_norm|norm)\.")),
)
_LAYER_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("attention_qkv", re.compile(r"(?:^|\.)(?:Wqkv|qkv|qkv_proj|query_key_value|c_attn)\.")),
    ("attention_q", re.compile(r"(?:^|\.)(?:query|q_lin|q_proj|q)\.")),
    ("attention_k", re.compile(r"(?:^|\.)(?:key|k_lin|k_proj|k)\.")),
    ("attention_v", re.compile(r"(?:^|\.)(?:value|v_lin|v_proj|v)\.")),
    (
        "attention_norm",
        re.compile(r"(?:attention\.output\.LayerNorm|sa_layer_norm|input_layernorm|ln_1|attention\.LayerNorm)\."),
    ),
    (
        "attention_out",
        re.compile(r"(?:attention\.output\.dense|out_lin|o_proj|attn\.o|out_proj|attention\.dense|attn\.c_proj)\."),
    ),
    (
        "ffn_up",
        re.compile(
            r"(?:^intermediate\.dense|ffn\.lin1|mlp\.fc1|up_proj|gate_proj|^fc1|mlp\.c_fc|mlp\.fc11|mlp\.fc12)\."
        ),
    ),
    ("ffn_down", re.compile(r"(?:^output\.dense|ffn\.lin2|mlp\.fc2|down_proj|^fc2|mlp\.c_proj)\.")),
    ("ffn_norm", re.compile(r"(?:^output\.LayerNorm|output_layer_norm|post_attention_layernorm|ln_2|norm2)\.")),
)
_POOLER_RE = re.compile(r"(?:^|\.)pooler\.")
_HEAD_RE = re.compile(r"^(?:classifier|score|qa_outputs|lm_head|cls)\.")


@dataclass(frozen=True)
class ParameterEntry:
    """One named parameter tensor and the bucket it belongs to.

    Attributes:
        name: the parameter's qualified name in the module.
        shape: its shape.
        params: number of scalars (``prod(shape)``).
        section: ``embeddings``, ``layer``, ``pooler``, ``head`` or ``other``.
        part: the component inside the section (see ``EMBEDDING_PARTS`` / ``LAYER_PARTS``).
        layer: encoder layer index for ``layer`` entries, else None.
    """

    name: str
    shape: tuple[int, ...]
    params: int
    section: str
    part: str
    layer: int | None = None


@dataclass
class ParameterAnatomy:
    """Where the parameters are.

    Attributes:
        total: the model's real parameter count (``sum(p.numel() for p in model.parameters())``).
        entries: every named parameter, bucketed.
        word_embedding_shape: (vocab V, hidden D) of the token embedding table, if found.
        num_layers: encoder layers found by name.
    """

    total: int
    entries: list[ParameterEntry] = field(default_factory=list)
    word_embedding_shape: tuple[int, ...] | None = None
    num_layers: int = 0

    def section_total(self, section: str) -> int:
        """Parameters in one section (``embeddings``, ``layer``, ``pooler``, ``head``, ``other``)."""
        return sum(e.params for e in self.entries if e.section == section)

    def embedding_parts(self) -> dict[str, int]:
        """Parameters per embedding part, in ``EMBEDDING_PARTS`` order, zero parts left out."""
        out = {
            p: sum(e.params for e in self.entries if e.section == "embeddings" and e.part == p) for p in EMBEDDING_PARTS
        }
        return {k: v for k, v in out.items() if v}

    def layer_parts(self, layer: int) -> dict[str, int]:
        """Parameters per component of encoder layer ``layer``, in ``LAYER_PARTS`` order, zeros left out."""
        out = {p: sum(e.params for e in self.entries if e.layer == layer and e.part == p) for p in LAYER_PARTS}
        return {k: v for k, v in out.items() if v}

    def layer_shapes(self, layer: int) -> dict[str, list[tuple[int, ...]]]:
        """Shapes of each component's tensors in encoder layer ``layer``."""
        out: dict[str, list[tuple[int, ...]]] = {}
        for entry in self.entries:
            if entry.layer == layer:
                out.setdefault(entry.part, []).append(entry.shape)
        return out

    def layer_totals(self) -> list[int]:
        """Parameters of each encoder layer, in order."""
        return [sum(self.layer_parts(i).values()) for i in range(self.num_layers)]

    @property
    def layers_identical(self) -> bool:
        """Whether every encoder layer has the same components with the same counts."""
        first = self.layer_parts(0) if self.num_layers else {}
        return all(self.layer_parts(i) == first for i in range(self.num_layers))

    def sections(self) -> dict[str, int]:
        """Parameters per section; the values add up to :attr:`total`."""
        return {s: self.section_total(s) for s in ("embeddings", "layer", "pooler", "head", "other")}

    def weight_bytes(self) -> dict[str, int]:
        """Bytes of the weights stored in each precision of ``WEIGHT_BYTES`` (``params × bytes``)."""
        return {dtype: int(self.total * size) for dtype, size in WEIGHT_BYTES.items()}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary plus every entry."""
        return {
            "total": self.total,
            "sections": self.sections(),
            "embeddings": self.embedding_parts(),
            "word_embedding_shape": list(self.word_embedding_shape) if self.word_embedding_shape else None,
            "num_layers": self.num_layers,
            "layers": [self.layer_parts(i) for i in range(self.num_layers)],
            "layer_shapes": {k: [list(s) for s in v] for k, v in self.layer_shapes(0).items()}
            if self.num_layers
            else {},
            "weight_bytes": self.weight_bytes(),
            "entries": [
                {
                    "name": e.name,
                    "shape": list(e.shape),
                    "params": e.params,
                    "section": e.section,
                    "part": e.part,
                    "layer": e.layer,
                }
                for e in self.entries
            ],
        }


def classify_parameter(name: str) -> tuple[str, str, int | None]:
    """Bucket one parameter name: returns (section, part, layer index or None)."""
    layer_match = _LAYER_RE.search(name)
    if layer_match is not None and not _POOLER_RE.search(name):
        index, local = int(layer_match.group(1)), layer_match.group(2)
        for part, pattern in _LAYER_RULES:
            if pattern.search(local):
                return "layer", part, index
        return "layer", "other", index
    if _HEAD_RE.search(name):
        return "head", "head", None
    if _POOLER_RE.search(name):
        return "pooler", "pooler", None
    for part, pattern in _EMBEDDING_RULES:
        if pattern.search(name):
            return "embeddings", part, None
    if re.search(r"(?:^|\.)embeddings\.", name):
        return "embeddings", "other", None
    return "other", "other", None


def parameter_anatomy(model: Any) -> ParameterAnatomy:
    """Bucket every parameter of a torch module and check the buckets sum to its real count.

    Args:
        model: a ``torch.nn.Module`` (e.g. a transformers ``BertModel``).

    Raises:
        ModelLoadError: the buckets do not add up to the module's parameter count.
    """
    real_total = int(sum(p.numel() for p in model.parameters()))
    entries: list[ParameterEntry] = []
    word_shape: tuple[int, ...] | None = None
    for name, tensor in model.named_parameters():
        section, part, layer = classify_parameter(name)
        shape = tuple(int(s) for s in tensor.shape)
        entries.append(ParameterEntry(name, shape, int(tensor.numel()), section, part, layer))
        if section == "embeddings" and part == "word" and len(shape) == 2:
            word_shape = shape
    layers = sorted({e.layer for e in entries if e.layer is not None})
    if layers and layers != list(range(len(layers))):
        raise ModelLoadError(f"encoder layers found by name are not numbered 0..N-1: {layers}")
    anatomy = ParameterAnatomy(
        total=real_total, entries=entries, word_embedding_shape=word_shape, num_layers=len(layers)
    )
    counted = sum(anatomy.sections().values())
    if counted != real_total:
        raise ModelLoadError(
            f"parameter anatomy does not add up: buckets hold {counted:,} parameters, the model has {real_total:,}"
        )
    return anatomy


def load_module(spec: Any, *, head: Any = None, attention: str = "eager", seed: int = 0) -> Any:
    """Load the model's transformer as a torch module in eval mode, on CPU, float32.

    Args:
        spec: the :class:`~embedlab.models.spec.ModelSpec`.
        head: a :class:`~embedlab.inspect.trace.HeadSpec` to load the same weights under a task head
            (``AutoModelForSequenceClassification`` / ``AutoModelForTokenClassification``, head weights
            random, seeded with ``seed``), or None for the plain ``AutoModel`` the backends run.
        attention: the transformers attention implementation (``eager`` materialises the scores).

    Raises:
        ModelLoadError: transformers cannot load the weights.
    """
    import torch
    import transformers
    from transformers.utils import logging as hf_logging

    if head is None:
        loader: Any = transformers.AutoModel
        extra: dict[str, Any] = {}
    else:
        loader = getattr(transformers, head.auto_class)
        extra = {"num_labels": head.num_labels}
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the "newly initialised head weights" notice is expected here
    hf_logging.disable_progress_bar()
    torch.manual_seed(seed)
    try:
        model = loader.from_pretrained(str(spec.path), attn_implementation=attention, dtype=torch.float32, **extra)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(f"cannot load {spec.path} as {loader.__name__}: {exc}") from exc
    finally:
        hf_logging.set_verbosity(verbosity)
    return model.eval()
