"""What the dynamic batcher needs of a model: the :class:`BatchModel` protocol.

The batcher's queue, workers and de-duplication deal in *items* (what a request lists: a text for an
embedding model, a (query, document) pair for a cross-encoder) and *rows* (one float32 row per item:
a combined pooled vector, or a pair's logits). A model turns items into segments and segments into
rows; the request methods of :class:`~embedlab.engine.serving.DynamicBatcher` finish the rows into
the answer (``embed``: dimensions, normalisation, precision; ``predict`` / ``rerank``: activation, ranking).

:class:`~embedlab.engine.embedder.Embedder` (items: texts, options: ``ResolvedOptions``) and
:class:`~embedlab.engine.rerank.Reranker` (items: pairs, options: ``ResolvedRerank``) implement it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from embedlab.backends.base import Backend
from embedlab.engine.batch_plan import BatchOutput
from embedlab.engine.tokenize import Segment, TokenizedTexts
from embedlab.models.spec import ModelFiles

ItemT = TypeVar("ItemT")
ResolvedT = TypeVar("ResolvedT")


class BatchModel(Protocol[ItemT, ResolvedT]):
    """A model the dynamic batcher can serve; every method is safe to call from several threads at once."""

    @property
    def spec(self) -> ModelFiles:
        """The model's files (its name and fingerprint key the de-duplication of items)."""
        ...

    @property
    def backend(self) -> Backend:
        """The runtime (its name keys the de-duplication of items: backends differ numerically)."""
        ...

    @property
    def defaults(self) -> ResolvedT:
        """The options of a call that gives none (warm-up and health probes run under them)."""
        ...

    def warm_up_items(self) -> list[ItemT]:
        """Items that warm the model up: a short one (also the health probe) and one of the full token limit."""
        ...

    def item_key(self, identity: str, item: ItemT, resolved: ResolvedT, /) -> bytes:
        """The key under which two requests share one computation of ``item`` (and the cache stores it).

        Args:
            identity: the model's identity (name, file fingerprint, backend; see
                :func:`~embedlab.engine.cache.model_identity`).
            item: a checked item.
            resolved: the request's options.
        """
        ...

    def prepare(self, items: Sequence[ItemT], resolved: ResolvedT, /) -> TokenizedTexts:
        """Tokenise checked ``items`` into segments (``text_index`` = the item's index), per item its tokens."""
        ...

    def encode(self, segments: Sequence[Segment], /) -> BatchOutput:
        """Run ONE batch: a row per segment, in order (the batcher combines an item's rows by token weight)."""
        ...
