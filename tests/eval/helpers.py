"""Write small BEIR folders and slices of the real data sets for the eval tests."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping
from pathlib import Path


def write_beir(
    directory: Path,
    corpus: Iterable[Mapping[str, object]],
    queries: Iterable[Mapping[str, object]],
    qrels: Iterable[tuple[str, str, int | str]],
    split: str = "test",
    header: bool = True,
) -> Path:
    """Write a BEIR-layout folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "qrels").mkdir(exist_ok=True)
    (directory / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in corpus), encoding="utf-8")
    (directory / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries), encoding="utf-8")
    lines = ["query-id\tcorpus-id\tscore"] if header else []
    lines += [f"{q}\t{d}\t{s}" for q, d, s in qrels]
    (directory / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory


def slice_scifact(source: Path, target: Path, n_queries: int, n_other_docs: int, seed: int = 0) -> Path:
    """The first ``n_queries`` judged SciFact test queries, their judged documents and random others."""
    rows = [line.split("\t") for line in (source / "qrels" / "test.tsv").read_text().splitlines()[1:]]
    query_ids = sorted({r[0] for r in rows}, key=int)[:n_queries]
    kept = [(r[0], r[1], int(r[2])) for r in rows if r[0] in query_ids]
    judged = {r[1] for r in kept}
    corpus = [json.loads(line) for line in (source / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    others = [d for d in corpus if d["_id"] not in judged]
    random.Random(seed).shuffle(others)
    docs = [d for d in corpus if d["_id"] in judged] + others[:n_other_docs]
    queries = [json.loads(line) for line in (source / "queries.jsonl").read_text(encoding="utf-8").splitlines()]
    return write_beir(target, docs, [q for q in queries if q["_id"] in query_ids], kept)
