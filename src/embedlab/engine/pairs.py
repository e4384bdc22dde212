"""(query, document) pairs for a cross-encoder: checked, then tokenised into one sequence each.

A pair becomes the tokenizer's pair template, e.g. ``[CLS] query [SEP] document [SEP]`` with token type 0
for the query and 1 for the document, exactly as sentence-transformers' ``CrossEncoder`` feeds it.
A pair over the token limit (special tokens included) is either refused (:class:`PairTooLongError`) or cut
``longest_first`` — tokens come off the longer text first — by the fast tokenizer's own truncation with the
settings ``CrossEncoder.predict`` gives the Hugging Face tokenizer (``truncation="longest_first"`` to the
model's max length), so the cut is the same token for token. Every cut pair is reported, never silent.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from embedlab.engine.tokenize import Segment, TokenizedTexts, check_text, validate_texts
from embedlab.errors import ConfigError, EmptyInputError, InputTypeError, PairTooLongError

Pair = tuple[str, str]


def rerank_pairs(query: Any, documents: Any) -> list[Pair]:
    """The pairs (query, document i) of a rerank request, checked.

    Raises:
        InputTypeError: the query is not a string, or ``documents`` is not a list of strings (names the index).
        EmptyInputError: the query is blank, the list is empty, or a document is blank (names the index).
    """
    checked = check_text(query, "query")
    return [(checked, document) for document in validate_texts(documents, "documents", "document")]


def validate_pairs(pairs: Any) -> list[Pair]:
    """Check the caller's pairs: a non-empty list of (query, document) pairs of non-blank strings.

    Raises:
        InputTypeError: not a list of pairs, a pair that is not two texts, or a text that is not a string.
        EmptyInputError: the list is empty, or a text is empty / whitespace only (names the pair).
    """
    if isinstance(pairs, str) or (
        isinstance(pairs, tuple | list) and len(pairs) == 2 and all(isinstance(t, str) for t in pairs)
    ):
        raise InputTypeError("pairs must be a list of (query, document) pairs, not a single one (wrap it in a list)")
    if not isinstance(pairs, Sequence) and not hasattr(pairs, "__iter__"):
        raise InputTypeError(f"pairs must be a list of (query, document) pairs, got {type(pairs).__name__}")
    checked: list[Pair] = []
    for index, pair in enumerate(pairs):
        if isinstance(pair, str) or not isinstance(pair, Sequence):
            raise InputTypeError(f"pair {index} is a {type(pair).__name__}, not a (query, document) pair")
        if len(pair) != 2:
            raise InputTypeError(f"pair {index} has {len(pair)} items, not a query and a document")
        checked.append(
            (check_text(pair[0], f"the query of pair {index}"), check_text(pair[1], f"the document of pair {index}"))
        )
    if not checked:
        raise EmptyInputError("no pairs given: the list is empty")
    return checked


class PairTokenizer:
    """Tokenises pairs with a model's fast tokenizer, truncating ``longest_first`` like ``CrossEncoder``.

    Args:
        tokenizer: a ``tokenizers.Tokenizer`` from :func:`~embedlab.engine.tokenize.load_tokenizer`
            (padding and truncation off); never changed here.

    Thread-safe: the truncating copy of the tokenizer for a limit is made once, then only read.
    """

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        #: special tokens the pair template adds (3 for BERT: [CLS], [SEP], [SEP])
        self.special_tokens = int(tokenizer.num_special_tokens_to_add(True))
        self._truncating: dict[int, Any] = {}
        self._lock = threading.Lock()

    def check_limit(self, max_tokens: int) -> None:
        """Raise :class:`ConfigError` unless ``max_tokens`` leaves a token for each text beside the special tokens."""
        if max_tokens < self.special_tokens + 2:
            raise ConfigError(
                f"max_tokens={max_tokens} leaves no room for a query and a document beside "
                f"{self.special_tokens} special tokens"
            )

    def _truncating_tokenizer(self, max_tokens: int) -> Any:
        with self._lock:
            found = self._truncating.get(max_tokens)
            if found is None:
                from tokenizers import Tokenizer

                found = Tokenizer.from_str(self.tokenizer.to_str())
                found.enable_truncation(max_tokens, stride=0, strategy="longest_first", direction="right")
                self._truncating[max_tokens] = found
            return found

    def tokenize(self, pairs: Sequence[Pair], max_tokens: int, truncate: bool = True) -> TokenizedTexts:
        """Tokenise ``pairs`` (already checked) in one batched call; one segment per pair, in pair order.

        Args:
            pairs: (query, document) pairs.
            max_tokens: tokens per pair at most, special tokens included (checked by :meth:`check_limit`).
            truncate: cut longer pairs ``longest_first`` (reported in ``truncated``), else refuse them.

        Returns:
            Segments with ``text_index`` = the pair's index; ``tokens`` the tokens each pair runs with,
            ``input_tokens`` its full length, ``truncated`` whether it was cut.

        Raises:
            PairTooLongError: a pair over ``max_tokens`` while ``truncate`` is off (the first such pair).
        """
        encodings = list(self.tokenizer.encode_batch([(q, d) for q, d in pairs], add_special_tokens=True))
        input_tokens = [len(e.ids) for e in encodings]
        long = [i for i, n in enumerate(input_tokens) if n > max_tokens]
        if long and not truncate:
            raise PairTooLongError(long[0], input_tokens[long[0]], max_tokens)
        if long:
            cut = self._truncating_tokenizer(max_tokens).encode_batch([pairs[i] for i in long], add_special_tokens=True)
            for index, encoding in zip(long, cut, strict=True):
                encodings[index] = encoding
        segments = [
            Segment(i, list(e.ids), list(e.type_ids), len(e.ids) - self.special_tokens) for i, e in enumerate(encodings)
        ]
        long_set = set(long)
        return TokenizedTexts(
            segments=segments,
            tokens=[len(s.ids) for s in segments],
            input_tokens=input_tokens,
            truncated=[i in long_set for i in range(len(segments))],
        )
