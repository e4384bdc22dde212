"""``embedlab inspect``: a model's parameters, FLOPs, memory and the shapes of a real forward pass.

>>> from embedlab.inspect import inspect_model
>>> report = inspect_model(batch=2, seq_len=16)
>>> report.anatomy.total
22713216
"""

from __future__ import annotations

from embedlab.inspect.anatomy import ParameterAnatomy, load_module, parameter_anatomy
from embedlab.inspect.flops import ActivationEstimate, FlopEstimate, estimate_activations, estimate_flops
from embedlab.inspect.inspector import InspectReport, inspect_model
from embedlab.inspect.trace import HeadSpec, TraceReport, parse_head, trace_forward

__all__ = [
    "ActivationEstimate",
    "FlopEstimate",
    "HeadSpec",
    "InspectReport",
    "ParameterAnatomy",
    "TraceReport",
    "estimate_activations",
    "estimate_flops",
    "inspect_model",
    "load_module",
    "parameter_anatomy",
    "parse_head",
    "trace_forward",
]
