"""Build tiny random-weight BERT models on disk, in the sentence-transformers layout, for fast tests.

Embedding models (:func:`build_tiny_bert`) and cross-encoders (:func:`build_tiny_cross_encoder`).

The vocabulary is the special tokens, a few words, the letters a-z and their ``##`` continuations, so any
lowercase ASCII text tokenises; a text of n one-letter words is exactly n tokens (+2 special tokens).
"""

from __future__ import annotations

import json
import shutil
import string
import warnings
from pathlib import Path
from typing import Any

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["the", "a", "cat", "dog", "sat", "on", "mat", "query", "passage", ":", ".", ",", "!", "?"]


def _vocab() -> list[str]:
    letters = list(string.ascii_lowercase) + list(string.digits)
    vocab = SPECIALS + [w for w in WORDS if w not in letters] + letters + ["##" + c for c in letters]
    return list(dict.fromkeys(vocab))


def write_tokenizer(directory: Path) -> int:
    """Write a BERT-style WordPiece tokenizer.json (+ configs) into ``directory``; return the vocab size."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    vocab = {token: i for i, token in enumerate(_vocab())}
    tokenizer = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tokenizer.save(str(directory / "tokenizer.json"))
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    (directory / "special_tokens_map.json").write_text(
        json.dumps({"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]"})
    )
    (directory / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 512})
    )
    return len(vocab)


_ST_POOLING = {
    "mean": "pooling_mode_mean_tokens",
    "cls": "pooling_mode_cls_token",
    "max": "pooling_mode_max_tokens",
    "mean_sqrt_len": "pooling_mode_mean_sqrt_len_tokens",
    "weighted_mean": "pooling_mode_weightedmean_tokens",
    "last_token": "pooling_mode_lasttoken",
}


def _bert_config(
    directory: Path,
    seed: int,
    hidden: int,
    layers: int,
    heads: int,
    intermediate: int,
    max_positions: int,
    **extra: Any,
) -> Any:
    """Write the tokenizer into ``directory`` (created), seed torch, and return a dropout-free ``BertConfig``."""
    import torch
    from transformers import BertConfig

    directory.mkdir(parents=True, exist_ok=True)
    vocab_size = write_tokenizer(directory)
    torch.manual_seed(seed)
    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        max_position_embeddings=max_positions,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        **extra,
    )


def build_tiny_bert(
    directory: Path,
    *,
    hidden: int = 32,
    layers: int = 2,
    heads: int = 2,
    intermediate: int = 64,
    max_positions: int = 128,
    pooling: str | None = "mean",
    normalize: bool = True,
    max_seq_length: int | None = 64,
    prompts: dict[str, str] | None = None,
    default_prompt_name: str | None = None,
    seed: int = 0,
) -> Path:
    """Save a random-weight BertModel with a sentence-transformers layout; return ``directory``.

    ``pooling=None`` writes a plain Hugging Face model (no sentence-transformers files at all).
    """
    from transformers import BertModel

    config = _bert_config(directory, seed, hidden, layers, heads, intermediate, max_positions)
    BertModel(config).eval().save_pretrained(str(directory))
    if pooling is None:
        return directory
    modules: list[dict[str, Any]] = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    (directory / "modules.json").write_text(json.dumps(modules))
    (directory / "1_Pooling").mkdir(exist_ok=True)
    pooling_config = {"word_embedding_dimension": hidden, **{key: False for key in _ST_POOLING.values()}}
    pooling_config[_ST_POOLING[pooling]] = True
    (directory / "1_Pooling" / "config.json").write_text(json.dumps(pooling_config))
    if max_seq_length is not None:
        (directory / "sentence_bert_config.json").write_text(
            json.dumps({"max_seq_length": max_seq_length, "do_lower_case": False})
        )
    meta: dict[str, Any] = {"prompts": prompts or {}, "default_prompt_name": default_prompt_name}
    (directory / "config_sentence_transformers.json").write_text(json.dumps(meta))
    return directory


def build_tiny_cross_encoder(
    directory: Path,
    *,
    num_labels: int = 1,
    activation: str | None = None,
    max_length: int | None = 64,
    layout: str = "sentence-transformers",
    hidden: int = 32,
    layers: int = 2,
    heads: int = 2,
    max_positions: int = 128,
    seed: int = 0,
) -> Path:
    """Save a random-weight BertForSequenceClassification cross-encoder; return ``directory``.

    ``layout="sentence-transformers"`` builds it with ``sentence_transformers.CrossEncoder`` and writes it with
    ``CrossEncoder.save`` (modules.json, config_sentence_transformers.json with ``activation_fn``...).
    ``layout="legacy"`` writes only the Hugging Face files, with the activation (if any) in config.json as
    sentence-transformers 4 and 5 wrote it (``sentence_transformers.activation_fn``).

    Args:
        num_labels: logits per pair.
        activation: a ``torch.nn`` activation class name saved with the model (``Tanh``, ``Identity``...),
            or None for CrossEncoder's default (sigmoid for one label, identity for several).
        max_length: the token limit saved (tokenizer ``model_max_length``), or None for the position limit.
    """
    import torch
    from transformers import BertForSequenceClassification

    scratch = directory / "hf" if layout == "sentence-transformers" else directory
    # at BERT's initializer_range 0.02 every pair scores alike (the [CLS] vector hardly varies): spread them
    config = _bert_config(
        scratch, seed, hidden, layers, heads, hidden * 2, max_positions, num_labels=num_labels, initializer_range=0.2
    )
    BertForSequenceClassification(config).eval().save_pretrained(str(scratch))
    if layout == "legacy":
        if max_length is not None:
            tokenizer_config = json.loads((scratch / "tokenizer_config.json").read_text())
            tokenizer_config["model_max_length"] = max_length
            (scratch / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
        if activation is not None:
            saved = json.loads((scratch / "config.json").read_text())
            path = f"torch.nn.modules.{'linear' if activation == 'Identity' else 'activation'}.{activation}"
            saved["sentence_transformers"] = {"activation_fn": path, "version": "5.1.0"}
            (scratch / "config.json").write_text(json.dumps(saved))
        return directory
    from sentence_transformers import CrossEncoder

    activation_fn = getattr(torch.nn, activation)() if activation is not None else None
    cross_encoder = CrossEncoder(str(scratch), device="cpu", max_length=max_length, activation_fn=activation_fn)
    with warnings.catch_warnings():  # the model card runs a saved nn.Softmax, which warns that torch picks dim 1
        warnings.filterwarnings("ignore", "Implicit dimension choice for softmax", UserWarning)
        cross_encoder.save(str(directory))
    shutil.rmtree(scratch)
    return directory
