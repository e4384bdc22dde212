"""Request bodies of the HTTP API (pydantic), and the clear messages their violations turn into.

Bodies are parsed strictly: unknown fields, wrong types and ``null`` where a value is required are
422 errors naming the field (unless the server runs with ``reject_unknown_fields=False``, which only
lets unknown fields through). Values that are well-formed but unusable (an empty text, ``dimensions``
over the model's size, an unknown model) are checked later and answer 400.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, StrictStr, ValidationError, field_validator

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


def _kind(value: Any) -> str:
    return (
        "null"
        if value is None
        else {"bool": "boolean", "float": "number", "dict": "object"}.get(type(value).__name__, type(value).__name__)
    )


def parse_input(value: Any) -> ParsedInput:
    """Check the shape of an OpenAI ``input`` value.

    Raises:
        ValueError: not one of the four shapes (the message names the first bad item).
    """
    if isinstance(value, str):
        return ParsedInput([value], None, single=True)
    if not isinstance(value, list):
        raise ValueError(f"input must be {INPUT_SHAPES}; got {_kind(value)}")
    if not value:
        return ParsedInput([], None, single=False)
    first = value[0]
    if isinstance(first, str):
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise ValueError(f"input {index} is {_kind(item)}, but input 0 is a string: all items must be strings")
        return ParsedInput(list(value), None, single=False)
    if _is_int(first):
        for index, item in enumerate(value):
            if not _is_int(item):
                raise ValueError(f"input {index} is {_kind(item)}, but input 0 is a token id: all items must be ints")
        return ParsedInput(None, [list(value)], single=True)
    if isinstance(first, list):
        for index, item in enumerate(value):
            if not isinstance(item, list):
                raise ValueError(f"input {index} is {_kind(item)}; a list of token-id lists holds only lists of ints")
            for position, token in enumerate(item):
                if not _is_int(token):
                    raise ValueError(
                        f"input {index} item {position} is {_kind(token)}; nested lists must hold token ids (ints)"
                        + (" (to embed several texts, send a flat list of strings)" if isinstance(token, str) else "")
                    )
        return ParsedInput(None, [list(item) for item in value], single=False)
    raise ValueError(f"input must be {INPUT_SHAPES}; input 0 is {_kind(first)}")


class EmbeddingsRequest(BaseModel):
    """``POST /v1/embeddings``: OpenAI's schema plus optional extensions.

    Attributes:
        input: the texts or token ids (see :func:`parse_input`).
        model: the served model's name or an alias (None: the served model).
        encoding_format: ``float`` (default) or ``base64`` (little-endian float32 bytes).
        dimensions: keep the first N values, re-normalised when the model normalises.
        user: accepted and ignored.
        truncate: extension; true = cut long texts, false = 400 for texts over the limit.
        long_input: extension; ``truncate``, ``error`` or ``chunk`` (windows averaged).
        prompt_name: extension; one of the model's named prompts.
        input_type: extension; ``query`` or ``passage`` / ``document``, mapped to the model's prompts.
        normalize: extension; L2-normalise (default: what the model's authors shipped).
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

    @field_validator("input", mode="plain")
    @classmethod
    def _check_input(cls, value: Any) -> ParsedInput:
        return parse_input(value)


class TeiEmbedRequest(BaseModel):
    """``POST /embed`` (text-embeddings-inference style)."""

    model_config = ConfigDict(extra="forbid")

    inputs: StrictStr | list[StrictStr]
    truncate: StrictBool | None = None
    truncation_direction: Literal["right", "Right"] | None = None
    normalize: StrictBool = True
    prompt_name: StrictStr | None = None
    dimensions: StrictInt | None = None


class TokenizeRequest(BaseModel):
    """``POST /tokenize``: texts in ``inputs`` (TEI) or ``input`` (either a string or a list of strings)."""

    model_config = ConfigDict(extra="forbid")

    inputs: StrictStr | list[StrictStr] | None = None
    input: StrictStr | list[StrictStr] | None = None
    add_special_tokens: StrictBool = True
    prompt_name: StrictStr | None = None


def _first_error(exc: ValidationError) -> tuple[str, str | None]:
    """A one-line message and the dotted field of the first problem pydantic found.

    A union field (``str | list[str]``) fails once per branch; the deepest error of the first field is the
    one that names the bad item (``inputs.1``), where the first branch's would call a valid list invalid.
    """
    errors = exc.errors(include_url=False)
    head = errors[0]["loc"][:1]
    error = max((e for e in errors if e["loc"][:1] == head), key=lambda e: len(e["loc"]))
    loc = [str(part) for part in error["loc"] if not str(part).startswith(("function-", "literal["))]
    field = ".".join(part for part in loc if part not in {"str", "list[str]", "int"}) or None
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"unknown field {field!r}", field
    if kind == "missing":
        return f"field {field!r} is required", field
    message = str(error["msg"]).removeprefix("Value error, ")
    if field and kind != "value_error":
        got = error.get("input")
        message = f"{field}: {message} (got {_kind(got)})"
    return message, field


def validate_body(model: type[ModelT], raw: bytes, allow_unknown: bool = False) -> ModelT:
    """Parse JSON ``raw`` into ``model``.

    Raises:
        MalformedBodyError: not JSON (400).
        RequestSchemaError: JSON of the wrong shape (422), naming the field.
    """
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedBodyError(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise RequestSchemaError(f"the body must be a JSON object, got {_kind(data)}")
    if allow_unknown:
        data = {key: value for key, value in data.items() if key in model.model_fields}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        message, field = _first_error(exc)
        raise RequestSchemaError(message, field) from exc


def check_batch_size(n: int, limit: int) -> None:
    """Refuse an empty ``input`` (400) or more than ``limit`` items (413)."""
    if n == 0:
        raise EmptyInputError("input is an empty list; send at least one text")
    if n > limit:
        raise RequestTooLargeError(
            f"input has {n} items; this server takes at most {limit} per request (max_client_batch); "
            "send them in several requests"
        )
