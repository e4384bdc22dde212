"""Retrieval on a BEIR-layout data set (read by :mod:`embedlab.eval.beir`): exact cosine search, or the
search a vector store makes on vectors stored in a lower precision, scored like MTEB (nDCG@10 first).

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

Precisions (:func:`evaluate_retrieval_by_precision`): each chunk of float vectors is quantised to every
precision asked for and searched as a store would search it (:mod:`embedlab.eval.quantized`: cosine of
float16 values, dot product of dequantised int8 / uint8 codes, Hamming distance of packed bits), with
the queries quantised the same way; with ``rescore=K`` the top K candidates are re-ranked by the float32
query against the documents' stored codes, as sentence-transformers' ``semantic_search_faiss`` /
``semantic_search_usearch`` do. Only the codes of the rescored precisions are kept for the whole corpus.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from embedlab.arrays import Float64Array, FloatArray, IntArray
from embedlab.engine.embedder import Embedder
from embedlab.engine.vector_precision import (
    PRECISIONS,
    EmbeddingArray,
    Precision,
    bytes_per_vector,
    check_precision,
    quantize,
    ranges_of,
)
from embedlab.errors import ConfigError, InferenceError
from embedlab.eval._embedding import (
    EmbedCounters,
    ProgressFn,
    check_embed_options,
    embed_texts,
    resolve_embed_options,
    resolve_int8_ranges,
    settings_in_effect,
)
from embedlab.eval.beir import RetrievalData
from embedlab.eval.metrics import DEFAULT_K_VALUES, score_rankings
from embedlab.eval.quantized import (
    RANGED_PRECISIONS,
    RESCORABLE,
    Int8Ranges,
    ScoreArray,
    check_precisions,
    check_rescore,
    first_pass_scores,
    int8_ranges_name,
    precision_label,
    rescore_candidates,
)
from embedlab.eval.report import EvalReport

#: Documents embedded (and searched) per chunk.
DEFAULT_CORPUS_CHUNK_SIZE = 10_000
#: Queries scored against a chunk at once: the score block is (query_block, chunk) float32.
DEFAULT_QUERY_BLOCK_SIZE = 1024
#: Rescoring decodes (queries, K, d) float64 values at a time, at most this many (32 MiB).
RESCORE_BLOCK_VALUES = 1 << 22


def tie_keys(doc_ids: Sequence[str]) -> IntArray:
    """(n,) int64: each document's position when ids are sorted descending, the tie-break (lower first)."""
    order = sorted(range(len(doc_ids)), key=lambda i: doc_ids[i], reverse=True)
    keys = np.empty(len(doc_ids), dtype=np.int64)
    keys[np.asarray(order, dtype=np.int64)] = np.arange(len(doc_ids), dtype=np.int64)
    return keys


def top_k_indices(scores: ScoreArray, k: int, keys: IntArray) -> IntArray:
    """Per row, the columns of the ``k`` best scores, best first, ties by ``keys`` ascending.

    Args:
        scores: (rows, columns) float32 or float64; -inf marks excluded entries.
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
    chosen = np.take_along_axis(scores, candidates, axis=1).astype(np.float64)  # exact for float32
    order = np.lexsort((keys[candidates], -chosen), axis=1)
    return np.take_along_axis(candidates, order, axis=1)


class TopKAccumulator:
    """The running ``k`` best documents of every query, merged chunk by chunk.

    Attributes:
        scores: (n_queries, k) float64 (float32 blocks are held exactly), best first; -inf where fewer than
            ``k`` documents were seen.
        indices: (n_queries, k) int64 global document indices; -1 where empty.
    """

    def __init__(self, n_queries: int, k: int, keys: IntArray) -> None:
        self.k = k
        self.keys = keys
        self.scores: Float64Array = np.full((n_queries, k), -np.inf, dtype=np.float64)
        self.indices: IntArray = np.full((n_queries, k), -1, dtype=np.int64)

    def add(self, block: ScoreArray, query_start: int, doc_start: int) -> None:
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


def merge_block(
    accumulator: TopKAccumulator,
    block: ScoreArray,
    query_start: int,
    doc_start: int,
    excluded: IntArray | None = None,
) -> None:
    """Merge a (queries, documents) score ``block`` after setting each query's excluded document to -inf.

    Args:
        block: scores of queries ``query_start`` .. and documents ``doc_start`` .., higher better (modified).
        excluded: (n_queries,) the global document index each query must not retrieve, or -1.
    """
    if excluded is not None:
        local = excluded[query_start : query_start + block.shape[0]] - doc_start
        hit = np.nonzero((local >= 0) & (local < block.shape[1]))[0]
        block[hit, local[hit]] = -np.inf
    accumulator.add(block, query_start, doc_start)


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
    search_stored_chunk(accumulator, query_vectors, doc_vectors, "float32", doc_start, excluded, query_block_size)


def search_stored_chunk(
    accumulator: TopKAccumulator,
    query_codes: EmbeddingArray,
    doc_codes: EmbeddingArray,
    precision: str,
    doc_start: int,
    excluded: IntArray | None = None,
    query_block_size: int = DEFAULT_QUERY_BLOCK_SIZE,
    ranges: FloatArray | None = None,
) -> None:
    """Score every query against one chunk of stored documents as a store would, and merge.

    Args:
        query_codes: (n_queries, width) queries quantised like the documents.
        doc_codes: (chunk, width) documents ``doc_start`` .. in ``precision``.
        precision: scored by :func:`embedlab.eval.quantized.first_pass_scores`.
        ranges: int8 / uint8 ranges of both, None for [-1, 1].
    """
    for start in range(0, query_codes.shape[0], query_block_size):
        block = first_pass_scores(query_codes[start : start + query_block_size], doc_codes, precision, ranges)
        merge_block(accumulator, block, start, doc_start, excluded)


@dataclass
class PrecisionSearch:
    """The search of one precision while the corpus streams by.

    Attributes:
        precision: how documents (and queries, for the first pass) are stored.
        rescore: first-pass candidates rescored per query with the float32 query (0: none).
        accumulator: the first pass's running top ``max(rescore, largest cutoff)``.
        stored: (n_documents, width) every document's codes, kept only when rescoring (the stored form, not
            the float vectors).
        seconds: time spent quantising, searching and rescoring, seconds.
    """

    precision: Precision
    rescore: int
    accumulator: TopKAccumulator
    stored: EmbeddingArray | None = None
    seconds: float = 0.0

    def add_chunk(
        self,
        query_codes: EmbeddingArray,
        doc_vectors: FloatArray,
        doc_start: int,
        n_docs: int,
        ranges: FloatArray | None,
        excluded: IntArray | None,
        query_block_size: int,
    ) -> None:
        """Quantise a chunk of unit document vectors (chunk, d), keep its codes if rescoring, search it."""
        t0 = time.perf_counter()
        codes = quantize(doc_vectors, self.precision, ranges)
        if self.rescore:
            if self.stored is None:
                self.stored = np.empty((n_docs, codes.shape[1]), dtype=codes.dtype)
            self.stored[doc_start : doc_start + codes.shape[0]] = codes
        search_stored_chunk(
            self.accumulator, query_codes, codes, self.precision, doc_start, excluded, query_block_size, ranges
        )
        self.seconds += time.perf_counter() - t0

    def rankings(
        self, query_vectors: FloatArray, doc_ids: Sequence[str], top: int, ranges: FloatArray | None
    ) -> list[list[str]]:
        """Per query, the retrieved document ids, best first: the first pass's, or its top ``rescore`` rescored."""
        if not self.rescore or self.stored is None:
            return self.accumulator.rankings(doc_ids)
        t0 = time.perf_counter()
        found = np.where(self.accumulator.scores > -np.inf, self.accumulator.indices, -1)
        block = max(1, RESCORE_BLOCK_VALUES // (self.rescore * query_vectors.shape[1]))
        rankings: list[list[str]] = []
        for start in range(0, query_vectors.shape[0], block):
            chosen, _ = rescore_candidates(
                query_vectors[start : start + block],
                found[start : start + block],
                self.stored,
                self.precision,
                self.accumulator.keys,
                top,
                ranges,
            )
            rankings.extend([doc_ids[i] for i in row if i >= 0] for row in chosen.tolist())
        self.seconds += time.perf_counter() - t0
        return rankings


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
    precision: str = "float32",
    rescore: int = 0,
    int8_ranges: Int8Ranges = "unit",
    k_values: Sequence[int] = DEFAULT_K_VALUES,
    ignore_identical_ids: bool = False,
    corpus_chunk_size: int = DEFAULT_CORPUS_CHUNK_SIZE,
    query_block_size: int = DEFAULT_QUERY_BLOCK_SIZE,
    progress: ProgressFn | None = None,
    **embed_options: Any,
) -> EvalReport:
    """Embed queries and corpus, search, score nDCG / MAP / MRR / recall at each k.

    By default the search is exact cosine of the float32 vectors; ``precision`` stores the documents in
    another precision and searches them as a vector store would (:mod:`embedlab.eval.quantized`).

    Args:
        embedder: a loaded model.
        data: from :func:`load_beir`.
        query_prompt, doc_prompt: text prepended to queries / documents; None takes the model's own
            ``query`` / ``document`` (or ``passage``) prompt when it ships one; ``""`` means none.
        config_label: the configuration's name in reports (``default`` when empty); a precision other than
            float32 (or rescoring) adds ``precision=…`` to it, as :func:`evaluate_retrieval_by_precision` does.
        precision: one of :data:`~embedlab.engine.vector_precision.PRECISIONS`.
        rescore: rescore the top ``rescore`` candidates of the first pass with the float32 query (int8, uint8,
            binary, ubinary only; at least the largest cutoff); 0 for none.
        int8_ranges: int8 / uint8 ranges: ``"unit"`` ([-1, 1]), ``"corpus"`` (measured on the first corpus chunk:
            optimistic, the evaluated documents calibrate themselves), calibration texts, or a (2, d) array.
        k_values: cutoffs; 10 is always included (the main score is ``ndcg_at_10``).
        ignore_identical_ids: never retrieve the document whose id equals the query's id.
        corpus_chunk_size: documents embedded and searched at a time.
        query_block_size: queries per score block in the search.
        progress: ``progress("queries" | "corpus" | "calibration", done, total)`` while embedding.
        **embed_options: ``max_tokens``, ``dimensions``, ``long_input``, ``normalize``.

    Returns:
        An :class:`EvalReport` with main metric ``ndcg_at_10`` and ``map_at_k``, ``mrr_at_k``,
        ``recall_at_k``, ``ndcg_at_k`` for every k; ``details`` holds ``precision``, ``rescore``,
        ``bytes_per_vector`` (and ``int8_ranges`` for int8 / uint8).

    Raises:
        ConfigError: an unknown option or precision, a bad chunk size / cutoff / rescore depth / ranges.
        InferenceError: the model returned non-finite vectors.
    """
    (report,) = _evaluate(
        embedder,
        data,
        query_prompt,
        doc_prompt,
        config_label,
        (precision,),
        rescore,
        int8_ranges,
        label_default=precision == "float32" and rescore == 0,
        k_values=k_values,
        ignore_identical_ids=ignore_identical_ids,
        corpus_chunk_size=corpus_chunk_size,
        query_block_size=query_block_size,
        progress=progress,
        embed_options=embed_options,
    )
    return report


def evaluate_retrieval_by_precision(
    embedder: Embedder,
    data: RetrievalData,
    query_prompt: str | None = None,
    doc_prompt: str | None = None,
    config_label: str = "",
    *,
    precisions: Sequence[str] = PRECISIONS,
    rescore: int = 0,
    int8_ranges: Int8Ranges = "unit",
    k_values: Sequence[int] = DEFAULT_K_VALUES,
    ignore_identical_ids: bool = False,
    corpus_chunk_size: int = DEFAULT_CORPUS_CHUNK_SIZE,
    query_block_size: int = DEFAULT_QUERY_BLOCK_SIZE,
    progress: ProgressFn | None = None,
    **embed_options: Any,
) -> list[EvalReport]:
    """The retrieval score of each precision: one embedding pass, one report per precision, in order.

    Queries and corpus are embedded once; every chunk of corpus vectors is quantised to each precision
    and searched as a store would (:mod:`embedlab.eval.quantized`), so memory holds one chunk's float
    vectors, each precision's running top-k and, for the precisions that are rescored, the codes of the
    whole corpus (their stored form), never the float vectors of every document.

    Args:
        precisions: the precisions to score, each once (float32 gives :func:`evaluate_retrieval`'s numbers).
        rescore: rescore the top ``rescore`` first-pass candidates of every precision in
            :data:`~embedlab.eval.quantized.RESCORABLE` with the float32 query (others are not rescored;
            at least one must be rescorable); at least the largest cutoff; 0 for none.
        the others: as :func:`evaluate_retrieval`.

    Returns:
        One :class:`EvalReport` per precision, labelled ``[config_label,]precision=P[,rescore=K]``
        (plus ``int8_ranges=…`` for int8 / uint8 with ranges other than ``unit``). ``seconds``,
        ``tokens_per_second`` and ``embed_seconds`` are of the shared run; ``search_seconds`` is the
        precision's own (quantising, searching, rescoring).

    Raises:
        as :func:`evaluate_retrieval`.
    """
    return _evaluate(
        embedder,
        data,
        query_prompt,
        doc_prompt,
        config_label,
        precisions,
        rescore,
        int8_ranges,
        label_default=False,
        k_values=k_values,
        ignore_identical_ids=ignore_identical_ids,
        corpus_chunk_size=corpus_chunk_size,
        query_block_size=query_block_size,
        progress=progress,
        embed_options=embed_options,
    )


def _evaluate(
    embedder: Embedder,
    data: RetrievalData,
    query_prompt: str | None,
    doc_prompt: str | None,
    config_label: str,
    precisions: Sequence[str],
    rescore: int,
    int8_ranges: Int8Ranges,
    *,
    label_default: bool,
    k_values: Sequence[int],
    ignore_identical_ids: bool,
    corpus_chunk_size: int,
    query_block_size: int,
    progress: ProgressFn | None,
    embed_options: dict[str, Any],
) -> list[EvalReport]:
    options = check_embed_options(embed_options, forbidden=("prompt", "prompt_name"))
    if corpus_chunk_size < 1 or query_block_size < 1:
        raise ConfigError("corpus_chunk_size and query_block_size must be ≥ 1")
    cutoffs = sorted({int(k) for k in k_values} | {10})
    if cutoffs[0] < 1:
        raise ConfigError(f"cutoffs must be ≥ 1, got {cutoffs[0]}")
    chosen = check_precisions(precisions)
    check_rescore(rescore, chosen, cutoffs[-1])
    ranges_name = int8_ranges_name(int8_ranges, chosen)
    own_query, own_doc = default_prompts(embedder)
    query_prompt = own_query if query_prompt is None else query_prompt
    doc_prompt = own_doc if doc_prompt is None else doc_prompt
    query_options = resolve_embed_options(embedder, {**options, "prompt": query_prompt})
    doc_options = resolve_embed_options(embedder, {**options, "prompt": doc_prompt})

    started = time.perf_counter()
    counters = EmbedCounters()
    calibration = EmbedCounters()
    ranges = resolve_int8_ranges(embedder, int8_ranges, doc_options, calibration)
    query_vectors = embed_texts(
        embedder, data.query_texts, counters, stage="queries", options=query_options, progress=progress
    )
    _check_finite(query_vectors, "query")
    keys = tie_keys(data.corpus_ids)
    searches = []
    for precision in chosen:
        depth = rescore if precision in RESCORABLE else 0
        accumulator = TopKAccumulator(len(data.query_ids), max(depth, cutoffs[-1]), keys)
        searches.append(PrecisionSearch(precision, depth, accumulator))
    excluded = None
    if ignore_identical_ids:
        position = {doc_id: i for i, doc_id in enumerate(data.corpus_ids)}
        excluded = np.asarray([position.get(q, -1) for q in data.query_ids], dtype=np.int64)
    n_docs = len(data.corpus_ids)
    ranges_documents = 0
    query_codes: list[EmbeddingArray] = []
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
        if doc_start == 0:
            if ranges_name == "corpus":  # measured on the first chunk: optimistic, see the docstring
                ranges = ranges_of(doc_vectors)
                ranges_documents = doc_vectors.shape[0]
            query_codes = [quantize(query_vectors, s.precision, _ranges_for(s.precision, ranges)) for s in searches]
        for search, codes in zip(searches, query_codes, strict=True):
            search.add_chunk(
                codes,
                doc_vectors,
                doc_start,
                n_docs,
                _ranges_for(search.precision, ranges),
                excluded,
                query_block_size,
            )

    dim = doc_options.dimensions
    shared = {
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
    }
    ranked = [
        (search, search.rankings(query_vectors, data.corpus_ids, cutoffs[-1], _ranges_for(search.precision, ranges)))
        for search in searches
    ]
    seconds = time.perf_counter() - started
    reports = []
    for search, rankings in ranked:
        metrics = score_rankings(dict(zip(data.query_ids, rankings, strict=True)), data.qrels, cutoffs)
        details = {
            **shared,
            "search_seconds": search.seconds,
            **_precision_details(search.precision, search.rescore, dim, ranges_name, calibration, ranges_documents),
            "notes": list(data.notes),
        }
        reports.append(
            EvalReport(
                task="retrieval",
                model=embedder.spec.name,
                config=_row_label(config_label, search.precision, search.rescore, ranges_name, label_default),
                metric="ndcg_at_10",
                score=metrics["ndcg_at_10"],
                n=len(data.query_ids),
                seconds=seconds,
                tokens_per_second=counters.tokens_per_second,
                metrics=metrics,
                details=details,
            )
        )
    return reports


def _ranges_for(precision: str, ranges: FloatArray | None) -> FloatArray | None:
    return ranges if precision in RANGED_PRECISIONS else None


def _row_label(config_label: str, precision: str, rescore: int, ranges_name: str, label_default: bool) -> str:
    if label_default:
        return config_label or "default"
    suffix = precision_label(precision, rescore, ranges_name)
    return f"{config_label},{suffix}" if config_label and config_label != "default" else suffix


def _precision_details(
    precision: str, rescore: int, dim: int, ranges_name: str, calibration: EmbedCounters, ranges_documents: int
) -> dict[str, Any]:
    details: dict[str, Any] = {
        "precision": precision,
        "rescore": rescore,
        "bytes_per_vector": bytes_per_vector(dim, check_precision(precision)),
    }
    if precision in RANGED_PRECISIONS:
        details["int8_ranges"] = ranges_name
        if ranges_name == "texts":
            details["calibration_texts"] = calibration.texts
        if ranges_name == "corpus":
            details["calibration_documents"] = ranges_documents
    return details


def _check_finite(vectors: FloatArray, what: str) -> None:
    if not np.isfinite(vectors).all():
        raise InferenceError(f"the model returned non-finite {what} vectors (NaN or inf)")
