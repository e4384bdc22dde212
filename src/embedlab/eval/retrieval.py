"""Retrieval on a BEIR-layout data set (read by :mod:`embedlab.eval.beir`): exact cosine search, scored
like MTEB (nDCG@10 first).

As MTEB does:

- only queries with judgments in the split are searched and scored, each over the whole corpus;
- queries and documents get the model's own ``query`` / ``document`` (or ``passage``) prompts
  unless others are given;
- a document whose id equals the query's id is *kept* unless ``ignore_identical_ids`` is set
  (MTEB's default, which only a few tasks such as ArguAna and Quora switch on).

The corpus is embedded in chunks of ``corpus_chunk_size`` documents; each chunk is scored against
the queries in blocks and merged into a running top-k, so memory holds one chunk's vectors, one
(query block × chunk) score matrix and the (queries × k) best list, whatever the corpus size.
Ties are broken as trec_eval does (document id descending), see :mod:`embedlab.eval.metrics`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from embedlab.arrays import FloatArray, IntArray
from embedlab.engine.embedder import Embedder
from embedlab.errors import ConfigError, InferenceError
from embedlab.eval._embedding import (
    EmbedCounters,
    ProgressFn,
    check_embed_options,
    embed_texts,
    resolve_embed_options,
    settings_in_effect,
)
from embedlab.eval.beir import RetrievalData
from embedlab.eval.metrics import DEFAULT_K_VALUES, score_rankings
from embedlab.eval.report import EvalReport

#: Documents embedded (and searched) per chunk.
DEFAULT_CORPUS_CHUNK_SIZE = 10_000
#: Queries scored against a chunk at once: the score block is (query_block, chunk) float32.
DEFAULT_QUERY_BLOCK_SIZE = 1024


def tie_keys(doc_ids: Sequence[str]) -> IntArray:
    """(n,) int64: each document's position when ids are sorted descending, the tie-break (lower first)."""
    order = sorted(range(len(doc_ids)), key=lambda i: doc_ids[i], reverse=True)
    keys = np.empty(len(doc_ids), dtype=np.int64)
    keys[np.asarray(order, dtype=np.int64)] = np.arange(len(doc_ids), dtype=np.int64)
    return keys


def top_k_indices(scores: FloatArray, k: int, keys: IntArray) -> IntArray:
    """Per row, the columns of the ``k`` best scores, best first, ties by ``keys`` ascending.

    Args:
        scores: (rows, columns) float32; -inf marks excluded entries.
        k: how many to keep (fewer when there are fewer columns).
        keys: (columns,) tie-break keys.
    Returns:
        (rows, min(k, columns)) int64 column indices.
    """
    rows, columns = scores.shape
    kept = min(k, columns)
    if kept == columns:
        candidates = np.broadcast_to(np.arange(columns, dtype=np.int64), (rows, columns))
    else:
        candidates = np.argpartition(-scores, kept - 1, axis=1)[:, :kept].astype(np.int64)
        threshold = np.take_along_axis(scores, candidates, axis=1).min(axis=1)
        crowded = np.nonzero((scores >= threshold[:, None]).sum(axis=1) > kept)[0]
        if crowded.size:  # exact ties at the cut: choose among all tied columns by key, not by chance
            candidates = candidates.copy()
            for row in crowded:
                columns_at_or_above = np.nonzero(scores[row] >= threshold[row])[0]
                order = np.lexsort((keys[columns_at_or_above], -scores[row, columns_at_or_above]))[:kept]
                candidates[row] = columns_at_or_above[order]
    chosen = np.take_along_axis(scores, candidates, axis=1)
    order = np.lexsort((keys[candidates], -chosen), axis=1)
    return np.take_along_axis(candidates, order, axis=1)


class TopKAccumulator:
    """The running ``k`` best documents of every query, merged chunk by chunk.

    Attributes:
        scores: (n_queries, k) float32, best first; -inf where fewer than ``k`` documents were seen.
        indices: (n_queries, k) int64 global document indices; -1 where empty.
    """

    def __init__(self, n_queries: int, k: int, keys: IntArray) -> None:
        self.k = k
        self.keys = keys
        self.scores: FloatArray = np.full((n_queries, k), -np.inf, dtype=np.float32)
        self.indices: IntArray = np.full((n_queries, k), -1, dtype=np.int64)

    def add(self, block: FloatArray, query_start: int, doc_start: int) -> None:
        """Merge a (queries, documents) score ``block`` starting at ``query_start`` / ``doc_start``."""
        rows = slice(query_start, query_start + block.shape[0])
        local = top_k_indices(block, self.k, self.keys[doc_start : doc_start + block.shape[1]])
        new_scores = np.take_along_axis(block, local, axis=1)
        merged_scores = np.concatenate([self.scores[rows], new_scores], axis=1)
        merged_indices = np.concatenate([self.indices[rows], local + doc_start], axis=1)
        merged_keys = np.where(merged_indices >= 0, self.keys[np.maximum(merged_indices, 0)], np.iinfo(np.int64).max)
        order = np.lexsort((merged_keys, -merged_scores), axis=1)[:, : self.k]
        self.scores[rows] = np.take_along_axis(merged_scores, order, axis=1)
        self.indices[rows] = np.take_along_axis(merged_indices, order, axis=1)

    def rankings(self, doc_ids: Sequence[str]) -> list[list[str]]:
        """Per query, the retrieved document ids, best first (excluded and empty slots left out)."""
        return [
            [doc_ids[i] for i, s in zip(row_idx, row_scores, strict=True) if i >= 0 and s > -np.inf]
            for row_idx, row_scores in zip(self.indices.tolist(), self.scores.tolist(), strict=True)
        ]


def search_chunk(
    accumulator: TopKAccumulator,
    query_vectors: FloatArray,
    doc_vectors: FloatArray,
    doc_start: int,
    excluded: IntArray | None = None,
    query_block_size: int = DEFAULT_QUERY_BLOCK_SIZE,
) -> None:
    """Score every query against one chunk of unit-length document vectors (cosine) and merge.

    Args:
        accumulator: the running top-k.
        query_vectors: (n_queries, dim) unit rows.
        doc_vectors: (chunk, dim) unit rows, documents ``doc_start`` .. ``doc_start + chunk - 1``.
        excluded: (n_queries,) the global document index each query must not retrieve, or -1.
        query_block_size: queries per score block.
    """
    chunk = doc_vectors.shape[0]
    for start in range(0, query_vectors.shape[0], query_block_size):
        block = query_vectors[start : start + query_block_size] @ doc_vectors.T
        if excluded is not None:
            local = excluded[start : start + block.shape[0]] - doc_start
            hit = np.nonzero((local >= 0) & (local < chunk))[0]
            block[hit, local[hit]] = -np.inf
        accumulator.add(block, start, doc_start)


def default_prompts(embedder: Embedder) -> tuple[str | None, str | None]:
    """The model's own query and document prompts (``query``; ``document`` or ``passage``), or None."""
    prompts = embedder.spec.prompts
    document = prompts.get("document", prompts.get("passage"))
    return prompts.get("query"), document


def evaluate_retrieval(
    embedder: Embedder,
    data: RetrievalData,
    query_prompt: str | None = None,
    doc_prompt: str | None = None,
    config_label: str = "",
    *,
    k_values: Sequence[int] = DEFAULT_K_VALUES,
    ignore_identical_ids: bool = False,
    corpus_chunk_size: int = DEFAULT_CORPUS_CHUNK_SIZE,
    query_block_size: int = DEFAULT_QUERY_BLOCK_SIZE,
    progress: ProgressFn | None = None,
    **embed_options: Any,
) -> EvalReport:
    """Embed queries and corpus, search exactly by cosine, score nDCG / MAP / MRR / recall at each k.

    Args:
        embedder: a loaded model.
        data: from :func:`load_beir`.
        query_prompt, doc_prompt: text prepended to queries / documents; None takes the model's own
            ``query`` / ``document`` (or ``passage``) prompt when it ships one; ``""`` means none.
        config_label: the configuration's name in reports (``default`` when empty).
        k_values: cutoffs; 10 is always included (the main score is ``ndcg_at_10``).
        ignore_identical_ids: never retrieve the document whose id equals the query's id.
        corpus_chunk_size: documents embedded and searched at a time.
        query_block_size: queries per score block in the search.
        progress: ``progress("queries" | "corpus", done, total)`` while embedding.
        **embed_options: ``max_tokens``, ``dimensions``, ``long_input``, ``normalize``.

    Returns:
        An :class:`EvalReport` with main metric ``ndcg_at_10`` and ``map_at_k``, ``mrr_at_k``,
        ``recall_at_k``, ``ndcg_at_k`` for every k.

    Raises:
        ConfigError: an unknown option or a bad chunk size / cutoff.
        InferenceError: the model returned non-finite vectors.
    """
    options = check_embed_options(embed_options, forbidden=("prompt", "prompt_name"))
    if corpus_chunk_size < 1 or query_block_size < 1:
        raise ConfigError("corpus_chunk_size and query_block_size must be ≥ 1")
    cutoffs = sorted({int(k) for k in k_values} | {10})
    if cutoffs[0] < 1:
        raise ConfigError(f"cutoffs must be ≥ 1, got {cutoffs[0]}")
    own_query, own_doc = default_prompts(embedder)
    query_prompt = own_query if query_prompt is None else query_prompt
    doc_prompt = own_doc if doc_prompt is None else doc_prompt
    query_options = resolve_embed_options(embedder, {**options, "prompt": query_prompt})
    doc_options = resolve_embed_options(embedder, {**options, "prompt": doc_prompt})

    started = time.perf_counter()
    counters = EmbedCounters()
    query_vectors = embed_texts(
        embedder, data.query_texts, counters, stage="queries", options=query_options, progress=progress
    )
    _check_finite(query_vectors, "query")
    keys = tie_keys(data.corpus_ids)
    accumulator = TopKAccumulator(len(data.query_ids), max(cutoffs), keys)
    excluded = None
    if ignore_identical_ids:
        position = {doc_id: i for i, doc_id in enumerate(data.corpus_ids)}
        excluded = np.asarray([position.get(q, -1) for q in data.query_ids], dtype=np.int64)
    search_seconds = 0.0
    n_docs = len(data.corpus_ids)
    for doc_start in range(0, n_docs, corpus_chunk_size):
        doc_vectors = embed_texts(
            embedder,
            data.corpus_texts[doc_start : doc_start + corpus_chunk_size],
            counters,
            stage="corpus",
            options=doc_options,
            progress=progress,
            done_before=doc_start,
            total=n_docs,
        )
        _check_finite(doc_vectors, "document")
        t0 = time.perf_counter()
        search_chunk(accumulator, query_vectors, doc_vectors, doc_start, excluded, query_block_size)
        search_seconds += time.perf_counter() - t0

    rankings = dict(zip(data.query_ids, accumulator.rankings(data.corpus_ids), strict=True))
    metrics = score_rankings(rankings, data.qrels, cutoffs)
    return EvalReport(
        task="retrieval",
        model=embedder.spec.name,
        config=config_label or "default",
        metric="ndcg_at_10",
        score=metrics["ndcg_at_10"],
        n=len(data.query_ids),
        seconds=time.perf_counter() - started,
        tokens_per_second=counters.tokens_per_second,
        metrics=metrics,
        details={
            "data": data.source,
            "settings": settings_in_effect(embedder, doc_options),
            "documents": n_docs,
            "query_prompt": query_prompt,
            "doc_prompt": doc_prompt,
            "ignore_identical_ids": ignore_identical_ids,
            "texts": counters.texts,
            "tokens": counters.tokens,
            "truncated_texts": counters.truncated,
            "embed_seconds": counters.seconds,
            "search_seconds": search_seconds,
            "notes": list(data.notes),
        },
    )


def _check_finite(vectors: FloatArray, what: str) -> None:
    if not np.isfinite(vectors).all():
        raise InferenceError(f"the model returned non-finite {what} vectors (NaN or inf)")
