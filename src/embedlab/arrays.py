"""The array types every module names: one alias per dtype, so a signature says what it holds."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

#: float32 arrays: token vectors (batch, seq_len, hidden), pooled and output vectors (n, dim).
FloatArray = npt.NDArray[np.float32]
#: float64 arrays: scores and metrics, where the extra precision keeps sums stable.
Float64Array = npt.NDArray[np.float64]
#: int64 arrays: token ids, attention masks, lengths.
IntArray = npt.NDArray[np.int64]
