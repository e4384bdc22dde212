"""The Pareto front of measured options: score up, tokens/s up, bytes per vector down (pure functions).

An option is on the front when no other option is at least as good on every axis and better on one:
it is a choice some user would make (the best score for its speed and storage). Options without a
score (no quality data) are compared on speed and storage alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Option:
    """One measured choice: a model (and backend) at an output dimension and precision.

    Attributes:
        score: the quality score (higher is better), or None when not measured.
        tokens_per_s: real tokens embedded per second (higher is better).
        bytes_per_vector: storage of one vector (lower is better).
    """

    score: float | None
    tokens_per_s: float
    bytes_per_vector: int


def dominates(a: Option, b: Option) -> bool:
    """Whether ``a`` is at least as good as ``b`` on every axis both have, and strictly better on one."""
    pairs = [(a.tokens_per_s, b.tokens_per_s), (-a.bytes_per_vector, -b.bytes_per_vector)]
    if a.score is not None and b.score is not None:
        pairs.append((a.score, b.score))
    return all(x >= y for x, y in pairs) and any(x > y for x, y in pairs)


def pareto_front(options: Sequence[Option]) -> list[bool]:
    """Per option, whether it is on the Pareto front (no other option dominates it). O(n²), n is small."""
    return [not any(dominates(other, option) for other in options if other is not option) for option in options]
