"""Read texts (and their ids) from .txt, .jsonl, .csv/.tsv and .parquet files.

Every reader returns a :class:`TextTable`: ids and texts in file order. Nothing is dropped silently:
an empty text is an error naming its row, unless the caller asks to skip empties (and the count is
reported).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embedlab.errors import DataFileError

SUPPORTED_INPUTS = (".txt", ".jsonl", ".csv", ".tsv", ".parquet")


@dataclass
class TextTable:
    """Texts read from a file.

    Attributes:
        ids: one id per text (the id field's value, or the 0-based row number as a string).
        texts: the texts, in file order.
        skipped: rows left out because they were empty (only when skipping was asked for).
    """

    ids: list[str]
    texts: list[str]
    skipped: int = 0


def _check_text(value: Any, row: int, field: str | None, path: Path) -> str:
    where = f"{path}: row {row}" + (f", field {field!r}" if field else "")
    if value is None:
        raise DataFileError(f"{where} has no text (null)")
    if not isinstance(value, str):
        raise DataFileError(f"{where} is a {type(value).__name__}, not text")
    return value


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(1-based line number, object) for each non-blank line of a JSON-lines file.

    Raises:
        DataFileError: a line is not valid JSON or not a JSON object. I/O and decoding errors propagate.
    """
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataFileError(f"{path}: line {number} is not valid JSON ({exc.msg})") from exc
            if not isinstance(record, dict):
                raise DataFileError(f"{path}: line {number} is not a JSON object")
            yield number, record


def is_number(value: str) -> bool:
    """Whether ``value`` parses as a float (to tell a header row from a data row)."""
    try:
        float(value)
    except ValueError:
        return False
    return True


def _records(path: Path, suffix: str) -> list[dict[str, Any]]:
    if suffix == ".jsonl":
        return [record for _, record in iter_jsonl(path)]
    if suffix in (".csv", ".tsv"):
        with path.open(encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle, delimiter="\t" if suffix == ".tsv" else ","))
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except Exception as exc:  # pyarrow raises ArrowInvalid and friends
        raise DataFileError(f"{path}: cannot read parquet ({exc})") from exc


def read_texts(
    path: str | Path,
    text_field: str | None = None,
    id_field: str | None = None,
    skip_empty: bool = False,
) -> TextTable:
    """Read the texts of a file.

    Args:
        path: a .txt (one text per line), .jsonl, .csv, .tsv or .parquet file.
        text_field: the column / key holding the text (required for all but .txt; default ``text``).
        id_field: the column / key holding an id; default ``id`` when present, else the row number.
        skip_empty: leave out empty texts (counted in ``skipped``) instead of failing.

    Raises:
        DataFileError: unreadable file, unknown format, missing field, non-text value, empty text
            (unless skipped), or no texts at all.
    """
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in SUPPORTED_INPUTS:
        raise DataFileError(f"{file}: unsupported input type {suffix or '(none)'}; use one of {SUPPORTED_INPUTS}")
    if not file.is_file():
        raise DataFileError(f"{file}: no such file")
    ids: list[str] = []
    texts: list[str] = []
    skipped = 0
    try:
        if suffix == ".txt":
            with file.open(encoding="utf-8") as handle:
                lines = handle.read().splitlines()
            for row, line in enumerate(lines):
                if not line.strip():
                    if skip_empty:
                        skipped += 1
                        continue
                    raise DataFileError(f"{file}: line {row + 1} is empty (pass --skip-empty to leave empty lines out)")
                ids.append(str(row))
                texts.append(line)
        else:
            field = text_field or "text"
            records = _records(file, suffix)
            id_key = id_field or ("id" if records and "id" in records[0] else None)
            for row, record in enumerate(records):
                if field not in record:
                    known = ", ".join(map(str, record)) or "none"
                    raise DataFileError(f"{file}: row {row} has no field {field!r} (fields: {known}); set --text-field")
                text = _check_text(record[field], row, field, file)
                if not text.strip():
                    if skip_empty:
                        skipped += 1
                        continue
                    raise DataFileError(f"{file}: row {row} has an empty {field!r} (pass --skip-empty to leave it out)")
                if id_key is not None and id_key not in record:
                    raise DataFileError(f"{file}: row {row} has no id field {id_key!r}")
                ids.append(str(record[id_key]) if id_key is not None else str(row))
                texts.append(text)
    except UnicodeDecodeError as exc:
        raise DataFileError(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise DataFileError(f"{file}: cannot read ({exc.strerror or exc})") from exc
    if not texts:
        raise DataFileError(f"{file}: holds no texts" + (f" ({skipped} empty rows skipped)" if skipped else ""))
    return TextTable(ids=ids, texts=texts, skipped=skipped)
