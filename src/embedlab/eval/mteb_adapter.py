"""An embedlab model as an MTEB encoder, so ``mteb.evaluate`` can run any MTEB task on any backend.

>>> import embedlab, mteb
>>> from embedlab.eval.mteb_adapter import MtebEncoder
>>> encoder = MtebEncoder(embedlab.load(backend="onnx"))
>>> results = mteb.evaluate(encoder, mteb.get_tasks(tasks=["STSBenchmark"]))   # needs the task's data

:class:`MtebEncoder` follows MTEB's documented ``EncoderProtocol`` (mteb ≥ 2): ``encode(inputs, *,
task_metadata, hf_split, hf_subset, prompt_type=None, **kwargs)`` where ``inputs`` is a DataLoader
of ``{"text": [...]}`` batches, plus ``similarity``, ``similarity_pairwise`` and ``mteb_model_meta``.
It also accepts the mteb 1.x call ``encode(sentences, task_name=..., prompt_type=...)`` with a plain
list of strings. mteb itself is only imported for ``mteb_model_meta`` (``pip install embedlab[mteb]``).

Prompts: ``prompt_type`` ``query`` gets the query prompt and ``document`` / ``passage`` the document
prompt; by default these are the model's own ``query`` / ``document`` (or ``passage``) prompts.
Blank texts, which some MTEB corpora hold, are embedded as the empty sequence (special tokens
only), as sentence-transformers does, instead of being refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from embedlab.arrays import FloatArray
from embedlab.engine.embedder import Embedder
from embedlab.errors import BackendUnavailableError, InputTypeError
from embedlab.eval._embedding import check_embed_options
from embedlab.eval.retrieval import default_prompts


def _texts_of(inputs: Any) -> list[str]:
    """The texts of a DataLoader of ``{"text": [...]}`` batches, a list of strings, or of such dicts."""
    if isinstance(inputs, str):
        return [inputs]
    texts: list[str] = []
    for item in inputs:
        if isinstance(item, dict):
            batch = item.get("text")
            if batch is None:
                raise InputTypeError(f"an input batch has no 'text' field (fields: {sorted(item)})")
            texts.extend([batch] if isinstance(batch, str) else [str(t) for t in batch])
        elif isinstance(item, str):
            texts.append(item)
        else:
            raise InputTypeError(f"cannot read texts from an input of type {type(item).__name__}")
    return texts


def _prompt_kind(prompt_type: Any) -> str | None:
    if prompt_type is None:
        return None
    value = str(getattr(prompt_type, "value", prompt_type)).lower()
    return "document" if value in ("document", "passage", "corpus") else value


class MtebEncoder:
    """Wraps an :class:`Embedder` for MTEB.

    Args:
        embedder: a loaded model (any backend).
        query_prompt, doc_prompt: override the model's own prompts (``""`` for none).
        model_name: the name MTEB records (default: the model's name).
        **embed_options: ``max_tokens``, ``dimensions``, ``long_input``, ``normalize`` for every call.
    """

    def __init__(
        self,
        embedder: Embedder,
        *,
        query_prompt: str | None = None,
        doc_prompt: str | None = None,
        model_name: str | None = None,
        **embed_options: Any,
    ) -> None:
        self.embedder = embedder
        self.options = check_embed_options(embed_options, forbidden=("prompt", "prompt_name"))
        own_query, own_doc = default_prompts(embedder)
        self.query_prompt = own_query if query_prompt is None else query_prompt
        self.doc_prompt = own_doc if doc_prompt is None else doc_prompt
        self.model_name = model_name or embedder.spec.name

    def prompt_for(self, prompt_type: Any) -> str | None:
        """The prompt for an MTEB prompt type (``query``, ``document``/``passage``, or None)."""
        kind = _prompt_kind(prompt_type)
        if kind == "query":
            return self.query_prompt
        if kind == "document":
            return self.doc_prompt
        return None

    def encode(
        self,
        inputs: Iterable[Any],
        *,
        task_metadata: Any = None,
        hf_split: str | None = None,
        hf_subset: str | None = None,
        prompt_type: Any = None,
        **kwargs: Any,
    ) -> FloatArray:
        """Embed every text of ``inputs``: (n, dim) float32, in input order.

        ``task_metadata``, ``hf_split``, ``hf_subset`` and extra MTEB keywords (``batch_size``,
        ``show_progress_bar``, ``task_name``...) are accepted and not needed: batching is by token
        budget.
        """
        texts = _texts_of(inputs)
        if not texts:
            return np.zeros((0, self.options.get("dimensions") or self.embedder.dim), dtype=np.float32)
        prompt = self.prompt_for(prompt_type)
        blank = [i for i, text in enumerate(texts) if not text.strip()]
        filled = [i for i, text in enumerate(texts) if text.strip()]
        vectors: FloatArray | None = None
        if filled:
            embedded = self.embedder.embed([texts[i] for i in filled], prompt=prompt, **self.options)
            vectors = np.empty((len(texts), embedded.shape[1]), dtype=np.float32)
            vectors[filled] = embedded
        if blank:
            empty = self._embed_blank(prompt)
            if vectors is None:
                vectors = np.empty((len(texts), empty.shape[0]), dtype=np.float32)
            vectors[blank] = empty
        assert vectors is not None
        return vectors

    def _embed_blank(self, prompt: str | None) -> FloatArray:
        """The vector of an empty text (its prompt, if any, plus special tokens): (dim,) float32."""
        from embedlab.engine.tokenize import tokenize_texts

        embedder = self.embedder
        options = embedder.resolve(prompt=prompt, **self.options)
        tokenized = tokenize_texts(embedder.tokenizer, [options.prompt], options.max_tokens, "truncate")
        out = embedder.encode(tokenized.segments)
        return embedder.finish(out.pooled, tokenized.segments, 1, options)[0]

    @staticmethod
    def similarity(embeddings1: Any, embeddings2: Any) -> Any:
        """Cosine similarity matrix (n1, n2) as a torch tensor (MTEB calls ``torch.topk`` on it)."""
        import torch

        a = torch.nn.functional.normalize(
            torch.as_tensor(np.asarray(embeddings1), dtype=torch.float32).reshape(
                -1, np.asarray(embeddings1).shape[-1]
            ),
            dim=-1,
        )
        b = torch.nn.functional.normalize(
            torch.as_tensor(np.asarray(embeddings2), dtype=torch.float32).reshape(
                -1, np.asarray(embeddings2).shape[-1]
            ),
            dim=-1,
        )
        return a @ b.T

    @staticmethod
    def similarity_pairwise(embeddings1: Any, embeddings2: Any) -> Any:
        """Cosine similarity of row i with row i, shape (n,), as a torch tensor."""
        import torch

        a = torch.nn.functional.normalize(torch.as_tensor(np.asarray(embeddings1), dtype=torch.float32), dim=-1)
        b = torch.nn.functional.normalize(torch.as_tensor(np.asarray(embeddings2), dtype=torch.float32), dim=-1)
        return (a * b).sum(dim=-1)

    @property
    def mteb_model_meta(self) -> Any:
        """An ``mteb.models.ModelMeta`` describing the wrapped model (name, dims, max tokens, cosine)."""
        try:
            from mteb.models.model_meta import ModelMeta, ScoringFunction
        except ImportError as exc:
            raise BackendUnavailableError("mteb is not installed; pip install 'embedlab[mteb]'") from exc
        spec = self.embedder.spec
        name = self.model_name if "/" in self.model_name else f"local/{self.model_name}"
        return ModelMeta.create_empty(
            overwrites={
                "name": name,
                "revision": f"embedlab-{getattr(self.embedder.backend, 'name', 'unknown')}",
                "embed_dim": self.options.get("dimensions") or spec.dim,
                "max_tokens": self.options.get("max_tokens") or spec.max_tokens,
                "similarity_fn_name": ScoringFunction.COSINE,
                "use_instructions": bool(self.query_prompt or self.doc_prompt),
            }
        )
