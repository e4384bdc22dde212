"""What a model IS, read from its files without loading its weights: parameters, shape, size on disk.

Parameters are counted on the real transformers module built on PyTorch's ``meta`` device (shapes
only, no memory, about a second even for large models), bucketed by
:func:`~embedlab.inspect.anatomy.parameter_anatomy`, so the counts are exactly those of
``AutoModel.from_pretrained`` (what ``embed`` runs): all-MiniLM-L6-v2 22,713,216; all-mpnet-base-v2
109,486,464.

Matryoshka sizes: a model trained with sentence-transformers' ``MatryoshkaLoss`` says so on its model
card (``README.md``: ``matryoshka_dims: [768, 512, …]``); those sizes, below the full dimension, are the
ones its authors vouch for. Other models are measured at their full dimension (and at any size asked for).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from embedlab.errors import ModelLoadError
from embedlab.models.resolve import model_files
from embedlab.models.spec import ModelSpec

_MATRYOSHKA = re.compile(r"matryoshka_dims[\"']?\s*[:=]\s*\[([0-9,\s]+)\]")


@dataclass(frozen=True)
class ModelFacts:
    """Static facts of one model.

    Attributes:
        name: the resolved model name.
        params: parameters of the embedding model (``AutoModel``), all of them.
        embedding_params: the word-embedding table, V × D.
        encoder_params: the transformer layers (attention, feed-forward, their norms), all layers.
        layers, hidden, dim, max_tokens, vocab_size: architecture facts (dim = output values per vector).
        model_type: the transformers ``model_type`` (``bert``, ``mpnet``...).
        disk_bytes: the files a load reads (config, tokenizer, weights), bytes.
        matryoshka_dims: output sizes below ``dim`` the model card declares (descending), else empty.
    """

    name: str
    params: int
    embedding_params: int
    encoder_params: int
    layers: int
    hidden: int
    dim: int
    max_tokens: int
    vocab_size: int
    model_type: str
    disk_bytes: int
    matryoshka_dims: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {**asdict(self), "matryoshka_dims": list(self.matryoshka_dims)}


def matryoshka_dims(path: Path, dim: int) -> tuple[int, ...]:
    """The Matryoshka sizes below ``dim`` that the model card in ``path`` declares, descending; () if none."""
    card = path / "README.md"
    try:
        text = card.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ()
    sizes: set[int] = set()
    for match in _MATRYOSHKA.finditer(text):
        sizes.update(int(v) for v in re.findall(r"\d+", match.group(1)))
    return tuple(sorted((s for s in sizes if 0 < s < dim), reverse=True))


def parameter_counts(spec: ModelSpec) -> tuple[int, int, int]:
    """(total, word-embedding table, encoder layers) parameters of ``spec``'s ``AutoModel``, from shapes only.

    Raises:
        ModelLoadError: transformers cannot build the architecture from the config.
    """
    import torch
    from transformers import AutoConfig, AutoModel

    from embedlab.inspect.anatomy import parameter_anatomy

    try:
        config = AutoConfig.from_pretrained(str(spec.path))
        with torch.device("meta"):
            module = AutoModel.from_config(config)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"cannot build {spec.name}'s architecture from its config: {exc}") from exc
    anatomy = parameter_anatomy(module)
    sections = anatomy.sections()
    return anatomy.total, anatomy.embedding_parts()["word"], sections["layer"]


def read_facts(spec: ModelSpec) -> ModelFacts:
    """The :class:`ModelFacts` of a model, from its spec and files.

    Raises:
        ModelLoadError: the architecture cannot be built from its config.
    """
    total, table, encoder = parameter_counts(spec)
    disk = sum(f.stat().st_size for f in model_files(spec.path))
    return ModelFacts(
        name=spec.name,
        params=total,
        embedding_params=table,
        encoder_params=encoder,
        layers=spec.num_layers,
        hidden=spec.hidden_size,
        dim=spec.dim,
        max_tokens=spec.max_tokens,
        vocab_size=spec.vocab_size,
        model_type=spec.model_type,
        disk_bytes=disk,
        matryoshka_dims=matryoshka_dims(spec.path, spec.dim),
    )
