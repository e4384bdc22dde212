"""The batch job behind ``embedlab embed``: read a file, embed it block by block, write vectors."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embedlab.engine.embedder import Embedder
from embedlab.engine.vector_precision import stored_layout
from embedlab.io.readers import TextTable
from embedlab.io.writers import VectorWriter

log = logging.getLogger(__name__)


@dataclass
class EmbedJobReport:
    """What an embed job did.

    Attributes:
        texts: texts embedded.
        skipped: empty rows left out (only with skip_empty).
        tokens: tokens embedded (special tokens included).
        truncated: texts that lost tokens to truncation.
        padded_tokens: tokens computed on, padding included.
        seconds: wall time of reading, embedding and writing.
        output: the file written.
    """

    texts: int
    skipped: int
    tokens: int
    truncated: int
    padded_tokens: int
    seconds: float
    output: Path

    @property
    def tokens_per_second(self) -> float:
        """Real tokens embedded per second of wall time."""
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """One line for people: texts, tokens, truncated, seconds, tokens/s."""
        skipped = f", {self.skipped} empty skipped" if self.skipped else ""
        return (
            f"embedded {self.texts} texts ({self.tokens} tokens, {self.truncated} truncated{skipped}) "
            f"in {self.seconds:.2f} s: {self.tokens_per_second:,.0f} tokens/s -> {self.output}"
        )


def run_embed_job(
    embedder: Embedder,
    table: TextTable,
    output_path: str | Path,
    *,
    overwrite: bool = False,
    block_size: int = 4096,
    on_progress: Callable[[int, int], None] | None = None,
    on_message: Callable[[str], None] | None = None,
    **embed_options: Any,
) -> EmbedJobReport:
    """Embed every text of ``input_path`` into ``output_path``.

    Args:
        embedder: the loaded model.
        table: the texts and ids (see :func:`embedlab.io.readers.read_texts`).
        output_path: .npy (vectors only, file order), .parquet or .jsonl (id + vector).
        block_size: texts per embedding call; bounds memory besides the texts themselves.
        on_progress: called with (texts done, total texts) after each batch.
        on_message: called with one line for people when the job starts by removing the partial output files
            of crashed runs; without it the line is logged (INFO).
        **embed_options: embedding options (prompt, long_input, dimensions, precision...), resolved once; the file
            stores the vectors in ``precision`` (int8 codes, packed bits...: see ``stored_layout``).
    """
    started = time.perf_counter()
    options = embedder.resolve(**embed_options)  # checked before the output file exists
    width, dtype = stored_layout(options.dimensions, options.precision)
    writer = VectorWriter(output_path, n_rows=len(table.texts), dim=width, overwrite=overwrite, dtype=dtype)
    if writer.stale_removed:
        (on_message or log.info)(writer.stale_removed.summary())
    tokens = truncated = padded = 0
    try:
        for start in range(0, len(table.texts), block_size):
            block = table.texts[start : start + block_size]

            def progress(done: int, offset: int = start) -> None:
                if on_progress is not None:
                    on_progress(offset + done, len(table.texts))

            result = embedder.embed_resolved(block, options, progress)
            writer.write(table.ids[start : start + block_size], result.vectors)
            tokens += result.total_tokens
            truncated += result.n_truncated
            padded += result.padded_tokens
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return EmbedJobReport(
        texts=len(table.texts),
        skipped=table.skipped,
        tokens=tokens,
        truncated=truncated,
        padded_tokens=padded,
        seconds=time.perf_counter() - started,
        output=Path(output_path),
    )
