"""``embedlab compare``: choose the model, not just its settings, by measuring candidates side by side.

>>> from embedlab.compare import CompareOptions, compare_models
>>> report = compare_models(CompareOptions(models=["all-MiniLM-L6-v2", "all-mpnet-base-v2"], data=sts_file))
>>> [(r.facts.params, r.score(), r.pareto) for r in report.results]
"""

from __future__ import annotations

from embedlab.compare.facts import ModelFacts, read_facts
from embedlab.compare.pareto import Option, pareto_front
from embedlab.compare.runner import CompareOptions, CompareReport, ModelResult, compare_models

__all__ = [
    "CompareOptions",
    "CompareReport",
    "ModelFacts",
    "ModelResult",
    "Option",
    "compare_models",
    "pareto_front",
    "read_facts",
]
