"""``embedlab plan``: settings chosen from measurements on the user's own data and hardware.

>>> from pathlib import Path
>>> from embedlab.plan import PlanOptions, make_plan
>>> from embedlab.settings import EngineSettings
>>> report = make_plan(EngineSettings(), PlanOptions(data=Path("texts.txt"), memory_budget=2 * 2**30))
>>> report.settings          # EngineSettings fields: what settings.json holds
"""

from __future__ import annotations

from embedlab.plan.batch import BatchChoice, BatchMeasurement, choose_batch, measure_batch_sizes, parse_size
from embedlab.plan.lengths import LengthStats, MaxTokensAdvice, length_stats, recommend_max_tokens
from embedlab.plan.planner import PlanOptions, PlanReport, make_plan

__all__ = [
    "BatchChoice",
    "BatchMeasurement",
    "LengthStats",
    "MaxTokensAdvice",
    "PlanOptions",
    "PlanReport",
    "choose_batch",
    "length_stats",
    "make_plan",
    "measure_batch_sizes",
    "parse_size",
    "recommend_max_tokens",
]
