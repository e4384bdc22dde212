"""int8 / uint8 ranges measured on a calibration file, for the server's ``precision`` extension.

Without a file the engine's default applies: [-1, 1] in every dimension (the range of a normalised
vector; see :mod:`embedlab.engine.vector_precision`). With ``int8_calibration_texts`` the server embeds
the file's texts once at start, keeps their float vectors (full width, not normalised: what the
engine's cache holds), and derives a request's ranges from them for its ``dimensions`` and
``normalize``: the vectors cut to ``dimensions``, re-normalised when normalising (exactly what the
request's own vectors go through), then the min and max of each dimension. Derived ranges are kept
per (dimensions, normalize).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embedlab.arrays import FloatArray
from embedlab.engine.embedder import Embedder
from embedlab.engine.postprocess import postprocess
from embedlab.engine.vector_precision import ranges_of, unit_ranges
from embedlab.errors import ConfigError, DataFileError, InputTooLongError
from embedlab.io.readers import read_texts


@dataclass
class CalibrationRanges:
    """Float vectors of the calibration texts and the ranges derived from them.

    Attributes:
        path: the calibration file.
        vectors: (n_texts, hidden) float32, before truncation and normalisation.
        skipped: blank lines left out of the file.
    """

    path: Path
    vectors: FloatArray
    skipped: int = 0
    _derived: dict[tuple[int, bool], FloatArray] = field(default_factory=dict, repr=False)

    def ranges_for(self, dimensions: int, normalize: bool) -> FloatArray:
        """Per-dimension (min, max) of the calibration vectors as a request gets them: shape (2, dimensions)."""
        key = (dimensions, normalize)
        ranges = self._derived.get(key)
        if ranges is None:
            ranges = ranges_of(postprocess(self.vectors, dimensions, normalize))
            self._derived[key] = ranges
        return ranges

    def describe(self) -> dict[str, Any]:
        """What ``/info`` reports: the file, its texts and blank lines skipped."""
        return {"source": "calibration", "path": str(self.path), "texts": len(self.vectors), "skipped": self.skipped}


def default_ranges_info() -> dict[str, Any]:
    """What ``/info`` reports without a calibration file: the engine's default range, the same in every dimension."""
    low, high = unit_ranges(1)[:, 0].tolist()
    return {"source": "default", "range": [low, high]}


def load_calibration(embedder: Embedder, path: Path) -> CalibrationRanges:
    """Embed the texts of ``path`` once (the server's default prompt and long-input policy) and keep their vectors.

    Args:
        embedder: the served model.
        path: a ``.txt`` file, one text per line (blank lines skipped), or any file ``embed`` reads
            (``.jsonl``, ``.csv``, ``.tsv``, ``.parquet`` with a ``text`` field).

    Raises:
        DataFileError: the file cannot be read or holds fewer than 2 texts.
        ConfigError: a line over the token limit under the ``error`` policy (names the line).
    """
    table = read_texts(path, skip_empty=True)
    if len(table.texts) < 2:
        raise DataFileError(f"{path}: int8 calibration needs at least 2 texts, found {len(table.texts)}")
    try:
        vectors = embedder.embed(table.texts, dimensions=embedder.dim, normalize=False)
    except InputTooLongError as exc:
        raise ConfigError(
            f"{path}: text {exc.index} (id {table.ids[exc.index]}) has {exc.n_tokens} tokens, over the limit of "
            f"{exc.limit}, and the server's long_input is 'error'; shorten it, or serve with truncate or chunk"
        ) from exc
    return CalibrationRanges(Path(path), vectors, table.skipped)
