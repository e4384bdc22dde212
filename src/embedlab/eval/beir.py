"""Reading a BEIR-layout retrieval data set: corpus, queries and relevance judgments, checked.

The layout is a directory holding ``corpus.jsonl`` (``{"_id", "title", "text"}`` per line),
``queries.jsonl`` (``{"_id", "text"}``) and ``qrels/<split>.tsv`` (query id, document id, integer
grade; a header line is allowed; the 4-column TREC layout ``qid iter docid grade`` is read too).
As MTEB does, a document's text is ``title + " " + text`` (stripped), or just ``text`` when the title
is empty, and only queries with judgments in the split are kept.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embedlab.errors import DataFileError
from embedlab.io.readers import is_number, iter_jsonl

_SHOWN_IDS = 5


@dataclass
class RetrievalData:
    """A retrieval data set in memory.

    Attributes:
        corpus_ids, corpus_texts: the documents, text = ``title + " " + text`` (stripped).
        query_ids, query_texts: the queries that have judgments in the split, in file order.
        qrels: query id → {document id → integer grade}; grades ≥ 1 are relevant.
        source: the directory and split read.
        notes: what a lenient load dropped or kept (empty for a strict load).
    """

    corpus_ids: list[str]
    corpus_texts: list[str]
    query_ids: list[str]
    query_texts: list[str]
    qrels: dict[str, dict[str, int]]
    source: str = ""
    notes: list[str] = field(default_factory=list)


def document_text(title: Any, text: Any) -> str:
    """MTEB's document text: ``(title + " " + text).strip()`` when the title is non-empty, else the stripped text."""
    body = "" if text is None else str(text)
    head = "" if title is None else str(title)
    return (head + " " + body).strip() if head else body.strip()


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        yield from iter_jsonl(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFileError(f"cannot read {path}: {exc}") from exc


def _record_id(record: dict[str, Any], path: Path, number: int) -> str:
    value = record.get("_id", record.get("id"))
    if value is None or str(value) == "":
        raise DataFileError(f"{path}: line {number} has no '_id'")
    return str(value)


def _parse_grade(value: str, where: str) -> int:
    try:
        grade = float(value)
    except ValueError as exc:
        raise DataFileError(f"{where}: relevance {value!r} is not a number") from exc
    if grade != int(grade):
        raise DataFileError(f"{where}: relevance {value!r} is not an integer grade")
    return int(grade)


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    if not path.is_file():
        folder = path.parent
        splits = sorted(p.stem for p in folder.glob("*.tsv")) if folder.is_dir() else []
        known = f"; splits present: {', '.join(splits)}" if splits else ""
        raise DataFileError(f"missing qrels file {path}{known}")
    qrels: dict[str, dict[str, int]] = {}
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_MINIMAL)
            for fields in reader:
                number = reader.line_num
                where = f"{path}: line {number}"
                if not fields or not any(f.strip() for f in fields):
                    continue
                if len(fields) == 1:  # some files are space-separated TREC qrels
                    fields = fields[0].split()
                if len(fields) not in (3, 4):
                    raise DataFileError(
                        f"{where} has {len(fields)} fields; expected query-id, corpus-id, score "
                        "(or the TREC layout query-id, iteration, doc-id, relevance)"
                    )
                query_id, doc_id, grade_text = (
                    (fields[0], fields[1], fields[2]) if len(fields) == 3 else (fields[0], fields[2], fields[3])
                )
                if number == 1 and not is_number(grade_text):
                    continue  # header line
                grade = _parse_grade(grade_text.strip(), where)
                judged = qrels.setdefault(query_id.strip(), {})
                doc_id = doc_id.strip()
                if doc_id in judged and judged[doc_id] != grade:
                    raise DataFileError(
                        f"{where}: query {query_id!r} judges document {doc_id!r} twice, as {judged[doc_id]} and {grade}"
                    )
                judged[doc_id] = grade
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataFileError(f"cannot read {path}: {exc}") from exc
    if not qrels:
        raise DataFileError(f"{path} holds no relevance judgments")
    return qrels


def _some(ids: Sequence[str]) -> str:
    shown = ", ".join(repr(i) for i in ids[:_SHOWN_IDS])
    return shown + (f" and {len(ids) - _SHOWN_IDS} more" if len(ids) > _SHOWN_IDS else "")


def load_beir(directory: str | Path, split: str = "test", *, strict: bool = True) -> RetrievalData:
    """Read a BEIR-layout data set (see the module docstring).

    Args:
        directory: folder with ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``.
        split: which qrels file to use.
        strict: qrels naming an unknown query or document are an error. With ``strict=False`` such
            queries are dropped and such documents kept as relevant-but-unretrievable (as BEIR and
            MTEB do), and ``notes`` says how many.

    Raises:
        DataFileError: a missing or unreadable file, a line without ``_id``, duplicate ids, an empty
            document or query, a bad grade, unknown ids (strict), or nothing to evaluate.
    """
    root = Path(directory)
    if not root.is_dir():
        raise DataFileError(f"BEIR data directory not found: {root}")
    corpus_path, queries_path = root / "corpus.jsonl", root / "queries.jsonl"
    for path in (corpus_path, queries_path):
        if not path.is_file():
            raise DataFileError(
                f"missing {path.name} in {root} (the BEIR layout needs corpus.jsonl, queries.jsonl "
                "and qrels/<split>.tsv)"
            )
    qrels = _read_qrels(root / "qrels" / f"{split}.tsv")

    corpus_ids: list[str] = []
    corpus_texts: list[str] = []
    seen: set[str] = set()
    for number, record in _read_jsonl(corpus_path):
        doc_id = _record_id(record, corpus_path, number)
        if doc_id in seen:
            raise DataFileError(f"{corpus_path}: line {number} repeats document id {doc_id!r}")
        seen.add(doc_id)
        text = document_text(record.get("title"), record.get("text"))
        if not text:
            raise DataFileError(f"{corpus_path}: line {number}, document {doc_id!r} has no title and no text")
        corpus_ids.append(doc_id)
        corpus_texts.append(text)
    if not corpus_ids:
        raise DataFileError(f"{corpus_path} holds no documents")

    queries: dict[str, str] = {}
    query_lines: dict[str, int] = {}
    for number, record in _read_jsonl(queries_path):
        query_id = _record_id(record, queries_path, number)
        if query_id in queries:
            raise DataFileError(f"{queries_path}: line {number} repeats query id {query_id!r}")
        queries[query_id] = "" if record.get("text") is None else str(record.get("text"))
        query_lines[query_id] = number

    notes: list[str] = []
    unknown_queries = [q for q in qrels if q not in queries]
    unknown_docs = sorted({d for judged in qrels.values() for d in judged if d not in seen})
    if strict and (unknown_queries or unknown_docs):
        problems = []
        if unknown_queries:
            problems.append(f"{len(unknown_queries)} query id(s) not in queries.jsonl: {_some(unknown_queries)}")
        if unknown_docs:
            problems.append(f"{len(unknown_docs)} document id(s) not in corpus.jsonl: {_some(unknown_docs)}")
        raise DataFileError(
            f"{root / 'qrels' / (split + '.tsv')} names "
            + "; ".join(problems)
            + " (load with strict=False to drop unknown queries and keep unknown documents)"
        )
    for query_id in unknown_queries:
        del qrels[query_id]
    if unknown_queries:
        notes.append(f"dropped {len(unknown_queries)} judged queries missing from queries.jsonl")
    if unknown_docs:
        notes.append(f"kept {len(unknown_docs)} judged documents missing from corpus.jsonl (never retrieved)")
    if not qrels:
        raise DataFileError(f"no judged query of split {split!r} is in {queries_path}")

    query_ids = sorted(qrels, key=lambda q: query_lines[q])
    for query_id in query_ids:
        if not queries[query_id].strip():
            raise DataFileError(f"{queries_path}: line {query_lines[query_id]}, query {query_id!r} has no text")
    return RetrievalData(
        corpus_ids=corpus_ids,
        corpus_texts=corpus_texts,
        query_ids=query_ids,
        query_texts=[queries[q] for q in query_ids],
        qrels=qrels,
        source=f"{root} ({split})",
        notes=notes,
    )


# -- search --------------------------------------------------------------------------------------
