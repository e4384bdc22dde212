"""Request bodies of the HTTP API (pydantic), and the clear messages their violations turn into.

Bodies are parsed strictly: unknown fields, missing fields, wrong types, ``null`` where a value is
required and values outside a field's choices are errors that name the field and the value sent
(unless the server runs with ``reject_unknown_fields=False``, which only lets unknown fields through).
Values that are well-formed but unusable (an empty text, ``dimensions`` over the model's size, an
unknown model) are checked later. Every one of them answers 400 (see :mod:`embedlab.server.errors`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, StrictStr, ValidationError, field_validator

from embedlab.engine.vector_precision import Precision
from embedlab.errors import EmptyInputError, RequestTooLargeError
from embedlab.server.errors import MalformedBodyError, RequestSchemaError

ModelT = TypeVar("ModelT", bound=BaseModel)
INPUT_SHAPES = "a string, a list of strings, a list of token ids (ints) or a list of lists of token ids"


@dataclass(frozen=True)
class ParsedInput:
    """A request's ``input``: texts, or lists of token ids (never both). ``single``: a lone string or id list."""

    texts: list[str] | None
    token_ids: list[list[int]] | None
    single: bool

    def __len__(self) -> int:
        return len(self.texts if self.texts is not None else self.token_ids or [])


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


VALUE_TEXT_LIMIT = 60  # characters of a bad value quoted back in an error message


def _kind(value: Any) -> str:
    """The JSON type of a parsed JSON value: string, integer, number, boolean, array, object or null."""
    if value is None:
        return "null"
    names = {"bool": "boolean", "int": "integer", "float": "number", "str": "string", "list": "array", "dict": "object"}
    return names.get(type(value).__name__, type(value).__name__)


def describe(value: Any) -> str:
    """A value the client sent, as JSON (cut to :data:`VALUE_TEXT_LIMIT` characters), and its type: ``"8" (string)``."""
    try:
        text = orjson.dumps(value).decode()
    except TypeError:  # not from JSON; never the case for a parsed body
        text = repr(value)
    if len(text) > VALUE_TEXT_LIMIT:
        text = text[: VALUE_TEXT_LIMIT - 3] + "..."
    return text if value is None else f"{text} ({_kind(value)})"


def parse_input(value: Any) -> ParsedInput:
    """Check the shape of an OpenAI ``input`` value.

    Raises:
        ValueError: not one of the four shapes (the message names the first bad item).
    """
    if isinstance(value, str):
        return ParsedInput([value], None, single=True)
    if not isinstance(value, list):
        raise ValueError(f"input must be {INPUT_SHAPES}; got {describe(value)}")
    if not value:
        return ParsedInput([], None, single=False)
    first = value[0]
    if isinstance(first, str):
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise ValueError(f"input {index} is {describe(item)}, but input 0 is a string: all must be strings")
        return ParsedInput(list(value), None, single=False)
    if _is_int(first):
        for index, item in enumerate(value):
            if not _is_int(item):
                raise ValueError(f"input {index} is {describe(item)}, but input 0 is a token id: all must be ints")
        return ParsedInput(None, [list(value)], single=True)
    if isinstance(first, list):
        for index, item in enumerate(value):
            if not isinstance(item, list):
                raise ValueError(f"input {index} is {describe(item)}; a list of token-id lists holds only lists")
            for position, token in enumerate(item):
                if not _is_int(token):
                    raise ValueError(
                        f"input {index} item {position} is {describe(token)}; nested lists must hold token ids (ints)"
                        + (" (to embed several texts, send a flat list of strings)" if isinstance(token, str) else "")
                    )
        return ParsedInput(None, [list(item) for item in value], single=False)
    raise ValueError(f"input must be {INPUT_SHAPES}; input 0 is {describe(first)}")


class EmbeddingsRequest(BaseModel):
    """``POST /v1/embeddings``: OpenAI's schema plus optional extensions.

    Attributes:
        input: the texts or token ids (see :func:`parse_input`).
        model: a served model's name or alias (None: the served model, when the server serves one).
        encoding_format: ``float`` (default) or ``base64`` (the raw little-endian bytes of the precision's type).
        dimensions: keep the first N values, re-normalised when the model normalises.
        user: accepted and ignored.
        truncate: extension; true = cut long texts, false = 400 for texts over the limit.
        long_input: extension; ``truncate``, ``error`` or ``chunk`` (windows averaged).
        prompt_name: extension; one of the model's named prompts.
        input_type: extension; ``query`` or ``passage`` / ``document``, mapped to the model's prompts.
        normalize: extension; L2-normalise (default: what the model's authors shipped).
        precision: extension; ``float32`` (default), ``float16``, ``int8``, ``uint8``, ``binary``, ``ubinary``
            (:mod:`embedlab.server.wire_format` for the JSON and byte layout).
    """

    model_config = ConfigDict(extra="forbid")

    input: Any
    model: StrictStr | None = None
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: StrictInt | None = None
    user: StrictStr | None = None
    truncate: StrictBool | None = None
    long_input: Literal["truncate", "error", "chunk"] | None = None
    prompt_name: StrictStr | None = None
    input_type: Literal["query", "passage", "document"] | None = None
    normalize: StrictBool | None = None
    precision: Precision | None = None

    @field_validator("input", mode="plain")
    @classmethod
    def _check_input(cls, value: Any) -> ParsedInput:
        return parse_input(value)


class TeiEmbedRequest(BaseModel):
    """``POST /embed`` and ``POST /`` (text-embeddings-inference style), as TEI and huggingface_hub's
    ``InferenceClient.feature_extraction`` send it, plus the ``precision`` extension.

    Attributes:
        inputs: a text or a list of texts.
        truncate: true = cut long texts, false = 400 for texts over the limit (None: the server's setting).
        truncation_direction: ``right`` only (the engine keeps a text's first tokens).
        normalize: L2-normalise (default true, as TEI).
        prompt_name: one of the model's named prompts.
        dimensions: keep the first N values, re-normalised when normalising.
        encoding_format: ``float`` (default: ``[[number]]``) or ``base64`` (``[str]``, each the raw
            little-endian bytes of a vector, as on ``/v1/embeddings``); huggingface_hub sends it.
        precision: extension; as on ``/v1/embeddings``.
        model: extension (TEI serves one model); a served model's name or alias, needed when the server
            serves several.
    """

    model_config = ConfigDict(extra="forbid")

    inputs: StrictStr | list[StrictStr]
    truncate: StrictBool | None = None
    truncation_direction: Literal["right", "Right"] | None = None
    normalize: StrictBool = True
    prompt_name: StrictStr | None = None
    dimensions: StrictInt | None = None
    encoding_format: Literal["float", "base64"] = "float"
    precision: Precision | None = None
    model: StrictStr | None = None


class TokenizeRequest(BaseModel):
    """``POST /tokenize``: texts in ``inputs`` (TEI) or ``input`` (either a string or a list of strings), tokenised
    by the model named in ``model`` (extension; needed when the server serves several)."""

    model_config = ConfigDict(extra="forbid")

    inputs: StrictStr | list[StrictStr] | None = None
    input: StrictStr | list[StrictStr] | None = None
    add_special_tokens: StrictBool = True
    prompt_name: StrictStr | None = None
    model: StrictStr | None = None


def _first_error(exc: ValidationError, model: type[BaseModel]) -> tuple[str, str | None]:
    """A one-line message naming the field and the value sent, and the dotted field, of the first problem found.

    A union field (``str | list[str]``) fails once per branch; the deepest error of the first field is the
    one that names the bad item (``inputs.1``), where the first branch's would call a valid list invalid.
    When every branch failed at the same depth (a number for ``str | list[str]``), all are named.
    """
    errors = exc.errors(include_url=False)
    head = errors[0]["loc"][:1]
    same_field = [e for e in errors if e["loc"][:1] == head]
    depth = max(len(e["loc"]) for e in same_field)
    deepest = [e for e in same_field if len(e["loc"]) == depth]
    error = deepest[0]
    loc = [str(part) for part in error["loc"] if not str(part).startswith(("function-", "literal["))]
    field = ".".join(part for part in loc if part not in {"str", "list[str]", "int"}) or None
    kind = error["type"]
    if kind == "extra_forbidden":
        known = ", ".join(model.model_fields)
        return f"unknown field {field!r} (got {describe(error.get('input'))}); the fields of this route: {known}", field
    if kind == "missing":
        return f"field {field!r} is required", field
    message = str(error["msg"]).removeprefix("Value error, ")
    for other in deepest[1:]:  # "Input should be a valid string" or "a valid list"
        message += " or " + str(other["msg"]).removeprefix("Input should be ")
    if field and kind != "value_error":  # a value_error's message (parse_input) names the field and item itself
        message = f"{field}: {message}; got {describe(error.get('input'))}"
    return message, field


def json_object(raw: bytes) -> dict[str, Any]:
    """Parse JSON ``raw``, which must be an object.

    Raises:
        MalformedBodyError: not JSON (400).
        RequestSchemaError: JSON other than an object (400).
    """
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedBodyError(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise RequestSchemaError(f"the body must be a JSON object, got {describe(data)}")
    return data


def validate_body(model: type[ModelT], raw: bytes, allow_unknown: bool = False) -> ModelT:
    """Parse JSON ``raw`` into ``model``.

    Raises:
        MalformedBodyError: not JSON (400).
        RequestSchemaError: JSON of the wrong shape or a value outside a field's choices (400), naming the
            field and the value.
    """
    return validate_object(model, json_object(raw), allow_unknown)


def validate_object(model: type[ModelT], data: dict[str, Any], allow_unknown: bool = False) -> ModelT:
    """A parsed JSON object as ``model`` (see :func:`validate_body`).

    Raises:
        RequestSchemaError: a value of the wrong shape or outside a field's choices (400), naming the field and value.
    """
    if allow_unknown:
        data = {key: value for key, value in data.items() if key in model.model_fields}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        message, field = _first_error(exc, model)
        raise RequestSchemaError(message, field) from exc


def check_batch_size(n: int, limit: int, field: str = "input") -> None:
    """Refuse an empty ``field`` (400) or more than ``limit`` items (413)."""
    if n == 0:
        raise EmptyInputError(f"{field} is an empty list; send at least one text")
    if n > limit:
        raise RequestTooLargeError(
            f"{field} has {n} items; this server takes at most {limit} per request (max_client_batch); "
            "send them in several requests"
        )
