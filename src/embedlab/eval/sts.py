"""Semantic textual similarity: Spearman (and Pearson) of cosine similarity against gold scores.

Reads two layouts:

- the STS Benchmark release files (``sts-test.csv`` and friends): tab-separated, no header, fields
  genre, file, year, id, score, sentence1, sentence2, with extra trailing fields on some lines that
  are ignored; quote characters are text, not quoting;
- a CSV or TSV (optionally gzipped) with a header naming the two sentence columns and the score
  column (``sentence1``, ``sentence2``, ``score`` unless told otherwise). The delimiter is a tab if
  the header line holds one, else a comma; tab files are read without quoting (sentences hold bare
  quote characters), comma files with standard CSV quoting. A ``split`` column, as in
  ``stsbenchmark.tsv.gz``, selects rows with ``split=``.

The main score is MTEB's ``cosine_spearman``: gold scores are used as given (MTEB rescales them to
[0, 1] first, which changes neither correlation). :func:`evaluate_sts_by_precision` scores the same
vectors stored in each precision (the metric keeps its name, ``cosine_spearman``, though for the bit
precisions the similarity is ``1 - hamming / d``).
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from embedlab.arrays import Float64Array
from embedlab.engine.embedder import Embedder
from embedlab.engine.vector_precision import PRECISIONS, bytes_per_vector, quantize, ranges_of
from embedlab.errors import ConfigError, DataFileError, InputError
from embedlab.eval._embedding import (
    EmbedCounters,
    ProgressFn,
    check_embed_options,
    embed_texts,
    resolve_embed_options,
    resolve_int8_ranges,
    settings_in_effect,
)
from embedlab.eval.metrics import pearson, spearman
from embedlab.eval.quantized import (
    BIT_PRECISIONS,
    RANGED_PRECISIONS,
    Int8Ranges,
    check_precisions,
    int8_ranges_name,
    pair_similarity,
    precision_label,
)
from embedlab.eval.report import EvalReport
from embedlab.io.readers import is_number

#: Fields of the STS Benchmark release files, in order (a line may carry more, which are ignored).
STSB_FIELDS: tuple[str, ...] = ("genre", "file", "year", "id", "score", "sentence1", "sentence2")


@dataclass
class StsData:
    """Sentence pairs with gold similarity scores.

    Attributes:
        sentences1, sentences2: the pairs, same length.
        scores: (n,) float64 gold scores, any scale (STS Benchmark: 0-5).
        source: where the pairs were read from.
    """

    sentences1: list[str]
    sentences2: list[str]
    scores: Float64Array
    source: str = ""

    def __len__(self) -> int:
        return len(self.sentences1)

    def head(self, n: int) -> StsData:
        """The first ``n`` pairs."""
        if n < 1:
            raise ConfigError(f"the number of pairs to keep must be ≥ 1, got {n}")
        return StsData(self.sentences1[:n], self.sentences2[:n], self.scores[:n].copy(), self.source)


def _open_text(path: Path) -> TextIO:
    if path.suffix.lower() == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def _parse_score(value: str, where: str) -> float:
    try:
        score = float(value)
    except ValueError as exc:
        raise DataFileError(f"{where}: score {value!r} is not a number") from exc
    if not math.isfinite(score):
        raise DataFileError(f"{where}: score {value!r} is not a finite number")
    return score


def _check_sentence(value: str, where: str, column: str) -> str:
    if not value.strip():
        raise DataFileError(f"{where}: {column} is empty")
    return value


def _stsb_rows(handle: TextIO, path: Path) -> Iterator[tuple[str, str, float]]:
    for number, line in enumerate(handle, start=1):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        fields = line.split("\t")
        where = f"{path}: line {number}"
        if len(fields) < len(STSB_FIELDS):
            raise DataFileError(
                f"{where} has {len(fields)} tab-separated fields; the STS Benchmark layout needs "
                f"{len(STSB_FIELDS)} ({', '.join(STSB_FIELDS)})"
            )
        score = _parse_score(fields[4], where)
        yield _check_sentence(fields[5], where, "sentence1"), _check_sentence(fields[6], where, "sentence2"), score


def _header_rows(
    handle: TextIO, path: Path, delimiter: str, names: tuple[str, str, str], split: str | None
) -> Iterator[tuple[str, str, float]]:
    if delimiter == "\t":
        reader = csv.reader(handle, delimiter=delimiter, quoting=csv.QUOTE_NONE)
    else:
        reader = csv.reader(handle, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL)
    header = [name.strip() for name in next(reader)]
    positions = []
    for name in names:
        if name not in header:
            raise DataFileError(f"{path}: no column {name!r}; the header has {', '.join(header)}")
        positions.append(header.index(name))
    split_at = header.index("split") if "split" in header else None
    if split is not None and split_at is None:
        raise ConfigError(f"{path} has no 'split' column, so split={split!r} cannot be applied")
    seen_splits: set[str] = set()
    for fields in reader:
        where = f"{path}: line {reader.line_num}"
        if not fields or not any(f.strip() for f in fields):
            continue
        if len(fields) <= max(positions):
            raise DataFileError(f"{where} has {len(fields)} fields, fewer than the header's {len(header)}")
        if split_at is not None:
            seen_splits.add(fields[split_at])
            if split is not None and fields[split_at] != split:
                continue
        s1, s2, score = (fields[p] for p in positions)
        yield _check_sentence(s1, where, names[0]), _check_sentence(s2, where, names[1]), _parse_score(score, where)
    if split_at is not None and split is None and len(seen_splits) > 1:
        raise DataFileError(f"{path} holds the splits {', '.join(sorted(seen_splits))}; choose one with split=")


def load_sts(
    path: str | Path,
    sentence1: str = "sentence1",
    sentence2: str = "sentence2",
    score: str = "score",
    *,
    split: str | None = None,
) -> StsData:
    """Read sentence pairs and gold scores (layouts in the module docstring).

    Args:
        path: an STS Benchmark release file, or a CSV / TSV (optionally ``.gz``) with a header.
        sentence1, sentence2, score: header names of the two sentences and the gold score.
        split: keep only rows whose ``split`` column has this value (files with a split column).

    Raises:
        DataFileError: missing or unreadable file, missing columns, short lines, a non-numeric score,
            an empty sentence, several splits and none chosen, or no pairs at all.
        ConfigError: ``split`` given for a file without a split column.
    """
    file = Path(path)
    if not file.is_file():
        raise DataFileError(f"STS file not found: {file}")
    names = (sentence1, sentence2, score)
    rows: list[tuple[str, str, float]] = []
    try:
        with _open_text(file) as handle:
            first = handle.readline()
            while first and not first.strip():
                first = handle.readline()
            if not first:
                raise DataFileError(f"{file} is empty: no sentence pairs")
            delimiter = "\t" if "\t" in first else ","
            header_fields = [f.strip().strip('"') for f in first.rstrip("\r\n").split(delimiter)]
            handle.seek(0)
            if all(name in header_fields for name in names):
                rows = list(_header_rows(handle, file, delimiter, names, split))
            elif delimiter == "\t" and len(header_fields) >= len(STSB_FIELDS) and is_number(header_fields[4]):
                if split is not None:
                    raise ConfigError(f"{file} has no 'split' column, so split={split!r} cannot be applied")
                rows = list(_stsb_rows(handle, file))
            else:
                missing = [name for name in names if name not in header_fields]
                raise DataFileError(
                    f"{file}: the first line names no column {', '.join(map(repr, missing))} and the file is not "
                    f"in the STS Benchmark layout (tab-separated {', '.join(STSB_FIELDS)}); "
                    "name the columns with sentence1= / sentence2= / score="
                )
    except (OSError, UnicodeDecodeError, EOFError, csv.Error) as exc:
        raise DataFileError(f"cannot read {file}: {exc}") from exc
    if not rows:
        where = f" for split {split!r}" if split is not None else ""
        raise DataFileError(f"{file} holds no sentence pairs{where}")
    s1, s2, gold = zip(*rows, strict=True)
    return StsData(list(s1), list(s2), np.asarray(gold, dtype=np.float64), str(file))


def evaluate_sts(
    embedder: Embedder,
    data: StsData,
    config_label: str = "",
    *,
    precision: str = "float32",
    int8_ranges: Int8Ranges = "unit",
    progress: ProgressFn | None = None,
    **embed_options: Any,
) -> EvalReport:
    """Embed both sides of every pair, score each pair by cosine, correlate with the gold scores.

    Args:
        embedder: a loaded model.
        data: pairs from :func:`load_sts`.
        config_label: the configuration's name in reports (``default`` when empty); a precision other than
            float32 adds ``precision=…`` to it, as :func:`evaluate_sts_by_precision` does.
        precision: both sentences' vectors in this precision (:func:`evaluate_sts_by_precision`).
        int8_ranges: int8 / uint8 ranges: ``"unit"`` ([-1, 1]), ``"corpus"`` (measured on the pairs' own
            sentences: optimistic), calibration texts, or a (2, d) array.
        progress: ``progress("sentences" | "calibration", done, total)`` while embedding.
        **embed_options: passed to :meth:`Embedder.embed_with_report`: ``max_tokens``,
            ``dimensions``, ``long_input``, ``normalize``, ``prompt``, ``prompt_name``.

    Returns:
        An :class:`EvalReport` with main metric ``cosine_spearman`` and ``cosine_pearson`` (for another
        precision, of that precision's similarity); ``details`` holds ``precision``, ``bytes_per_vector``,
        ``similarity`` (and ``int8_ranges`` for int8 / uint8).

    Raises:
        InputError: fewer than 2 pairs, or gold scores that are all equal.
        ConfigError: an unknown embedding option or precision, or bad ranges.
    """
    (report,) = _evaluate(
        embedder, data, config_label, (precision,), int8_ranges, precision == "float32", progress, embed_options
    )
    return report


def evaluate_sts_by_precision(
    embedder: Embedder,
    data: StsData,
    config_label: str = "",
    *,
    precisions: Sequence[str] = PRECISIONS,
    int8_ranges: Int8Ranges = "unit",
    progress: ProgressFn | None = None,
    **embed_options: Any,
) -> list[EvalReport]:
    """The STS score of each precision: one embedding pass, one report per precision, in order.

    Each pair's similarity when both vectors are stored in the precision
    (:func:`embedlab.eval.quantized.pair_similarity`): float32 the cosine (:func:`evaluate_sts`'s numbers),
    float16 the cosine of the float16 values, int8 / uint8 the cosine of the dequantised codes, binary /
    ubinary ``1 - hamming / d`` (the share of the d bits that agree).

    Args:
        precisions: the precisions to score, each once.
        the others: as :func:`evaluate_sts`.

    Returns:
        One :class:`EvalReport` per precision, labelled ``[config_label,]precision=P`` (plus
        ``int8_ranges=…`` for int8 / uint8 with ranges other than ``unit``); timings are of the shared run.

    Raises:
        as :func:`evaluate_sts`.
    """
    return _evaluate(embedder, data, config_label, precisions, int8_ranges, False, progress, embed_options)


def _evaluate(
    embedder: Embedder,
    data: StsData,
    config_label: str,
    precisions: Sequence[str],
    int8_ranges: Int8Ranges,
    label_default: bool,
    progress: ProgressFn | None,
    embed_options: dict[str, Any],
) -> list[EvalReport]:
    options = resolve_embed_options(embedder, check_embed_options(embed_options))
    chosen = check_precisions(precisions)
    ranges_name = int8_ranges_name(int8_ranges, chosen)
    if len(data) < 2:
        raise InputError(f"STS needs at least 2 sentence pairs, got {len(data)}")
    if np.ptp(data.scores) == 0:
        raise InputError(f"all gold scores in {data.source or 'the data'} are equal; the correlation is undefined")
    started = time.perf_counter()
    counters = EmbedCounters()
    calibration = EmbedCounters()
    ranges = resolve_int8_ranges(embedder, int8_ranges, options, calibration)
    vectors = embed_texts(
        embedder, data.sentences1 + data.sentences2, counters, stage="sentences", options=options, progress=progress
    )
    if ranges_name == "corpus":  # the evaluated sentences calibrate themselves: optimistic
        ranges = ranges_of(vectors)
    n = len(data)
    dim = vectors.shape[1]
    shared = {
        "data": data.source,
        "settings": settings_in_effect(embedder, options),
        "texts": counters.texts,
        "tokens": counters.tokens,
        "truncated_texts": counters.truncated,
        "embed_seconds": counters.seconds,
    }
    reports = []
    for precision in chosen:
        own_ranges = ranges if precision in RANGED_PRECISIONS else None
        codes = quantize(vectors, precision, own_ranges)
        similarity = pair_similarity(codes[:n], codes[n:], precision, dim, own_ranges)
        metrics = {
            "cosine_spearman": spearman(similarity, data.scores),
            "cosine_pearson": pearson(similarity, data.scores),
        }
        details: dict[str, Any] = {
            **shared,
            "precision": precision,
            "bytes_per_vector": bytes_per_vector(dim, precision),
            "similarity": "1 - hamming / d" if precision in BIT_PRECISIONS else "cosine",
        }
        if precision in RANGED_PRECISIONS:
            details["int8_ranges"] = ranges_name
            if ranges_name == "texts":
                details["calibration_texts"] = calibration.texts
        if label_default:
            label = config_label or "default"
        else:
            suffix = precision_label(precision, 0, ranges_name)
            label = f"{config_label},{suffix}" if config_label and config_label != "default" else suffix
        reports.append(
            EvalReport(
                task="sts",
                model=embedder.spec.name,
                config=label,
                metric="cosine_spearman",
                score=metrics["cosine_spearman"],
                n=n,
                seconds=time.perf_counter() - started,
                tokens_per_second=counters.tokens_per_second,
                metrics=metrics,
                details=details,
            )
        )
    return reports
