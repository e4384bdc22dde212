"""Write vectors (with ids) to .npy, .parquet or .jsonl, block by block, atomically.

A writer writes to a temporary file beside the target (``.NAME.partial-PID``) and renames it into place on
``close()``, so an interrupted run never leaves a half-written file under the final name. A run killed
outright (SIGKILL) leaves its partial behind; the next writer of the same target removes it when it starts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from embedlab.errors import OutputError
from embedlab.partials import RemovedPartials, partial_path, remove_stale_partials

SUPPORTED_OUTPUTS = (".npy", ".parquet", ".jsonl")


def check_output_path(path: str | Path, overwrite: bool = False) -> Path:
    """Fail early, before any work, if ``path`` cannot take the output.

    Raises:
        OutputError: unsupported suffix, existing file without ``overwrite``, or missing directory.
    """
    file = Path(path)
    if file.suffix.lower() not in SUPPORTED_OUTPUTS:
        raise OutputError(f"{file}: unsupported output type {file.suffix or '(none)'}; use {SUPPORTED_OUTPUTS}")
    if file.exists() and not overwrite:
        raise OutputError(f"{file} already exists; pass --overwrite to replace it")
    if not file.parent.is_dir():
        raise OutputError(f"{file.parent} is not a directory")
    return file


class VectorWriter:
    """Streams (ids, vectors) blocks to one output file.

    Args:
        path: target file; its suffix picks the format.
        n_rows: total rows that will be written (the .npy header needs it up front).
        dim: values per stored vector (``ceil(d / 8)`` bytes for packed bits).
        dtype: the stored values' type: float32 (default), float16, int8 or uint8 (see
            :func:`~embedlab.engine.vector_precision.stored_layout`); .npy and .parquet keep it, .jsonl writes
            floats or integers.
        overwrite: replace an existing file; otherwise an existing file is an error.

    Attributes:
        stale_removed: the partials of ``path`` left by crashed writers, removed when this writer started.
    """

    def __init__(
        self, path: str | Path, n_rows: int, dim: int, overwrite: bool = False, dtype: npt.DTypeLike = np.float32
    ):
        self.path = Path(path)
        self.format = self.path.suffix.lower()
        if self.format not in SUPPORTED_OUTPUTS:
            raise OutputError(
                f"{self.path}: unsupported output type {self.format or '(none)'}; use {SUPPORTED_OUTPUTS}"
            )
        if self.path.exists() and not overwrite:
            raise OutputError(f"{self.path} already exists; pass --overwrite to replace it")
        if not self.path.parent.is_dir():
            raise OutputError(f"{self.path.parent} is not a directory")
        self.dim = dim
        self.dtype = np.dtype(dtype)
        self.n_rows = n_rows
        self._row = 0
        self.stale_removed: RemovedPartials = remove_stale_partials(self.path.parent, self.path.name)
        self._tmp = partial_path(self.path)
        self._handle: Any = None
        try:
            if self.format == ".npy":
                self._handle = np.lib.format.open_memmap(self._tmp, mode="w+", dtype=self.dtype, shape=(n_rows, dim))
            elif self.format == ".jsonl":
                self._handle = self._tmp.open("w", encoding="utf-8")
            else:
                import pyarrow as pa
                import pyarrow.parquet as pq

                value_type = pa.from_numpy_dtype(self.dtype)
                self._schema = pa.schema([("id", pa.string()), ("vector", pa.list_(value_type, dim))])
                self._handle = pq.ParquetWriter(self._tmp, self._schema)
        except OSError as exc:
            raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from exc

    def write(self, ids: list[str], vectors: npt.NDArray[Any]) -> None:
        """Append a block: ``ids`` (n,) and ``vectors`` (n, dim) of the writer's dtype."""
        n = len(ids)
        if vectors.shape != (n, self.dim) or vectors.dtype != self.dtype:
            raise OutputError(
                f"block {vectors.shape} {vectors.dtype} does not match ({n}, {self.dim}) {self.dtype} of {self.path}"
            )
        try:
            if self.format == ".npy":
                self._handle[self._row : self._row + n] = vectors
            elif self.format == ".jsonl":
                for row_id, vector in zip(ids, vectors.tolist(), strict=True):
                    self._handle.write(json.dumps({"id": row_id, "embedding": vector}) + "\n")
            else:
                import pyarrow as pa

                flat = pa.array(np.ascontiguousarray(vectors).reshape(-1))
                column = pa.FixedSizeListArray.from_arrays(flat, self.dim)
                self._handle.write_table(
                    pa.Table.from_arrays([pa.array(ids, pa.string()), column], schema=self._schema)
                )
        except OSError as exc:
            raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from exc
        self._row += n

    def close(self) -> None:
        """Finish the file and move it into place. Raises if fewer rows were written than promised."""
        if self.format == ".npy":
            self._handle.flush()
            del self._handle
        else:
            self._handle.close()
        if self._row != self.n_rows:
            self._tmp.unlink(missing_ok=True)
            raise OutputError(f"{self.path}: wrote {self._row} rows, expected {self.n_rows}")
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        """Drop the partial file (after an error or Ctrl-C)."""
        try:
            if self.format != ".npy" and self._handle is not None:
                self._handle.close()
        finally:
            self._tmp.unlink(missing_ok=True)
