"""Model shape vs speed: random-weight BERTs of chosen shapes, FLOPs per token, the machine's matmul peak.

Speed depends on the shape of a model, not its weights, so random weights measure it faithfully.
Each synthetic model borrows a real tokenizer (by default the packaged model's), so its texts tokenise
exactly like real traffic.

FLOPs use the conventions of :mod:`embedlab.inspect.flops` (2 FLOPs per multiply-add, matrix products
only): per token ``linear + N·4·L·A`` at sequence length L, plus a per-sequence pooler. When that module
is missing, :func:`model_flops` falls back to the same BERT formula written out here and says so in
``FlopModel.source``.
"""

from __future__ import annotations

import itertools
import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from embedlab.errors import ConfigError, ModelLoadError
from embedlab.models.spec import ModelSpec

_TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")
_SHAPE_KEYS = ("hidden", "layers", "heads", "intermediate")


@dataclass(frozen=True)
class SyntheticShape:
    """The shape of a random-weight BERT.

    Attributes:
        hidden: hidden size D (= output dimension with mean pooling).
        layers: encoder layers N.
        heads: attention heads (D must divide by it); default D / 64, at least 1.
        intermediate: feed-forward width I; default 4·D.
    """

    hidden: int
    layers: int
    heads: int
    intermediate: int

    @classmethod
    def of(cls, hidden: int, layers: int, heads: int | None = None, intermediate: int | None = None) -> SyntheticShape:
        """A checked shape with BERT's default heads (D/64) and intermediate (4·D) filled in.

        Raises:
            ConfigError: a size below 1, or ``hidden`` not divisible by ``heads``.
        """
        heads = heads if heads is not None else max(1, hidden // 64)
        intermediate = intermediate if intermediate is not None else 4 * hidden
        for name, value in (("hidden", hidden), ("layers", layers), ("heads", heads), ("intermediate", intermediate)):
            if value < 1:
                raise ConfigError(f"synthetic model {name} must be at least 1, got {value}")
        if hidden % heads:
            raise ConfigError(f"synthetic model hidden={hidden} is not divisible by heads={heads}")
        return cls(hidden=hidden, layers=layers, heads=heads, intermediate=intermediate)

    @property
    def label(self) -> str:
        """A short name such as ``synthetic-h384-l6``."""
        return f"synthetic-h{self.hidden}-l{self.layers}-a{self.heads}-i{self.intermediate}"

    @property
    def encoder_params(self) -> int:
        """Weights and biases of the encoder layers (embeddings excluded)."""
        d, i = self.hidden, self.intermediate
        per_layer = 4 * (d * d + d) + (d * i + i) + (i * d + d) + 4 * d  # attention, FFN, two layer norms
        return self.layers * per_layer


def parse_synthetic(text: str) -> list[SyntheticShape]:
    """Shapes from ``"hidden=128,384,768 layers=6"``: every combination of the listed values.

    Keys: ``hidden`` and ``layers`` (required), ``heads`` and ``intermediate`` (optional), separated by
    spaces or semicolons; values are comma-separated positive integers.

    Raises:
        ConfigError: unknown key, missing key, or a value that is not a positive integer.
    """
    values: dict[str, list[int]] = {}
    for part in text.replace(";", " ").split():
        key, sep, raw = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in _SHAPE_KEYS:
            raise ConfigError(f"--synthetic: expected key=v1,v2 with key one of {', '.join(_SHAPE_KEYS)}, got {part!r}")
        try:
            numbers = [int(v) for v in raw.split(",") if v.strip()]
        except ValueError as exc:
            raise ConfigError(f"--synthetic: {key} values must be integers, got {raw!r}") from exc
        if not numbers or min(numbers) < 1:
            raise ConfigError(f"--synthetic: {key} values must be positive integers, got {raw!r}")
        values[key] = numbers
    missing = [k for k in ("hidden", "layers") if k not in values]
    if missing:
        raise ConfigError(f"--synthetic needs {' and '.join(missing)}, e.g. 'hidden=128,384,768 layers=6'")
    shapes = []
    for hidden, layers, heads, inter in itertools.product(
        values["hidden"], values["layers"], values.get("heads", [0]), values.get("intermediate", [0])
    ):
        shapes.append(SyntheticShape.of(hidden, layers, heads or None, inter or None))
    return list(dict.fromkeys(shapes))


def build_synthetic_bert(
    directory: Path,
    shape: SyntheticShape,
    *,
    tokenizer_dir: Path | None = None,
    max_positions: int = 512,
    max_seq_length: int = 256,
    seed: int = 0,
) -> Path:
    """Save a random-weight BertModel of ``shape`` in the sentence-transformers layout; return ``directory``.

    Mean pooling and L2 normalisation, like all-MiniLM-L6-v2. The tokenizer files are copied from
    ``tokenizer_dir`` (default: the packaged default model), so the vocabulary size matches it.

    Raises:
        ConfigError: ``max_seq_length`` above ``max_positions``.
        ModelLoadError: the tokenizer directory has no ``tokenizer.json``.
    """
    import torch
    from tokenizers import Tokenizer
    from transformers import BertConfig, BertModel
    from transformers.utils import logging as hf_logging

    if max_seq_length > max_positions:
        raise ConfigError(f"max_seq_length {max_seq_length} is above max_positions {max_positions}")
    if tokenizer_dir is None:
        from embedlab.models.resolve import resolve_model
        from embedlab.models.spec import read_spec

        tokenizer_dir = read_spec(resolve_model(None)).path
    source = Path(tokenizer_dir)
    if not (source / "tokenizer.json").is_file():
        raise ModelLoadError(f"{source} has no tokenizer.json to give the synthetic model")
    directory.mkdir(parents=True, exist_ok=True)
    for name in _TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copyfile(source / name, directory / name)
    vocab_size = Tokenizer.from_file(str(directory / "tokenizer.json")).get_vocab_size()
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=shape.hidden,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        intermediate_size=shape.intermediate,
        max_position_embeddings=max_positions,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    hf_logging.disable_progress_bar()
    BertModel(config).eval().save_pretrained(str(directory))
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (directory / "modules.json").write_text(json.dumps(modules))
    (directory / "1_Pooling").mkdir(exist_ok=True)
    (directory / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": shape.hidden, "pooling_mode_mean_tokens": True})
    )
    (directory / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": max_seq_length, "do_lower_case": False})
    )
    (directory / "config_sentence_transformers.json").write_text(json.dumps({"prompts": {}}))
    return directory


@dataclass(frozen=True)
class FlopModel:
    """FLOPs of a model's forward pass as a function of the batch shape.

    Attributes:
        linear_per_token: FLOPs of the linear layers per token (independent of L).
        per_sequence: FLOPs run once per sequence (the pooler).
        layers: encoder layers N.
        attention_width: A = heads × head dim.
        params: parameters of the whole model (embeddings included).
        source: ``embedlab.inspect.flops`` or ``local`` (the fallback formula of this module).
    """

    linear_per_token: int
    per_sequence: int
    layers: int
    attention_width: int
    params: int
    source: str

    def per_token(self, seq_len: int) -> float:
        """FLOPs per token of a sequence of ``seq_len`` tokens (attention term included)."""
        return self.batch_flops(1, seq_len) / seq_len

    def batch_flops(self, batch: int, seq_len: int) -> int:
        """FLOPs of one forward pass over a padded (batch, seq_len) batch."""
        attention = self.layers * 4 * seq_len * self.attention_width
        return batch * (seq_len * (self.linear_per_token + attention) + self.per_sequence)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


def model_flops(spec: ModelSpec) -> FlopModel:
    """The :class:`FlopModel` of ``spec``: from :mod:`embedlab.inspect.flops` when present, else local.

    The model is built on PyTorch's ``meta`` device (no memory, no weights read) to count its layers.
    """
    import torch
    from transformers import AutoConfig, AutoModel

    try:
        config = AutoConfig.from_pretrained(str(spec.path))
        with torch.device("meta"):
            module = AutoModel.from_config(config)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(f"cannot read the architecture of {spec.path}: {exc}") from exc
    params = int(sum(p.numel() for p in module.parameters()))
    try:
        from embedlab.inspect import flops as inspect_flops
    except ImportError:  # the inspect tool is optional here: fall back to the written-out formula
        return _local_flops(spec, params)
    dims = inspect_flops.model_dims(config)
    linear = inspect_flops.linear_flops(module)
    return FlopModel(
        linear.per_token, linear.per_sequence, dims.layers, dims.attention_width, params, "embedlab.inspect.flops"
    )


def _local_flops(spec: ModelSpec, params: int) -> FlopModel:
    """BERT's formula: per layer 2·(4·D² + 2·D·I) linear FLOPs per token; the pooler 2·D² per sequence."""
    d, i, n = spec.hidden_size, spec.intermediate_size or 4 * spec.hidden_size, spec.num_layers
    return FlopModel(n * 2 * (4 * d * d + 2 * d * i), 2 * d * d, n, d, params, "local")


def measure_matmul_peak(threads: int, size: int = 1024, seconds: float = 0.4, device: str = "cpu") -> float:
    """The machine's fp32 matrix-multiply rate with PyTorch on ``threads`` threads, in GFLOP/s.

    Square ``size``×``size`` products (2·size³ FLOPs each) repeat for about ``seconds``; the best of
    three windows is reported, so a brief disturbance does not lower it. The previous thread count is
    restored afterwards. On ``cuda`` devices the GPU is measured (threads do not matter there).

    Raises:
        ConfigError: ``threads`` or ``size`` below 1.
    """
    import torch

    if threads < 1 or size < 1:
        raise ConfigError(f"matmul peak needs threads and size ≥ 1, got {threads} and {size}")
    on_gpu = device.startswith("cuda")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)

    def sync() -> None:
        if on_gpu:
            torch.cuda.synchronize(device)

    try:
        a = torch.randn(size, size, dtype=torch.float32, device=device)
        b = torch.randn(size, size, dtype=torch.float32, device=device)
        out = torch.empty(size, size, dtype=torch.float32, device=device)
        for _ in range(3):
            torch.mm(a, b, out=out)
        sync()
        best = 0.0
        for _ in range(3):
            count = 0
            t0 = time.perf_counter()
            while True:
                torch.mm(a, b, out=out)
                count += 1
                if count % 8 == 0 or not on_gpu:
                    sync()
                    elapsed = time.perf_counter() - t0
                    if elapsed >= seconds / 3:
                        break
            best = max(best, 2.0 * size**3 * count / elapsed / 1e9)
        return best
    finally:
        torch.set_num_threads(before)
