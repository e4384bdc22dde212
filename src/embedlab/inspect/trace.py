"""Trace the tensor shapes of a REAL forward pass at (B, L) with forward hooks.

The model runs with transformers' ``eager`` attention, so the (B, H, L, L) attention scores exist as
a tensor that the hooks can see (the default ``sdpa`` kernels never materialise them). Every module's
output shapes are recorded in call order; the summary picks out the input ids, the embeddings, each
layer's attention scores and output, the last hidden state, the pooled sentence vector (embedlab's own
pooling, as ``embed`` does it) and, with a task head, the head's logits.

The same pass is measured: its peak resident memory (see :mod:`embedlab.inspect.memory`; a warm-up
pass at the same shape runs first so one-time runtime set-up is not counted) and its wall time, and, in a
second pass under ``torch.utils.flop_counter.FlopCounterMode``, the FLOPs torch actually executed, so
the estimates of :mod:`embedlab.inspect.flops` sit next to measured numbers.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from embedlab.backends.base import EncodedBatch
from embedlab.engine.batch_plan import pad_segments
from embedlab.engine.tokenize import tokenize_texts
from embedlab.errors import ConfigError, InferenceError
from embedlab.inspect.memory import PeakMemory
from embedlab.models.pooling import l2_normalize, pool
from embedlab.models.spec import ModelSpec

HeadKind = Literal["classification", "token-classification"]
HEAD_KINDS: tuple[str, ...] = ("classification", "token-classification")
_AUTO_CLASSES = {
    "classification": "AutoModelForSequenceClassification",
    "token-classification": "AutoModelForTokenClassification",
}
_FILLER = "the cat sat on the mat . "
_LAYER_MODULE_RE = re.compile(r"(?:^|\.)(?:layer|layers|h|block|blocks)\.(\d+)$")


@dataclass(frozen=True)
class HeadSpec:
    """A task head on top of the encoder.

    Attributes:
        kind: ``classification`` (one label per sequence: logits (B, C)) or ``token-classification``
            (one label per token: logits (B, L, C)).
        num_labels: C.
    """

    kind: HeadKind
    num_labels: int

    @property
    def auto_class(self) -> str:
        """The transformers auto class that builds this head."""
        return _AUTO_CLASSES[self.kind]

    def __str__(self) -> str:
        return f"{self.kind}:{self.num_labels}"


def parse_head(text: str) -> HeadSpec:
    """Parse ``classification:C`` or ``token-classification:C`` (C ≥ 1 labels).

    Raises:
        ConfigError: any other spelling, naming what is accepted.
    """
    kind, sep, count = text.strip().partition(":")
    usage = "use classification:C or token-classification:C with C labels, e.g. classification:3"
    if not sep or kind not in HEAD_KINDS:
        raise ConfigError(f"unknown head spec {text!r}; {usage}")
    try:
        labels = int(count)
    except ValueError as exc:
        raise ConfigError(f"head spec {text!r}: {count!r} is not a whole number of labels; {usage}") from exc
    if labels < 1:
        raise ConfigError(f"head spec {text!r}: the number of labels must be at least 1")
    return HeadSpec(kind=kind, num_labels=labels)  # type: ignore[arg-type]


def check_shape(spec: ModelSpec, batch: int, seq_len: int, n_special: int) -> None:
    """Validate (B, L) against the model.

    Raises:
        ConfigError: B or L below 1, L too short for the special tokens, or L above the model's
            position limit.
    """
    if batch < 1:
        raise ConfigError(f"batch size B must be at least 1, got {batch}")
    if seq_len < 1:
        raise ConfigError(f"sequence length L must be at least 1, got {seq_len}")
    if seq_len <= n_special:
        raise ConfigError(f"sequence length L={seq_len} leaves no room beside the {n_special} special tokens")
    if seq_len > spec.max_position_embeddings:
        raise ConfigError(
            f"sequence length L={seq_len} is above the model limit of {spec.max_position_embeddings} positions "
            f"(max_position_embeddings; sentence-transformers uses {spec.max_tokens})"
        )


def make_batch(tokenizer: Any, pad_id: int, batch: int, seq_len: int) -> EncodedBatch:
    """A real (``batch``, ``seq_len``) batch of filler text, tokenised and truncated to exactly ``seq_len``."""
    text = _FILLER * seq_len
    tokenized = tokenize_texts(tokenizer, [text] * batch, seq_len, "truncate")
    encoded = pad_segments(tokenized.segments, pad_id)
    if encoded.shape != (batch, seq_len):  # pragma: no cover - a tokenizer giving < 1 token per word
        raise ConfigError(f"could not build a ({batch}, {seq_len}) batch from filler text, got {encoded.shape}")
    return encoded


@dataclass(frozen=True)
class TracedTensor:
    """One tensor of the pass: a readable name, its shape, and the module (or step) that made it."""

    name: str
    shape: tuple[int, ...]
    source: str


@dataclass
class TraceReport:
    """Shapes and measurements of one real forward pass.

    Attributes:
        batch, seq_len: B and L.
        attention_implementation: the transformers attention used for the pass (``eager``).
        tensors: the summary: input ids, embeddings, per-layer scores and outputs, pooled, head output.
        modules: every module's output shapes in call order (module name → shapes).
        head: the task head, if any.
        peak_added_bytes: resident memory the pass added at its peak (None if not measurable).
        rss_before_bytes: resident memory before the pass (model loaded).
        memory_method: how the peak was measured.
        flops_counted: FLOPs torch executed in an identical pass (FlopCounterMode).
        seconds: wall time of the measured pass.
    """

    batch: int
    seq_len: int
    attention_implementation: str
    tensors: list[TracedTensor] = field(default_factory=list)
    modules: dict[str, list[tuple[int, ...]]] = field(default_factory=dict)
    head: HeadSpec | None = None
    peak_added_bytes: int | None = None
    rss_before_bytes: int | None = None
    memory_method: str = ""
    flops_counted: int | None = None
    seconds: float = 0.0

    def shape_of(self, name: str) -> tuple[int, ...]:
        """The shape of the summary tensor called ``name`` (KeyError if absent)."""
        for tensor in self.tensors:
            if tensor.name == name:
                return tensor.shape
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "batch": self.batch,
            "seq_len": self.seq_len,
            "attention_implementation": self.attention_implementation,
            "head": str(self.head) if self.head else None,
            "tensors": [{"name": t.name, "shape": list(t.shape), "source": t.source} for t in self.tensors],
            "modules": {k: [list(s) for s in v] for k, v in self.modules.items()},
            "peak_added_bytes": self.peak_added_bytes,
            "rss_before_bytes": self.rss_before_bytes,
            "memory_method": self.memory_method,
            "flops_counted": self.flops_counted,
            "seconds": self.seconds,
        }


def _shapes(value: Any) -> list[tuple[int, ...]]:
    """Shapes of the tensors in a module output (tensor, tuple/list, or a transformers ModelOutput)."""
    import torch

    if isinstance(value, torch.Tensor):
        return [tuple(int(s) for s in value.shape)]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple):
        out: list[tuple[int, ...]] = []
        for item in value:
            if isinstance(item, torch.Tensor):
                out.append(tuple(int(s) for s in item.shape))
        return out
    return []


def _feed(batch: EncodedBatch, model: Any) -> dict[str, Any]:
    import torch

    feed = {
        "input_ids": torch.from_numpy(batch.input_ids),
        "attention_mask": torch.from_numpy(batch.attention_mask),
    }
    if batch.token_type_ids is not None and "token_type_ids" in model.forward.__code__.co_varnames:
        feed["token_type_ids"] = torch.from_numpy(batch.token_type_ids)
    return feed


def _summarise(
    modules: dict[str, list[tuple[int, ...]]], batch: int, seq_len: int
) -> tuple[list[TracedTensor], list[int]]:
    """Pick the embeddings, per-layer attention scores and outputs out of the module trace."""
    tensors: list[TracedTensor] = []
    embeddings = [n for n, s in modules.items() if n.split(".")[-1] == "embeddings" and s and len(s[0]) == 3]
    if embeddings:
        name = min(embeddings, key=len)
        tensors.append(TracedTensor("embeddings", modules[name][0], name))
    layer_names: dict[int, str] = {}
    for name in modules:
        match = _LAYER_MODULE_RE.search(name)
        if match is not None:
            layer_names.setdefault(int(match.group(1)), name)
    missing_scores: list[int] = []
    for index in sorted(layer_names):
        prefix = layer_names[index] + "."
        scores = next(
            (
                (n, shape)
                for n, shapes in modules.items()
                if n.startswith(prefix)
                for shape in shapes
                if len(shape) == 4 and shape[0] == batch and shape[2] == seq_len and shape[3] == seq_len
            ),
            None,
        )
        if scores is not None:
            tensors.append(TracedTensor(f"layer {index} attention scores", scores[1], scores[0]))
        else:
            missing_scores.append(index)
        outputs = modules[layer_names[index]]
        if outputs:
            tensors.append(TracedTensor(f"layer {index} output", outputs[0], layer_names[index]))
    return tensors, missing_scores


def trace_forward(
    module: Any,
    spec: ModelSpec,
    batch: EncodedBatch,
    head: HeadSpec | None = None,
    count_flops: bool = True,
) -> TraceReport:
    """Run ``module`` once on ``batch`` with hooks on every submodule and report what it computed.

    Args:
        module: a transformers model in eval mode with eager attention (see
            :func:`embedlab.inspect.anatomy.load_module`), plain or with ``head``.
        spec: the model's spec (pooling and normalisation for the sentence vector).
        batch: the (B, L) input.
        head: the head ``module`` carries, if any.
        count_flops: also run a second, identical pass under ``FlopCounterMode``.

    Raises:
        InferenceError: the forward pass failed.
    """
    import torch

    b, s = batch.shape
    modules: dict[str, list[tuple[int, ...]]] = {}
    base = getattr(module, "base_model", module)
    kept: dict[str, Any] = {}

    def record(name: str) -> Any:
        def hook(_module: Any, _inputs: Any, output: Any) -> None:
            if name not in modules:
                modules[name] = _shapes(output)

        return hook

    def keep_base(_module: Any, _inputs: Any, output: Any) -> None:
        kept["last_hidden_state"] = output[0]
        kept["pooler_output"] = getattr(output, "pooler_output", None)

    handles = [m.register_forward_hook(record(n)) for n, m in module.named_modules() if n]
    handles.append(base.register_forward_hook(keep_base))
    feed = _feed(batch, module)
    implementation = str(getattr(module.config, "_attn_implementation", "") or "")
    try:
        with torch.inference_mode():
            module(**feed)  # warm-up at the same shape: one-time set-up (thread pools, kernels) is not measured
            modules.clear()
            with PeakMemory() as memory:
                started = time.perf_counter()
                output = module(**feed)
                seconds = time.perf_counter() - started
            tensors, missing = _summarise(modules, b, s)
            if missing:  # this architecture's attention module does not return its scores: ask for them
                attentions = module(**feed, output_attentions=True).attentions or ()
                for index, scores in enumerate(attentions):
                    tensors.append(
                        TracedTensor(f"layer {index} attention scores", tuple(scores.shape), "output_attentions")
                    )
    except RuntimeError as exc:
        raise InferenceError(f"forward pass at (B={b}, L={s}) failed: {exc}") from exc
    finally:
        for handle in handles:
            handle.remove()

    def layer_key(t: TracedTensor) -> tuple[int, int]:
        number = re.search(r"layer (\d+)", t.name)
        return (int(number.group(1)) if number else -1, 0 if "scores" in t.name else 1)

    layer_tensors = sorted((t for t in tensors if t.name.startswith("layer ")), key=layer_key)
    summary = [TracedTensor("input ids", (b, s), "tokenizer")]
    summary += [t for t in tensors if not t.name.startswith("layer ")]
    summary += layer_tensors
    hidden = kept["last_hidden_state"]
    summary.append(TracedTensor("last hidden state", tuple(hidden.shape), base.__class__.__name__))
    if kept.get("pooler_output") is not None:
        summary.append(TracedTensor("pooler output (unused by embed)", tuple(kept["pooler_output"].shape), "pooler"))
    pooled = pool(hidden.float().numpy(), batch.attention_mask, spec.pooling)
    summary.append(TracedTensor(f"pooled ({spec.pooling})", pooled.shape, "embedlab pooling"))
    if spec.normalize:
        summary.append(TracedTensor("normalised embedding", l2_normalize(pooled).shape, "embedlab L2 normalise"))
    if head is not None:
        summary.append(TracedTensor(f"head logits ({head})", tuple(output.logits.shape), module.__class__.__name__))

    flops: int | None = None
    if count_flops:
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with torch.inference_mode(), counter:
            module(**feed)
        flops = int(counter.get_total_flops())
    return TraceReport(
        batch=b,
        seq_len=s,
        attention_implementation=implementation,
        tensors=summary,
        modules=modules,
        head=head,
        peak_added_bytes=memory.added,
        rss_before_bytes=memory.before,
        memory_method=memory.method,
        flops_counted=flops,
        seconds=seconds,
    )
