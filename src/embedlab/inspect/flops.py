"""FLOPs and activation memory of an encoder forward pass at (batch B, sequence length L).

Conventions: one multiply-add is 2 FLOPs; only matrix products are counted (the ``mm`` / ``bmm`` /
``addmm`` work that dominates), not softmax, layer norms, GELU, adds or embedding look-ups, which are
O(B·L·D) each. That is the same convention as ``torch.utils.flop_counter.FlopCounterMode``, and
:mod:`embedlab.inspect.trace` counts a real pass with it to check these formulas.

With N layers, hidden D, attention width A = heads H × head dim d (A = D for BERT), intermediate I:

- linear FLOPs per token: ``2 × Σ (in × out)`` over the encoder's real ``nn.Linear`` weights; for a
  BERT layer that is ``2·(4·D·A) + 2·(2·D·I)`` = ``8·D·A + 4·D·I`` (Q, K, V, output; up, down);
- attention FLOPs per token at length L: ``4·L·A`` per layer (``Q·Kᵀ``: 2·L·A, ``scores·V``: 2·L·A),
  so a sequence pays ``4·L²·A`` per layer: the part that grows with L;
- per sequence: ``L × (linear per token + N·4·L·A)`` + the pooler (``2·D²``, on the first token only)
  + a sequence-classification head (``2·D·C``); a token-classification head adds ``2·D·C`` per token.

Activation memory (bytes, b bytes per element, float32 b = 4), eager attention, no gradients:

- hidden state: ``B·L·D·b``; attention score tensor of ONE layer: ``B·H·L·L·b``; feed-forward
  intermediate: ``B·L·I·b``; the additive attention mask: ``B·L·L·b``;
- inference peak (what one layer step holds at once, tensors of earlier layers already freed):
  ``mask + residual + max(attention step, feed-forward step)`` where the attention step holds
  Q, K, V and the context (4·B·L·A) plus two score-sized tensors (scores and softmax output,
  2·B·H·L²) and the feed-forward step holds its input, output (2·B·L·D) and the intermediate before
  and after GELU (2·B·L·I);
- kept for ``output_hidden_states`` / ``output_attentions``: ``(N+1)·B·L·D·b`` and ``N·B·H·L²·b``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from embedlab.inspect.anatomy import classify_parameter


@dataclass(frozen=True)
class ModelDims:
    """The shape facts FLOPs and memory depend on.

    Attributes:
        layers: encoder layers N.
        hidden: hidden size D.
        heads: attention heads H.
        head_dim: per-head width d (A = H·d).
        intermediate: feed-forward width I.
        vocab: vocabulary size V.
        max_positions: the position-embedding limit.
    """

    layers: int
    hidden: int
    heads: int
    head_dim: int
    intermediate: int
    vocab: int
    max_positions: int

    @property
    def attention_width(self) -> int:
        """A = heads × head dim."""
        return self.heads * self.head_dim


def model_dims(config: Any) -> ModelDims:
    """Read :class:`ModelDims` from a transformers config."""
    hidden = int(getattr(config, "hidden_size", 0) or getattr(config, "dim", 0))
    heads = int(getattr(config, "num_attention_heads", 0) or getattr(config, "n_heads", 0) or 1)
    head_dim = int(getattr(config, "head_dim", 0) or hidden // heads)
    return ModelDims(
        layers=int(getattr(config, "num_hidden_layers", 0) or getattr(config, "n_layers", 0)),
        hidden=hidden,
        heads=heads,
        head_dim=head_dim,
        intermediate=int(getattr(config, "intermediate_size", 0) or getattr(config, "hidden_dim", 0) or 4 * hidden),
        vocab=int(getattr(config, "vocab_size", 0)),
        max_positions=int(getattr(config, "max_position_embeddings", 0) or 512),
    )


@dataclass(frozen=True)
class LinearFlops:
    """Linear-layer FLOPs of a module, split by how often each layer runs.

    Attributes:
        per_token: FLOPs of linear layers applied to every token (encoder layers, token heads).
        per_sequence: FLOPs of linear layers applied once per sequence (pooler, sequence heads).
    """

    per_token: int
    per_sequence: int


def linear_flops(model: Any, token_level_head: bool = False) -> LinearFlops:
    """Count ``2 × in × out`` over the module's real ``nn.Linear`` layers.

    The pooler and a head run once per sequence, unless ``token_level_head`` (token classification),
    in which case the head runs on every token.
    """
    import torch

    per_token = per_sequence = 0
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        flops = 2 * int(module.in_features) * int(module.out_features)
        section, _, _ = classify_parameter(f"{name}.weight")
        if section == "pooler" or (section == "head" and not token_level_head):
            per_sequence += flops
        else:
            per_token += flops
    return LinearFlops(per_token=per_token, per_sequence=per_sequence)


@dataclass(frozen=True)
class FlopEstimate:
    """FLOPs of one forward pass (2 FLOPs per multiply-add, matrix products only).

    Attributes:
        batch, seq_len: B and L.
        linear_per_token: linear-layer FLOPs per token (independent of L).
        attention_per_token: attention FLOPs per token at length L (``N·4·L·A``).
        per_sequence: FLOPs of one sequence of L tokens (pooler / sequence head included).
        total: FLOPs of the whole (B, L) batch.
    """

    batch: int
    seq_len: int
    linear_per_token: int
    attention_per_token: int
    per_sequence: int
    total: int

    @property
    def per_token(self) -> float:
        """Average FLOPs per token at this L (per sequence / L)."""
        return self.per_sequence / self.seq_len

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields plus ``per_token``."""
        return {**asdict(self), "per_token": self.per_token}


def estimate_flops(dims: ModelDims, linear: LinearFlops, batch: int, seq_len: int) -> FlopEstimate:
    """FLOPs of a forward pass at (``batch``, ``seq_len``); see the module docstring for the formula."""
    attention = dims.layers * 4 * seq_len * dims.attention_width
    per_sequence = seq_len * (linear.per_token + attention) + linear.per_sequence
    return FlopEstimate(
        batch=batch,
        seq_len=seq_len,
        linear_per_token=linear.per_token,
        attention_per_token=attention,
        per_sequence=per_sequence,
        total=batch * per_sequence,
    )


@dataclass(frozen=True)
class ActivationEstimate:
    """Activation memory (bytes) of an inference forward pass at (B, L), eager attention.

    Attributes:
        batch, seq_len, bytes_per_element: B, L and b.
        hidden_state: one (B, L, D) tensor.
        attention_scores: one layer's (B, H, L, L) score tensor.
        ffn_intermediate: one (B, L, I) tensor.
        attention_mask: the additive (B, 1, L, L) mask eager attention builds.
        inference_peak: the most held at once by one layer step (see the module docstring).
        all_hidden_states: every layer's output kept (``output_hidden_states``): (N+1)·B·L·D·b.
        all_attention_scores: every layer's scores kept (``output_attentions``): N·B·H·L²·b.
    """

    batch: int
    seq_len: int
    bytes_per_element: int
    hidden_state: int
    attention_scores: int
    ffn_intermediate: int
    attention_mask: int
    inference_peak: int
    all_hidden_states: int
    all_attention_scores: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


def estimate_activations(dims: ModelDims, batch: int, seq_len: int, bytes_per_element: int = 4) -> ActivationEstimate:
    """Activation memory of a forward pass at (``batch``, ``seq_len``); formulas in the module docstring."""
    b, s, e = batch, seq_len, bytes_per_element
    hidden = b * s * dims.hidden * e
    scores = b * dims.heads * s * s * e
    ffn = b * s * dims.intermediate * e
    mask = b * s * s * e
    attention_step = 4 * b * s * dims.attention_width * e + 2 * scores
    ffn_step = 2 * hidden + 2 * ffn
    return ActivationEstimate(
        batch=b,
        seq_len=s,
        bytes_per_element=e,
        hidden_state=hidden,
        attention_scores=scores,
        ffn_intermediate=ffn,
        attention_mask=mask,
        inference_peak=mask + hidden + max(attention_step, ffn_step),
        all_hidden_states=(dims.layers + 1) * hidden,
        all_attention_scores=dims.layers * scores,
    )
