"""The two stages of a Ray embedding job: read input files into parts (tasks), embed parts (an actor pool).

Both report errors as rows (``error``: the embedlab error class, a tab, the message) so the driver can
re-raise them with their own type (:func:`raise_worker_error`).
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

import embedlab.errors as errors
from embedlab.distributed.shards import part_name, write_part
from embedlab.errors import ClusterError, DataFileError, EmbedlabError
from embedlab.settings import EngineSettings

# -- stage 1: read input files into parts (Ray tasks) -----------------------------------------------


def error_row(part: str, exc: BaseException) -> dict[str, Any]:
    return {"part": part, "ids": [], "texts": [], "done_rows": 0, "error": f"{type(exc).__name__}\t{exc}"}


def read_file_parts(
    row: dict[str, Any],
    *,
    output: str,
    rows_per_part: int,
    text_field: str | None,
    id_field: str | None,
    skip_empty: bool,
) -> list[dict[str, Any]]:
    """Read one input file and cut it into parts; a part already on disk becomes a ``done_rows`` marker."""
    from embedlab.io.readers import read_texts

    path = Path(row["path"])
    index = int(row["file_index"])
    try:
        table = read_texts(path, text_field=text_field, id_field=id_field, skip_empty=skip_empty)
        ids = table.ids
        if row["prefix_ids"]:
            ids = [f"{path.name}:{i}" for i in ids]
        if len(set(ids)) != len(ids):
            seen: set[str] = set()
            duplicate = next(i for i in ids if i in seen or seen.add(i))  # type: ignore[func-returns-value]
            raise DataFileError(f"{path}: id {duplicate!r} occurs more than once; ids must be unique")
    except EmbedlabError as exc:
        return [error_row(part_name(index, 0), exc)]
    except Exception as exc:  # anything else a reader may raise: still a clear error naming the file
        return [error_row(part_name(index, 0), DataFileError(f"{path}: cannot read ({exc})"))]
    rows = []
    for block, start in enumerate(range(0, len(ids), rows_per_part)):
        name = part_name(index, block)
        stop = min(start + rows_per_part, len(ids))
        if (Path(output) / name).exists():
            rows.append({"part": name, "ids": [], "texts": [], "done_rows": stop - start, "error": ""})
        else:
            rows.append(
                {"part": name, "ids": ids[start:stop], "texts": table.texts[start:stop], "done_rows": 0, "error": ""}
            )
    return rows


# -- stage 2: embed and write parts (an actor pool) --------------------------------------------------


class PartEmbedder:
    """A Ray Data actor: loads the model once, then embeds and writes one part per call.

    Args:
        settings: the job's engine settings (model, backend, device, threads, batch tokens, long input...).
        output: the output directory.
        embed_options: embedding options (``prompt``, ``normalize``), resolved once when the model loads.
    """

    def __init__(self, settings: EngineSettings, output: str, embed_options: dict[str, Any]):
        from embedlab.engine.loader import load

        self.output = Path(output)
        self.worker = f"{socket.gethostname()}/{os.getpid()}"
        self.load_error: EmbedlabError | None = None
        try:
            self.embedder = load(settings=settings)
            self.options = self.embedder.resolve(**embed_options)
        except EmbedlabError as exc:
            self.load_error = exc  # reported per part, so the driver raises it with its own type

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        """Embed and write every part of ``batch`` (columns as rows of stage 1); one stats row per part."""
        out: dict[str, list[Any]] = {
            k: [] for k in ("part", "texts", "tokens", "truncated", "seconds", "worker", "done_rows", "error")
        }
        for i, name in enumerate(batch["part"]):
            stats = (0, 0, 0, 0.0)
            error = str(batch["error"][i])
            done_rows = int(batch["done_rows"][i])
            if not error and not done_rows:
                try:
                    stats = self._embed_part(str(name), list(map(str, batch["ids"][i])), list(batch["texts"][i]))
                except EmbedlabError as exc:
                    error = error_row(str(name), exc)["error"]
            for key, value in zip(
                ("part", "texts", "tokens", "truncated", "seconds", "worker", "done_rows", "error"),
                (str(name), *stats, self.worker, done_rows, error),
                strict=True,
            ):
                out[key].append(value)
        return out

    def _embed_part(self, name: str, ids: list[str], texts: list[str]) -> tuple[int, int, int, float]:
        if self.load_error is not None:
            raise self.load_error
        started = time.perf_counter()
        result = self.embedder.embed_resolved([str(t) for t in texts], self.options)
        write_part(self.output / name, ids, result.vectors, result.tokens, result.truncated)
        return len(ids), result.total_tokens, result.n_truncated, time.perf_counter() - started


def raise_worker_error(text: str) -> None:
    """Re-raise an error reported by a task or actor with its own embedlab class (class name, tab, message)."""
    kind, _, message = text.partition("\t")
    error_class = getattr(errors, kind, None)
    if isinstance(error_class, type) and issubclass(error_class, EmbedlabError):
        try:
            raise error_class(message)
        except TypeError:  # a class whose constructor takes other arguments
            pass
    raise ClusterError(f"{kind}: {message}")
