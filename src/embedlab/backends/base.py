"""The one small protocol every runtime backend implements.

A backend turns a padded batch of token ids into the model's output (its spec's ``output``): token vectors
for an embedding model, the classification head's logits for a cross-encoder. Tokenising, batching,
pooling, normalising and activations live in the engine, so every backend is measured on exactly the same work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from embedlab.arrays import FloatArray, IntArray


@dataclass(frozen=True)
class EncodedBatch:
    """A right-padded batch of tokenised sequences.

    Attributes:
        input_ids: (batch, seq_len) int64 token ids, padding filled with the pad id.
        attention_mask: (batch, seq_len) int64, 1 for real tokens, 0 for padding.
        token_type_ids: (batch, seq_len) int64 segment ids, or None when the model takes none.
    """

    input_ids: IntArray
    attention_mask: IntArray
    token_type_ids: IntArray | None

    @property
    def shape(self) -> tuple[int, int]:
        """(batch, seq_len)."""
        b, s = self.input_ids.shape
        return int(b), int(s)

    @property
    def real_tokens(self) -> int:
        """Non-padding tokens in the batch."""
        return int(self.attention_mask.sum())


@runtime_checkable
class Backend(Protocol):
    """A runtime that computes a model's output for padded batches.

    Attributes:
        name: the backend's registry name, e.g. ``torch`` or ``onnx``.
        device: where it runs, e.g. ``cpu`` or ``cuda:0``.
    """

    name: str
    device: str

    def forward(self, batch: EncodedBatch) -> FloatArray:
        """For a padded batch, float32: token vectors (batch, seq_len, hidden) of an embedding model, or
        logits (batch, num_labels) of a cross-encoder."""
        ...
