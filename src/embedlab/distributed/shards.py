"""Input files, output parts and the manifest of a distributed embedding job (pure Python, no Ray).

An output directory holds:

- ``_manifest.json``: the model identity (name, file fingerprint, backend), the settings and embed options
  that change vectors, the input files and the rows per part. A rerun must match it, or it is refused.
- ``part-FFFFF-BBBBBB.parquet``: the vectors of rows ``[B × rows_per_part, (B + 1) × rows_per_part)`` of
  input file number ``F`` (in the manifest's order). Columns: ``id`` string, ``vector``
  fixed_size_list<float32>[dim], ``n_tokens`` int32, ``truncated`` bool. A part is written to a hidden
  temporary name and renamed into place, so a part under its final name is always complete; a rerun
  skips it. Parts are a pure function of (input files, rows per part), so no id is ever written twice.
- ``_SUCCESS.json``: written last, with the totals, once every part exists.
- ``.lock``: held (``flock``) by the running job, so two jobs never write one directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embedlab.arrays import FloatArray
from embedlab.errors import DataFileError, OutputError
from embedlab.io.readers import SUPPORTED_INPUTS

MANIFEST_NAME = "_manifest.json"
SUCCESS_NAME = "_SUCCESS.json"
LOCK_NAME = ".lock"
MANIFEST_FORMAT = 1
TMP_MARK = ".tmp-"


def list_input_files(path: str | Path) -> list[Path]:
    """The input files of a job: ``path`` itself, or the supported files directly in directory ``path``, sorted.

    Hidden files (``.name``) and files of other types in a directory are ignored.

    Raises:
        DataFileError: no such path, an unsupported file type, or a directory without input files.
    """
    root = Path(path)
    if root.is_file():
        if root.suffix.lower() not in SUPPORTED_INPUTS:
            raise DataFileError(f"{root}: unsupported input type {root.suffix or '(none)'}; use {SUPPORTED_INPUTS}")
        return [root]
    if not root.is_dir():
        raise DataFileError(f"{root}: no such file or directory")
    files = sorted(
        p for p in root.iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in SUPPORTED_INPUTS
    )
    if not files:
        raise DataFileError(f"{root}: a directory without input files ({', '.join(SUPPORTED_INPUTS)})")
    return files


def has_id_field(path: Path, id_field: str | None) -> bool:
    """Whether :func:`embedlab.io.readers.read_texts` takes ids from a field (True) or from row numbers (False).

    Row-number ids are only unique within one file, so a directory job prefixes them with the file name.
    """
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return False
    if id_field is not None:
        return True
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return "id" in pq.read_schema(path).names
        with path.open(encoding="utf-8", errors="replace") as handle:
            if suffix == ".jsonl":
                for line in handle:
                    if line.strip():
                        record = json.loads(line)
                        return isinstance(record, dict) and "id" in record
                return False
            header = handle.readline().rstrip("\r\n").split("\t" if suffix == ".tsv" else ",")
            return "id" in header
    except Exception:  # an unreadable file fails with a clear error in the reader itself
        return False


def part_name(file_index: int, block: int) -> str:
    """The final file name of one output part."""
    return f"part-{file_index:05d}-{block:06d}.parquet"


@dataclass(frozen=True)
class JobManifest:
    """What an output directory was made with; a rerun must match every field.

    Attributes:
        model: the model's name.
        fingerprint: digest of the model's files (:func:`embedlab.models.resolve.model_fingerprint`).
        backend: runtime backend (backends differ numerically).
        dim: floats per output vector.
        options: settings and embed options that change vectors (max tokens, long-input policy, prompt...).
        inputs: input file names (relative to the input directory, or the file name), in part order.
        rows_per_part: texts per output part.
    """

    model: str
    fingerprint: str
    backend: str
    dim: int
    options: dict[str, Any]
    inputs: list[str]
    rows_per_part: int

    def to_json(self) -> dict[str, Any]:
        """The manifest as written to ``_manifest.json``."""
        return {
            "format": MANIFEST_FORMAT,
            "model": {"name": self.model, "fingerprint": self.fingerprint, "backend": self.backend, "dim": self.dim},
            "options": self.options,
            "inputs": self.inputs,
            "rows_per_part": self.rows_per_part,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobManifest:
        """Read a manifest dict (raises KeyError / TypeError on a malformed one)."""
        model = data["model"]
        return cls(
            model=str(model["name"]),
            fingerprint=str(model["fingerprint"]),
            backend=str(model["backend"]),
            dim=int(model["dim"]),
            options=dict(data["options"]),
            inputs=[str(x) for x in data["inputs"]],
            rows_per_part=int(data["rows_per_part"]),
        )


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON to a temporary name beside ``path`` and rename it into place."""
    tmp = path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")
    try:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc


def prepare_output_dir(output: Path, manifest: JobManifest, create: bool = True) -> bool:
    """Create ``output`` with ``manifest``, or check an existing one matches it. Returns True when resuming.

    Stale temporary files of a killed run are removed (the caller holds the directory's lock). With
    ``create=False`` it only checks (nothing is created or removed): the early check before Ray starts.

    Raises:
        OutputError: ``output`` is a file; holds parts but no manifest; holds another model's parts, or
            parts made with other options, inputs or rows per part. Nothing is removed or overwritten then.
    """
    if output.exists() and not output.is_dir():
        raise OutputError(f"{output} is a file; --output of a Ray job is a directory")
    if not create and not output.exists():
        return False
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {output}: {exc.strerror or exc}") from exc
    manifest_path = output / MANIFEST_NAME
    parts = sorted(output.glob("part-*.parquet"))
    if not manifest_path.exists():
        if parts:
            raise OutputError(
                f"{output} holds {len(parts)} parquet parts but no {MANIFEST_NAME}; refusing to mix vectors of "
                "unknown origin (use another --output directory)"
            )
        if create:
            write_json_atomic(manifest_path, manifest.to_json())
        return False
    try:
        found = JobManifest.from_json(json.loads(manifest_path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise OutputError(
            f"{manifest_path} is unreadable or malformed ({exc}); use another --output directory"
        ) from exc
    if (found.model, found.fingerprint, found.backend) != (manifest.model, manifest.fingerprint, manifest.backend):
        raise OutputError(
            f"{output} holds vectors of another model ({found.model}, files {found.fingerprint[:12]}, "
            f"{found.backend} backend), not {manifest.model} (files {manifest.fingerprint[:12]}, "
            f"{manifest.backend}); nothing was overwritten: use another --output directory"
        )
    for what, old, new in (
        ("options", found.options, manifest.options),
        ("dimensions", found.dim, manifest.dim),
        ("input files", found.inputs, manifest.inputs),
        ("rows per part", found.rows_per_part, manifest.rows_per_part),
    ):
        if old != new:
            raise OutputError(
                f"{output} was made with other {what} ({old!r}, now {new!r}); resuming would mix them: "
                "use another --output directory"
            )
    if create:
        for stale in output.glob(f".*{TMP_MARK}*"):
            stale.unlink(missing_ok=True)
    return True


@contextlib.contextmanager
def output_lock(output: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``output/.lock`` (local filesystems; a shared filesystem may not honour it).

    Raises:
        OutputError: another job holds it.
    """
    output.mkdir(parents=True, exist_ok=True)
    handle = (output / LOCK_NAME).open("a")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise OutputError(
                f"another embedlab job is writing {output}; wait for it or use another directory"
            ) from exc
        yield
    finally:
        handle.close()


def write_part(
    path: Path,
    ids: list[str],
    vectors: FloatArray,
    n_tokens: list[int],
    truncated: list[bool],
) -> None:
    """Write one part atomically: a hidden temporary file in the same directory, fsync, then rename.

    Args:
        path: the final part file.
        ids: (n,) ids; vectors: (n, dim) float32; n_tokens: (n,) tokens embedded; truncated: (n,) flags.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    dim = vectors.shape[1]
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
    table = pa.table(
        {
            "id": pa.array(ids, pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(flat, dim),
            "n_tokens": pa.array(n_tokens, pa.int32()),
            "truncated": pa.array(truncated, pa.bool_()),
        }
    )
    tmp = path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}-{os.urandom(4).hex()}")
    try:
        pq.write_table(table, tmp)
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc


def read_parts(output: str | Path) -> tuple[list[str], FloatArray]:
    """All ids and vectors (n, dim) float32 of a finished output directory, in part order (for checks and loading)."""
    import pyarrow.parquet as pq

    ids: list[str] = []
    blocks: list[FloatArray] = []
    for part in sorted(Path(output).glob("part-*.parquet")):
        table = pq.read_table(part)
        ids.extend(table.column("id").to_pylist())
        column = table.column("vector").combine_chunks()
        blocks.append(column.flatten().to_numpy().reshape(len(table), column.type.list_size).astype(np.float32))
    if not blocks:
        return ids, np.zeros((0, 0), dtype=np.float32)
    return ids, np.concatenate(blocks)
