"""Request bodies of the cross-encoder routes: TEI's ``/rerank`` and ``/predict``, and the Jina / Cohere
``/v1/rerank`` shape that Dify, LangChain and LlamaIndex send. Parsed as strictly as the embedding bodies
(:func:`~embedlab.server.schemas.validate_body`: every violation a 400 naming the field and the value).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, StrictStr, field_validator

from embedlab.server.schemas import describe


class TeiRerankRequest(BaseModel):
    """``POST /rerank`` (and ``POST /`` on a cross-encoder), as text-embeddings-inference takes it.

    Attributes:
        query: the query every text is scored against.
        texts: the texts to rank.
        raw_scores: the model's logits instead of its activation (sigmoid for a one-label reranker).
        return_text: put each text in its answer item.
        truncate: cut pairs over the token limit (the longer text first, as ``CrossEncoder`` does); TEI's
            default, false, answers 400 for a pair over the limit.
        truncation_direction: ``right`` only (the end of the longer text is cut).
        model: extension (TEI serves one model): a served model's name or alias, needed with several models.
    """

    model_config = ConfigDict(extra="forbid")

    query: StrictStr
    texts: list[StrictStr]
    raw_scores: StrictBool = False
    return_text: StrictBool = False
    truncate: StrictBool = False
    truncation_direction: Literal["right", "Right"] | None = None
    model: StrictStr | None = None


class RerankDocument(BaseModel):
    """A document given as an object (Cohere, Jina): ``{"text": ...}``."""

    model_config = ConfigDict(extra="forbid")

    text: StrictStr


class V1RerankRequest(BaseModel):
    """``POST /v1/rerank``: the Jina / Cohere shape (Dify's and LangChain's rerank clients).

    Attributes:
        query: the query every document is scored against.
        documents: strings, or objects ``{"text": ...}``.
        model: a served model's name or alias (may be left out when one model is served).
        top_n: answer the ``top_n`` best documents only (default: all).
        return_documents: put each document in its result (Jina's default: true).
        truncate: extension; cut pairs over the token limit (default true: a long document is scored on its
            start, and counted in ``x-embedlab-truncated`` and ``usage.truncated_inputs``), false answers 400.
    """

    model_config = ConfigDict(extra="forbid")

    query: StrictStr
    documents: list[StrictStr | RerankDocument]
    model: StrictStr | None = None
    top_n: StrictInt | None = None
    return_documents: StrictBool = True
    truncate: StrictBool = True

    def texts(self) -> list[str]:
        """The documents' texts, in order."""
        return [d if isinstance(d, str) else d.text for d in self.documents]


class TeiPredictRequest(BaseModel):
    """``POST /predict`` (and ``POST /`` on a cross-encoder of several labels), as TEI takes it.

    Attributes:
        inputs: one pair ``[query, document]`` or a list of pairs.
        raw_scores: the logits instead of the model's activation.
        truncate: cut pairs over the token limit (TEI's default: false, a 400 for a pair over it).
        truncation_direction: ``right`` only.
        model: extension, as on ``/rerank``.
    """

    model_config = ConfigDict(extra="forbid")

    inputs: Any
    raw_scores: StrictBool = False
    truncate: StrictBool = False
    truncation_direction: Literal["right", "Right"] | None = None
    model: StrictStr | None = None

    @field_validator("inputs", mode="plain")
    @classmethod
    def _check_inputs(cls, value: Any) -> PredictInputs:
        return PredictInputs(parse_pairs(value), single=is_pair(value))


class PredictInputs:
    """The pairs of a ``/predict`` body, and whether one pair was sent alone (TEI then answers one list)."""

    def __init__(self, pairs: list[tuple[str, str]], single: bool) -> None:
        self.pairs = pairs
        self.single = single


def is_pair(value: Any) -> bool:
    """Whether ``value`` is one ``[query, document]`` pair of strings."""
    return isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)


def parse_pairs(value: Any) -> list[tuple[str, str]]:
    """``[query, document]`` or ``[[query, document], ...]`` as a list of pairs.

    Raises:
        ValueError: another shape (the message names the first bad item).
    """
    if is_pair(value):
        return [(value[0], value[1])]
    if not isinstance(value, list):
        raise ValueError(f"inputs must be a pair [query, document] or a list of such pairs; got {describe(value)}")
    pairs = []
    for index, item in enumerate(value):
        if not is_pair(item):
            raise ValueError(f"inputs.{index} must be a pair [query, document] of two strings; got {describe(item)}")
        pairs.append((item[0], item[1]))
    return pairs
