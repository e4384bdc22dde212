"""Compare two saved ``embedlab bench`` results point by point (two machines, two versions, two settings).

Points are matched by their key (model, backend, batch, sequence length or data file name, threads).
Ratios are B over A for throughput (above 1: B is faster) and A over B for latency (above 1: B answers
faster), so every ratio reads the same way: bigger is better for B.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embedlab.bench.sweeps import SCHEMA
from embedlab.errors import DataFileError

_REQUIRED = ("key", "texts_per_s", "real_tokens_per_s", "latency_ms")


def load_result(path: str | Path) -> dict[str, Any]:
    """Read a result file written by ``embedlab bench --output``.

    Raises:
        DataFileError: unreadable, not JSON, not a bench result, or a point missing a field.
    """
    file = Path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataFileError(f"cannot read bench result {file}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise DataFileError(f"{file} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise DataFileError(f"{file} is not an embedlab bench result (expected schema {SCHEMA!r})")
    points = data.get("points")
    if not isinstance(points, list):
        raise DataFileError(f"{file}: 'points' must be a list")
    for index, point in enumerate(points):
        missing = [k for k in _REQUIRED if not isinstance(point, dict) or k not in point]
        if missing:
            raise DataFileError(f"{file}: point {index} lacks {', '.join(missing)}")
    return data


@dataclass(frozen=True)
class PointComparison:
    """One point present in both results.

    Attributes:
        key: the point's key.
        a_tokens_per_s, b_tokens_per_s: median real tokens/s of A and B.
        throughput_ratio: B / A of real tokens/s (above 1: B faster).
        a_p50_ms, b_p50_ms: median batch latency of A and B.
        latency_ratio: A / B of p50 latency (above 1: B faster).
    """

    key: str
    a_tokens_per_s: float
    b_tokens_per_s: float
    throughput_ratio: float
    a_p50_ms: float
    b_p50_ms: float
    latency_ratio: float


@dataclass(frozen=True)
class Comparison:
    """All matched points plus the keys found in only one file."""

    points: list[PointComparison]
    only_a: list[str]
    only_b: list[str]

    @property
    def geometric_mean_throughput(self) -> float | None:
        """Geometric mean of the throughput ratios (None when no point matched)."""
        if not self.points:
            return None
        import math

        return math.exp(sum(math.log(p.throughput_ratio) for p in self.points) / len(self.points))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "points": [p.__dict__ for p in self.points],
            "only_a": self.only_a,
            "only_b": self.only_b,
            "geometric_mean_throughput_ratio": self.geometric_mean_throughput,
        }


def compare_results(a: dict[str, Any], b: dict[str, Any]) -> Comparison:
    """Match the points of two results by key and compute the ratios (see the module docstring)."""
    a_points = {p["key"]: p for p in a["points"]}
    b_points = {p["key"]: p for p in b["points"]}
    rows = []
    for key, pa in a_points.items():
        pb = b_points.get(key)
        if pb is None:
            continue
        ta, tb = pa["real_tokens_per_s"]["median"], pb["real_tokens_per_s"]["median"]
        la, lb = pa["latency_ms"]["p50"], pb["latency_ms"]["p50"]
        rows.append(
            PointComparison(
                key=key,
                a_tokens_per_s=ta,
                b_tokens_per_s=tb,
                throughput_ratio=tb / ta if ta > 0 else float("nan"),
                a_p50_ms=la,
                b_p50_ms=lb,
                latency_ratio=la / lb if lb > 0 else float("nan"),
            )
        )
    return Comparison(
        points=rows,
        only_a=[k for k in a_points if k not in b_points],
        only_b=[k for k in b_points if k not in a_points],
    )
