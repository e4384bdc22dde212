"""``inspect_model``: everything ``embedlab inspect`` reports about one model, as one object."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from embedlab.errors import ConfigError
from embedlab.inspect.anatomy import ParameterAnatomy, load_module, parameter_anatomy
from embedlab.inspect.flops import (
    ActivationEstimate,
    FlopEstimate,
    ModelDims,
    estimate_activations,
    estimate_flops,
    linear_flops,
    model_dims,
)
from embedlab.inspect.trace import HeadSpec, TraceReport, check_shape, make_batch, parse_head, trace_forward
from embedlab.models.spec import ModelSpec

# Sequence lengths of the FLOPs-by-length table (those up to the model's position limit are shown).
LENGTH_GRID: tuple[int, ...] = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)


@dataclass
class InspectReport:
    """What ``embedlab inspect`` found.

    Attributes:
        spec: the model's spec.
        facts: architecture facts, label → value, in display order.
        dims: the shape numbers FLOPs and memory depend on.
        anatomy: parameter anatomy of the embedding model (``AutoModel``, what ``embed`` runs).
        flops: FLOPs of the traced (B, L) pass, estimated.
        flops_by_length: FLOPs of one sequence at each length of ``LENGTH_GRID`` within the limit.
        activations: activation memory estimate at (B, L).
        trace: the real traced pass (shapes, measured peak memory, counted FLOPs).
        head: the task head traced, if any, and ``head_anatomy`` of the model with it.
        auto_backend: what ``backend="auto"`` runs for this model on this machine and why (the cached
            calibration's summary), or None when it has not been calibrated here yet.
    """

    spec: ModelSpec
    facts: dict[str, Any]
    dims: ModelDims
    anatomy: ParameterAnatomy
    flops: FlopEstimate
    flops_by_length: list[FlopEstimate]
    activations: ActivationEstimate
    trace: TraceReport
    head: HeadSpec | None = None
    head_anatomy: ParameterAnatomy | None = None
    notes: list[str] = field(default_factory=list)
    auto_backend: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The whole report as JSON-ready data (what ``--json`` prints)."""
        return {
            "model": self.spec.name,
            "facts": self.facts,
            "dims": {**self.dims.__dict__, "attention_width": self.dims.attention_width},
            "parameters": self.anatomy.to_dict(),
            "flops": self.flops.to_dict(),
            "flops_by_length": [f.to_dict() for f in self.flops_by_length],
            "activations": self.activations.to_dict(),
            "trace": self.trace.to_dict(),
            "head": str(self.head) if self.head else None,
            "head_parameters": self.head_anatomy.to_dict() if self.head_anatomy else None,
            "notes": self.notes,
            "auto_backend": self.auto_backend,
        }


def _tokenizer_type(tokenizer: Any) -> str:
    return type(tokenizer.model).__name__


def _architecture_facts(spec: ModelSpec, module: Any, dims: ModelDims, tokenizer: Any) -> dict[str, Any]:
    config = module.config
    weights = next(
        (spec.path / n for n in ("model.safetensors", "pytorch_model.bin") if (spec.path / n).is_file()), None
    )
    return {
        "model": spec.name,
        "source": spec.source,
        "architecture": type(module).__name__,
        "model type": spec.model_type,
        "layers N": dims.layers,
        "attention heads H": dims.heads,
        "head dim d": dims.head_dim,
        "hidden D": dims.hidden,
        "intermediate I": dims.intermediate,
        "vocab V": dims.vocab,
        "max position embeddings": dims.max_positions,
        "max tokens used (sentence-transformers max_seq_length)": spec.max_tokens,
        "output dimension": spec.dim,
        "pooling": spec.pooling,
        "normalised": spec.normalize,
        "tokenizer": f"{_tokenizer_type(tokenizer)} ({tokenizer.get_vocab_size()} entries)",
        "special tokens per text": tokenizer.num_special_tokens_to_add(False),
        "activation": str(getattr(config, "hidden_act", "")),
        "weights dtype on disk": str(getattr(config, "dtype", None) or "float32").removeprefix("torch."),
        "weights file": f"{weights.name} ({weights.stat().st_size:,} bytes)" if weights else "-",
    }


def inspect_model(
    model: str | None = None,
    *,
    batch: int = 1,
    seq_len: int | None = None,
    head: str | HeadSpec | None = None,
    threads: int | None = None,
    count_flops: bool = True,
) -> InspectReport:
    """Inspect a model: parameter anatomy, architecture facts, FLOPs, memory and a traced real pass.

    Args:
        model: name or path (None: the default model).
        batch: B of the traced pass (≥ 1).
        seq_len: L of the traced pass (default: the model's max tokens; at most max_position_embeddings).
        head: ``classification:C`` / ``token-classification:C`` (or a :class:`HeadSpec`) to also trace
            a task head built from the same weights (random head weights).
        threads: CPU threads for the pass (default: the physical cores available).
        count_flops: also count the FLOPs torch executes (a second, identical pass).

    Raises:
        ConfigError: a bad head spec, B or L ≤ 0, or L above the model's limit.
        ModelNotFoundError, ModelLoadError: the model cannot be found or loaded.
    """
    import torch

    from embedlab.cpu import available_cores
    from embedlab.engine.calibration import cached_calibration
    from embedlab.engine.loader import load_spec
    from embedlab.engine.tokenize import find_pad_id, load_tokenizer

    head_spec = parse_head(head) if isinstance(head, str) else head
    if not isinstance(batch, int) or (seq_len is not None and not isinstance(seq_len, int)):
        raise ConfigError("batch and seq_len must be whole numbers")
    spec = load_spec(model)
    tokenizer = load_tokenizer(spec)
    length = spec.max_tokens if seq_len is None else seq_len
    check_shape(spec, batch, length, tokenizer.num_special_tokens_to_add(False))
    torch.set_num_threads(threads or available_cores())

    base = load_module(spec)
    anatomy = parameter_anatomy(base)
    dims = model_dims(base.config)
    encoded = make_batch(tokenizer, find_pad_id(spec, tokenizer), batch, length)
    head_anatomy: ParameterAnatomy | None = None
    if head_spec is None:
        traced_module = base
        linear = linear_flops(base)
    else:
        traced_module = load_module(spec, head=head_spec)
        head_anatomy = parameter_anatomy(traced_module)
        linear = linear_flops(traced_module, token_level_head=head_spec.kind == "token-classification")
    trace = trace_forward(traced_module, spec, encoded, head=head_spec, count_flops=count_flops)
    flops = estimate_flops(dims, linear, batch, length)
    if trace.flops_counted is not None and trace.flops_counted != flops.total:
        notes = [
            f"the FLOP formula gives {flops.total:,} but torch counted {trace.flops_counted:,}: this architecture has "
            "matrix products the formula does not model"
        ]
    else:
        notes = []
    if length > spec.max_tokens:
        notes.append(
            f"L={length} is above the {spec.max_tokens} tokens `embed` uses (sentence-transformers max_seq_length); "
            f"the architecture allows up to {spec.max_position_embeddings}"
        )
    by_length = [estimate_flops(dims, linear, 1, n) for n in LENGTH_GRID if n <= spec.max_position_embeddings]
    calibration = cached_calibration(spec, "cpu", threads)
    return InspectReport(
        spec=spec,
        facts=_architecture_facts(spec, base, dims, tokenizer),
        dims=dims,
        anatomy=anatomy,
        flops=flops,
        flops_by_length=by_length,
        activations=estimate_activations(dims, batch, length),
        trace=trace,
        head=head_spec,
        head_anatomy=head_anatomy,
        notes=notes,
        auto_backend=calibration.summary() if calibration is not None else None,
    )
