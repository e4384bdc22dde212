"""Quality evaluation the way MTEB measures it: STS correlation and BEIR retrieval, across configurations.

>>> import embedlab
>>> from embedlab.eval import evaluate_sts, load_sts
>>> report = evaluate_sts(embedlab.load(), load_sts("../shared/data/stsbenchmark/sts-test.csv"))
>>> round(report.score, 2)   # Spearman of cosine similarity vs gold
0.82
>>> rows = evaluate_sts_by_precision(embedlab.load(), load_sts("../shared/data/stsbenchmark/sts-test.csv"),
...                                  precisions=["float32", "int8", "binary"])
>>> [(r.config, r.details["bytes_per_vector"]) for r in rows]
[('precision=float32', 1536), ('precision=int8', 384), ('precision=binary', 48)]
"""

from __future__ import annotations

from embedlab.eval.beir import RetrievalData, load_beir
from embedlab.eval.compare import CONFIG_KEYS, compare, config_label, parse_config
from embedlab.eval.report import EvalReport, comparison_to_dict, report_table
from embedlab.eval.retrieval import evaluate_retrieval, evaluate_retrieval_by_precision
from embedlab.eval.sts import StsData, evaluate_sts, evaluate_sts_by_precision, load_sts

__all__ = [
    "CONFIG_KEYS",
    "EvalReport",
    "RetrievalData",
    "StsData",
    "compare",
    "comparison_to_dict",
    "config_label",
    "evaluate_retrieval",
    "evaluate_retrieval_by_precision",
    "evaluate_sts",
    "evaluate_sts_by_precision",
    "load_beir",
    "load_sts",
    "parse_config",
    "report_table",
]
